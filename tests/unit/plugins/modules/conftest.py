# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module's main() in-process with patch_module_args and read its JSON result."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable

import pytest
from ansible_collections.atomic.deploy.tests.support.modules import patch_module_args, preload_module_serializers
from ansible_collections.atomic.deploy.tests.support.users import run_as


def warning_texts(warnings) -> list[str]:
    texts = []
    for warning in warnings or []:
        if isinstance(warning, dict):
            warning = (warning.get('event') or {}).get('msg', warning.get('msg', json.dumps(warning)))
        texts.append(str(warning))
    return texts


class ModuleRunner:
    def __init__(self, capsys) -> None:
        self.capsys = capsys

    def __call__(self, module, args: dict, *, check: bool = False, diff: bool = True, failed: bool = False) -> dict:
        """The module's result dict, with ``rc`` (0 on exit_json, 1 on fail_json).

        Asserts the run succeeded, or with ``failed=True`` that it failed. ``warnings`` is turned into
        a list of plain messages (ansible-core 2.19 reports structured warning summaries).
        """
        args = dict(args)
        args['_ansible_check_mode'] = check
        args['_ansible_diff'] = diff
        self.capsys.readouterr()
        with patch_module_args(args), pytest.raises(SystemExit) as info:
            module.main()
        out = self.capsys.readouterr().out
        result = json.loads(out)
        result['rc'] = info.value.code
        assert (info.value.code == 1) is bool(result.get('failed')), result
        assert bool(result.get('failed')) is failed, result
        result['warnings'] = warning_texts(result.get('warnings'))
        return result

    def as_user(self, module, args: dict, *, user: str = 'nobody', check: bool = False) -> dict:
        """Run the module in a forked child whose real and effective ids are ``user``'s."""
        args = dict(args, _ansible_check_mode=check, _ansible_diff=True)
        # after setresuid the child may not be able to read the interpreter's or ansible-test's files
        preload_module_serializers()

        def main() -> dict:
            sys.stdout = io.StringIO()
            code = 0
            try:
                with patch_module_args(args):
                    module.main()
            except SystemExit as exc:
                code = exc.code or 0
            return {'rc': code, 'out': sys.stdout.getvalue()}

        payload = run_as(user, main)
        result = json.loads(payload['out'])
        result['rc'] = payload['rc']
        result['warnings'] = warning_texts(result.get('warnings'))
        return result


@pytest.fixture
def run_module(capsys) -> Callable[..., dict]:
    return ModuleRunner(capsys)


def _assert_error(result: dict, *names: str) -> str:
    """A failed result whose message is lower-case at the start and names every given path/variable."""
    assert result['rc'] == 1 and result.get('failed') is True, result
    msg = result['msg']
    assert msg and not msg[0].isupper(), msg
    for name in names:
        assert name in msg, (name, msg)
    return msg


@pytest.fixture
def assert_error() -> Callable[..., str]:
    return _assert_error


def _build_root(root: str, spec: list[tuple[str, str]], *, current: str | None = None) -> str:
    """Releases with metadata in ``spec`` order of start time (state None: an unmanaged directory)."""
    releases = os.path.join(root, 'releases')
    os.makedirs(releases, exist_ok=True)
    for index, (release_id, state) in enumerate(spec):
        path = os.path.join(releases, release_id)
        os.mkdir(path)
        with open(os.path.join(path, 'version'), 'w') as handle:
            handle.write(release_id)
        if state is None:
            continue
        meta = {
            'format': 1,
            'id': release_id,
            'state': state,
            'started': f'2026-01-01T00:00:{index:02d}.000000Z',
            'deployed_by': {'user': 'alice'},
            'source': {'type': 'none'},
        }
        if state == 'failed':
            meta['reason'] = 'broken'
        with open(os.path.join(path, '.release.json'), 'w') as handle:
            json.dump(meta, handle)
    if current is not None:
        os.symlink(f'releases/{current}', os.path.join(root, 'current'))
    return root


@pytest.fixture
def build_root() -> Callable[..., str]:
    return _build_root


def _snapshot(root: str) -> list[tuple[str, str, str]]:
    """Every path under root with its link text and file content: proves that nothing changed."""
    found = []
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            text = os.readlink(path) if os.path.islink(path) else ''
            content = ''
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, 'rb') as handle:
                    content = handle.read().decode('utf-8', 'replace')
            found.append((os.path.relpath(path, root), text, content))
    return sorted(found)


@pytest.fixture
def snapshot() -> Callable[[str], list]:
    return _snapshot
