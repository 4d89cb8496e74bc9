# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every key a module returns is documented in its RETURN.

Each module's main() runs on real deploy roots under tmp_path through its state transitions (check
mode and real runs, idempotent re-runs, failures); every exit_json and fail_json result is kept and
its keys (and the keys of documented ``contains``) are checked against RETURN.
"""

from __future__ import annotations

import io
import os
import tarfile

import pytest
import yaml
from ansible_collections.atomic.deploy.plugins.module_utils import _lock, _release
from ansible_collections.atomic.deploy.plugins.modules import (
    atomic_symlink,
    deploy_lock,
    release,
    release_prune,
    release_rollback,
    releases_info,
)

# Keys AnsibleModule (or the test runner) adds to every result, documented by Ansible itself.
COMMON = {
    'changed',
    'failed',
    'msg',
    'diff',
    'warnings',
    'deprecations',
    'invocation',
    'skipped',
    'exception',
    'rc',
}
# AnsibleModule.add_path_info adds these to any result with a 'path' key (like ansible.builtin.file's).
PATH_INFO = {'uid', 'gid', 'owner', 'group', 'mode', 'state', 'size', 'secontext'}


def documented(module) -> dict:
    return yaml.safe_load(module.RETURN) or {}


def undocumented(result: dict, doc: dict, where: str = '') -> list[str]:
    missing = []
    for key, value in result.items():
        if not where and (key in COMMON or ('path' in result and key in PATH_INFO)):
            continue
        if key not in doc:
            missing.append(where + key)
            continue
        contains = doc[key].get('contains')
        if contains and isinstance(value, dict):
            missing += undocumented(value, contains, f'{where}{key}.')
        if contains and isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    missing += undocumented(item, contains, f'{where}{key}[].')
    return sorted(set(missing))


class Recorder:
    """Runs a module like run_module and remembers every result."""

    def __init__(self, run_module, module) -> None:
        self.run_module = run_module
        self.module = module
        self.results: list[dict] = []

    def __call__(self, args: dict, *, check: bool = False, failed: bool = False) -> dict:
        result = self.run_module(self.module, args, check=check, failed=failed)
        self.results.append(result)
        return result

    def both(self, args: dict) -> dict:
        """Check mode, then the real run, then both again (idempotency)."""
        for check in (True, False, True, False):
            result = self(args, check=check)
        return result

    def assert_documented(self) -> None:
        doc = documented(self.module)
        problems = {}
        for result in self.results:
            missing = undocumented(result, doc)
            if missing:
                problems.setdefault(', '.join(missing), result)
        assert not problems, f'{self.module.__name__}: keys returned but not in RETURN: {sorted(problems)}'


def tarball(path, files: dict[str, str]) -> str:
    with tarfile.open(path, 'w:gz') as tf:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return str(path)


def hold_lock(root: str, token: str = 'someone-else') -> None:
    _release.ensure_deploy_dir(_release.Layout(root))
    owner = {'user': 'eve', 'controller': 'c'}
    _lock.acquire(deploy_dir=os.path.join(root, '.deploy'), token=token, owner=owner, steal=True)


def test_the_checker_catches_an_undocumented_key():
    doc = {'a': {'contains': {'b': {}}}}
    assert undocumented({'a': {'b': 1, 'c': 2}, 'changed': True, 'z': 0}, doc) == ['a.c', 'z']


def test_release(tmp_path, run_module):
    run = Recorder(run_module, release)
    root = str(tmp_path / 'app')
    archive = tarball(tmp_path / 'a.tgz', {'app.py': '1', 'public/index.html': 'x'})
    present = dict(
        root=root,
        id='r1',
        lock=True,
        source='archive',
        archive=archive,
        remote_src=True,
        shared_dirs=['storage'],
        shared_files=['.env'],
        writable_dirs=['cache'],
        checksum=None,
    )
    run(present, check=True)
    staged = run(present)
    token = staged['token']
    run(dict(present, lock_token=token), check=True)
    active = dict(root=root, id='r1', state='active', lock_token=token, prune=True, keep=1, unlock=True)
    run(active, check=True)
    run(active)
    run(dict(active, lock_token=None))  # live: nothing to do
    run(present)  # live complete release: a no-op
    for rid in ('r2', 'r3'):
        staged = run(dict(present, id=rid))
        run(dict(root=root, id=rid, state='complete', lock_token=staged['token']), check=True)
        run(dict(root=root, id=rid, state='complete', lock_token=staged['token']))
        run(dict(active, id=rid, lock_token=staged['token'], keep=5))
    run(dict(present, id='r2', next_link=True, id_file='REVISION'), check=True)
    run(dict(present, id='r2', next_link=True, id_file='REVISION'))  # complete, not live: links, id file, next
    run(dict(root=root, id='r2', state='active', switch_at=0.0, link_style='absolute'))  # late switch
    run(dict(root=root, id='r3', state='failed', reason='smoke test'), check=True)
    run(dict(root=root, id='r3', state='failed', reason='smoke test'))
    run(dict(root=root, id='gone', state='failed'))
    # failures: a lock held by someone else, a lost lock, a failed fetch, bad input
    hold_lock(root)
    run(dict(present, id='r4'), failed=True)
    run(dict(root=root, id='r2', state='active', lock_token='mine'), failed=True)
    bad = tmp_path / 'bad.tgz'
    bad.write_bytes(b'not an archive')
    run(dict(present, id='r5', lock=False, archive=str(bad)), failed=True)
    run(dict(root=root, id='../x'), failed=True)
    run(dict(root='relative', id='r1'), failed=True)
    run.assert_documented()


def test_release_rollback(tmp_path, run_module, build_root):
    run = Recorder(run_module, release_rollback)
    root = build_root(str(tmp_path / 'app'), [('r1', 'complete'), ('r2', 'complete')], current='r2')
    run({'root': root, 'mark_failed': False}, check=True)
    run({'root': root, 'mark_failed': False})
    run.both({'root': root, 'to': 'r2', 'mark_failed': False})
    run({'root': root, 'to': 'nope'}, failed=True)
    hold_lock(root)
    run({'root': root, 'to': 'r1'}, failed=True)
    run({'root': str(tmp_path / 'empty')}, failed=True)
    run.assert_documented()


def test_release_prune(tmp_path, run_module, build_root):
    run = Recorder(run_module, release_prune)
    root = build_root(
        str(tmp_path / 'app'),
        [('r1', 'complete'), ('r2', 'failed'), ('r3', 'complete'), ('r4', 'complete')],
        current='r4',
    )
    os.mkdir(os.path.join(root, 'releases', '.trash-r0-abc'))
    run.both({'root': root, 'keep': 1})
    run({'root': str(tmp_path / 'none')})
    run({'root': root, 'keep': 0}, failed=True)
    hold_lock(root)
    run({'root': root}, failed=True)
    run.assert_documented()


def test_release_prune_blocked(tmp_path, run_module, build_root, monkeypatch):
    run = Recorder(run_module, release_prune)
    root = build_root(str(tmp_path / 'app'), [('r1', 'complete'), ('r2', 'complete')], current='r2')
    monkeypatch.setattr(_release._fs, 'undeletable', lambda path: [path + '/locked'])
    result = run({'root': root, 'keep': 1}, failed=True)
    assert 'r1' in result['blocked']
    run.assert_documented()


def test_deploy_lock(tmp_path, run_module):
    run = Recorder(run_module, deploy_lock)
    root = str(tmp_path / 'app')
    taken = run({'root': root, 'release_id': 'r1'})
    run({'root': root, 'token': taken['token']}, check=True)
    run({'root': root}, failed=True)
    stolen = run({'root': root, 'steal': True})
    run({'root': root, 'state': 'absent', 'token': taken['token']})  # no longer ours: a warning
    run.both({'root': root, 'state': 'absent', 'token': stolen['token']})
    run({'root': root, 'timeout': 0}, failed=True)
    run.assert_documented()


def test_releases_info(tmp_path, run_module, build_root):
    run = Recorder(run_module, releases_info)
    run({'root': str(tmp_path / 'none')})
    root = build_root(str(tmp_path / 'app'), [('r1', 'complete'), ('r2', 'failed'), ('x', None)], current='r1')
    os.symlink('/', os.path.join(root, 'releases', 'link'))
    hold_lock(root)
    run({'root': root, 'history': 3}, check=True)
    run({'root': root, 'history': -1}, failed=True)
    run.assert_documented()


def test_atomic_symlink(tmp_path, run_module):
    run = Recorder(run_module, atomic_symlink)
    (tmp_path / 'releases' / 'r1').mkdir(parents=True)
    (tmp_path / 'releases' / 'r2').mkdir()
    link = str(tmp_path / 'current')
    run.both({'path': link, 'target': 'releases/r1'})
    run({'path': link, 'target': 'releases/r2'})
    (tmp_path / 'html').mkdir()
    run({'path': str(tmp_path / 'html'), 'target': 'releases/r2', 'force': True})
    run({'path': str(tmp_path / 'missing' / 'x'), 'target': 'r'}, failed=True)
    run({'path': link, 'target': 'releases/nope'}, failed=True)
    run.assert_documented()


@pytest.mark.parametrize(
    'module', [atomic_symlink, deploy_lock, release, release_prune, release_rollback, releases_info]
)
def test_return_is_valid_yaml_with_descriptions(module):
    for key, spec in documented(module).items():
        assert spec.get('description') and spec.get('returned') and spec.get('type'), (module.__name__, key)
