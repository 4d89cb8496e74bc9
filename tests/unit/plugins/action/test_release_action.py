# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/action/release.py, the delta protocol (docs/delta.md), in the style of
ansible.utils' action tests: a real ActionModule with a mocked task and connection, and the host's
side replaced at the action plugin's own boundary: each module run (``_execute_module``), the
live-check program (``_low_level_execute_command``, which runs the real program here with this
machine's Python) and the transfer (``_transfer_file``). Nothing inside ansible-core is patched.

Cases: the probe fails, the release is live (no module run), a delta, a full send, a failed send
that gives the lock back; and the dispatch and start times the switch instant is measured from."""

from __future__ import annotations

import importlib
import io
import json
import os
import posixpath
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path
from unittest.mock import MagicMock

import pytest

# Controller code is imported while the tests run, not when they are collected (conftest.py).
PLUGIN = 'ansible_collections.atomic.deploy.plugins.action.release'
TMPDIR = '/remote/tmp/ansible-tmp-1'
TOKEN = 't' * 32
FILES = {'index.php': b'<?php echo 1;', 'lib/a.php': b'a' * 100, 'lib/b.php': b'b' * 200}


def plugin():
    return importlib.import_module(PLUGIN)


def make_archive(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, 'w:gz') as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


class Host:
    """What the host answers: each module run's result in turn, the program runs, the transfers."""

    def __init__(self, *, results: list[dict], fail_transfer: bool = False, root: Path | None = None) -> None:
        self.results = list(results)
        self.runs: list[tuple[str, dict]] = []
        self.programs: list[str] = []
        self.sent: list[tuple[str, str, int]] = []
        self.fail_transfer = fail_transfer
        self.root = root

    def execute_module(self, *, module_name: str, module_args: dict, task_vars: dict, **_kwargs) -> dict:
        self.runs.append((module_name, json.loads(json.dumps(module_args))))
        return dict(self.results.pop(0))

    def low_level_execute_command(self, cmd: str, sudoable: bool = True, in_data=None, **_kwargs) -> dict:
        """Run the live-check program as the host would: ``python - ARGUMENT`` with it on stdin."""
        self.programs.append(cmd)
        argv = shlex.split(cmd)
        assert argv[:2] == ['/usr/bin/python3', '-'] and len(argv) == 3, cmd
        done = subprocess.run(
            [sys.executable, '-', argv[2]], input=in_data, capture_output=True, text=True, check=False
        )
        return {'rc': done.returncode, 'stdout': done.stdout, 'stderr': done.stderr}

    def transfer_file(self, local: str, remote: str) -> str:
        if self.fail_transfer:
            raise OSError('connection lost during the transfer')
        self.sent.append((local, remote, os.path.getsize(local)))
        return remote


def action(host: Host, args: dict, *, transport: str = 'ssh', check_mode: bool = False):
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook.play_context import PlayContext
    from ansible.template import Templar

    task = MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check_mode
    task.diff = False
    task.resolved_action = 'atomic.deploy.release'
    task.get_search_path.return_value = []
    connection = MagicMock()
    connection.transport = transport
    connection.has_pipelining = True
    connection._shell.tmpdir = TMPDIR
    connection._shell.join_path = posixpath.join
    connection._shell.quote = shlex.quote
    loader = DataLoader()
    module = plugin().ActionModule(
        task=task,
        connection=connection,
        play_context=PlayContext(),
        loader=loader,
        templar=Templar(loader=loader, variables={}),
        shared_loader_obj=None,
    )
    # The host's side, at the plugin's own boundary.
    module._execute_module = host.execute_module
    module._low_level_execute_command = host.low_level_execute_command
    module._transfer_file = host.transfer_file
    module._fixup_perms2 = lambda paths, **_kwargs: True
    module._remove_tmp_path = lambda path, **_kwargs: None
    module._make_tmp_path = lambda *_args, **_kwargs: TMPDIR
    return module


TASK_VARS = {'inventory_hostname': 'h1', 'ansible_python_interpreter': '/usr/bin/python3'}


@pytest.fixture(autouse=True)
def delta_cache(tmp_path: Path, monkeypatch) -> Path:
    cache = tmp_path / 'cache'
    monkeypatch.setenv('ATOMIC_DEPLOY_DELTA_CACHE', str(cache))
    return cache


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    return make_archive(tmp_path / 'app.tar.gz', FILES)


def stage_args(root: Path, archive: Path, **extra) -> dict:
    args = {
        'root': str(root),
        'id': 'v2',
        'state': 'present',
        'lock': True,
        'lock_token': TOKEN,
        'source': 'archive',
        'archive': str(archive),
    }
    args.update(extra)
    return args


def probe_result(*, have: str = '', acquired: bool = True) -> dict:
    return {
        'changed': acquired,
        'token': TOKEN,
        'started_at': 1000.25,
        'delta': {'probe': True, 'have': have, 'bases': [], 'lock_acquired': acquired},
    }


ASSEMBLED = {'changed': True, 'created': True, 'token': TOKEN, 'started_at': 1001.5, 'stats': {'linked': 0}}


def manifest_of(archive: Path) -> dict:
    delta = importlib.import_module('ansible_collections.atomic.deploy.plugins.plugin_utils._delta')
    return delta.artifact_manifest(path=str(archive), kind='archive')


def test_a_failed_probe_ends_the_task_with_nothing_sent(tmp_path: Path, artifact: Path) -> None:
    host = Host(results=[{'failed': True, 'msg': 'deploy lock held by another deploy'}])
    result = action(host, stage_args(tmp_path / 'root', artifact)).run(task_vars=TASK_VARS)
    assert result['failed'] is True and result['msg'] == 'deploy lock held by another deploy'
    assert [name for name, _args in host.runs] == ['atomic.deploy.release']
    probe_args = host.runs[0][1]
    assert probe_args['_delta'] == {'probe': True}
    assert probe_args['_content_digest'] == manifest_of(artifact)['digest']
    assert host.sent == []


def test_a_live_release_is_a_no_op_without_any_module_run(tmp_path: Path, artifact: Path) -> None:
    manifest = importlib.import_module('ansible_collections.atomic.deploy.plugins.module_utils._manifest')
    root = tmp_path / 'root'
    release = root / 'releases' / 'v2'
    release.mkdir(parents=True)
    digest = manifest_of(artifact)['digest']
    for name, data in FILES.items():
        (release / name).parent.mkdir(parents=True, exist_ok=True)
        (release / name).write_bytes(data)
    manifest.record_tree(release=str(release), entries=manifest.from_tree(root=str(release))[0])
    meta = {'id': 'v2', 'state': 'complete', 'source': {'type': 'archive', 'content_digest': digest}}
    (release / '.release.json').write_text(json.dumps(meta))
    os.symlink('releases/v2', root / 'current')

    host = Host(results=[])
    result = action(host, stage_args(root, artifact)).run(task_vars=TASK_VARS)
    assert host.runs == [] and host.sent == [] and len(host.programs) == 1
    assert result['live'] is True and result['changed'] is False
    assert result['delta'] == {'mode': 'none', 'sent_bytes': 0}
    assert result['source']['content_digest'] == digest
    assert 'warnings' not in result

    (release / 'index.php').write_bytes(b'changed on the host')
    drifted = action(Host(results=[]), stage_args(root, artifact)).run(task_vars=TASK_VARS)
    assert drifted['live'] is True
    assert 'has drifted from what was deployed: changed index.php' in drifted['warnings'][0]


def test_another_live_artifact_falls_through_to_the_module(tmp_path: Path, artifact: Path) -> None:
    root = tmp_path / 'root'
    release = root / 'releases' / 'v2'
    release.mkdir(parents=True)
    meta = {'id': 'v2', 'state': 'complete', 'source': {'content_digest': 'sha256:' + '0' * 64}}
    (release / '.release.json').write_text(json.dumps(meta))
    os.symlink('releases/v2', root / 'current')
    refused = {'failed': True, 'msg': 'release v2 already exists at ... with a different artifact'}
    host = Host(results=[refused])
    result = action(host, stage_args(root, artifact)).run(task_vars=TASK_VARS)
    assert len(host.programs) == 1 and len(host.runs) == 1
    assert result['failed'] is True and 'different artifact' in result['msg']


def test_a_host_with_some_of_the_content_gets_a_delta(tmp_path: Path, artifact: Path) -> None:
    digests = {entry[0]: entry[4] for entry in manifest_of(artifact)['entries'] if entry[1] == 'f'}
    have = ''.join(sorted(digests[name][:16] for name in ('index.php', 'lib/b.php')))
    host = Host(results=[probe_result(have=have), ASSEMBLED])
    result = action(host, stage_args(tmp_path / 'root', artifact)).run(task_vars=TASK_VARS)
    assert not result.get('failed'), result
    assert [args.get('_delta') for _name, args in host.runs] == [{'probe': True}, {'lock_acquired': True}]
    second = host.runs[1][1]
    assert second['_bundle'] == f'{TMPDIR}/release-source'
    assert second['archive'] == str(artifact) and not second.get('remote_src')
    assert second['lock_token'] == TOKEN
    [(local, remote, size)] = host.sent
    assert remote == f'{TMPDIR}/release-source' and local != str(artifact)
    assert result['delta'] == {
        'mode': 'delta',
        'held_files': 2,
        'sent_files': 1,
        'sent_content_bytes': 100,
        'sent_bytes': size,
        'linked': 0,
    }


def test_a_host_with_nothing_usable_gets_the_artifact_whole(tmp_path: Path, artifact: Path) -> None:
    host = Host(results=[probe_result(have=''), ASSEMBLED])
    result = action(host, stage_args(tmp_path / 'root', artifact)).run(task_vars=TASK_VARS)
    assert not result.get('failed'), result
    assert host.sent == [(str(artifact), f'{TMPDIR}/release-source', artifact.stat().st_size)]
    second = host.runs[1][1]
    assert second['_delta'] == {'lock_acquired': True} and '_bundle' not in second
    assert second['archive'] == f'{TMPDIR}/release-source' and second['remote_src'] is True
    assert result['delta'] == {'mode': 'full', 'held_files': 0, 'sent_bytes': artifact.stat().st_size, 'linked': 0}


def test_a_failed_send_gives_the_lock_back(tmp_path: Path, artifact: Path) -> None:
    host = Host(results=[probe_result(have=''), {'changed': True, 'unlocked': True}], fail_transfer=True)
    with pytest.raises(OSError, match='connection lost'):
        action(host, stage_args(tmp_path / 'root', artifact)).run(task_vars=TASK_VARS)
    assert [name for name, _args in host.runs] == ['atomic.deploy.release', 'atomic.deploy.deploy_lock']
    assert host.runs[1][1] == {'root': str(tmp_path / 'root'), 'state': 'absent', 'token': TOKEN}


def test_a_failed_send_leaves_a_lock_the_probe_did_not_take(tmp_path: Path, artifact: Path) -> None:
    host = Host(results=[probe_result(have='', acquired=False)], fail_transfer=True)
    with pytest.raises(OSError, match='connection lost'):
        action(host, stage_args(tmp_path / 'root', artifact)).run(task_vars=TASK_VARS)
    assert [name for name, _args in host.runs] == ['atomic.deploy.release']


def test_the_result_says_when_the_task_was_dispatched_and_its_first_module_run_started(
    tmp_path: Path, artifact: Path, monkeypatch
) -> None:
    monkeypatch.setattr(plugin().time, 'time', lambda: 999.75)
    host = Host(results=[probe_result(have=''), ASSEMBLED])
    result = action(host, stage_args(tmp_path / 'root', artifact)).run(task_vars=TASK_VARS)
    assert result['dispatched_at'] == 999.75
    assert result['started_at'] == 1000.25  # the probe's, not the assembly's (1001.5)


def test_a_local_connection_reads_the_archive_in_place_in_one_module_run(tmp_path: Path, artifact: Path) -> None:
    host = Host(results=[ASSEMBLED])
    result = action(host, stage_args(tmp_path / 'root', artifact), transport='local').run(task_vars=TASK_VARS)
    assert not result.get('failed'), result
    [(_name, args)] = host.runs
    assert args['archive'] == str(artifact) and args['remote_src'] is True and '_delta' not in args
    assert host.sent == [] and host.programs == []
