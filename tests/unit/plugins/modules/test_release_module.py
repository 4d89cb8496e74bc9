# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module-level tests for release (file named so it does not clash with module_utils/test_release.py)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _history, _lock, _release
from ansible_collections.atomic.deploy.plugins.modules import release


@pytest.fixture
def root(tmp_path) -> str:
    """A root whose .deploy exists, as after the deploy_lock of a deploy (standalone use: see below)."""
    path = tmp_path / 'app'
    (path / '.deploy').mkdir(parents=True, mode=0o750)
    return str(path)


@pytest.fixture
def fresh_root(tmp_path) -> str:
    return str(tmp_path / 'fresh')


def make_tarball(path, files: dict[str, str], *, prefix: str = '') -> str:
    with tarfile.open(path, 'w:gz') as tf:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return str(path)


def sha256(path: str) -> str:
    with open(path, 'rb') as handle:
        return 'sha256:' + hashlib.sha256(handle.read()).hexdigest()


def meta(root: str, release_id: str) -> dict:
    with open(os.path.join(root, 'releases', release_id, _release.METADATA_NAME)) as handle:
        return json.load(handle)


def history(root: str) -> list[dict]:
    return _history.read(path=os.path.join(root, '.deploy', 'history.jsonl'))


def snapshot(root: str) -> list[tuple[str, str]]:
    """Every path under root with its kind and link text: proves check mode and failures change nothing."""
    found = []
    if not os.path.lexists(root):
        return found
    for top, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = os.path.join(top, name)
            found.append((os.path.relpath(path, root), os.readlink(path) if os.path.islink(path) else ''))
    return sorted(found)


def test_stage_none_check_real_and_activate(root, run_module):
    args = {'root': root, 'id': 'r1'}
    result = run_module(release, args, check=True)
    assert result['changed'] is True and result['created'] is True
    assert result['diff'] == {'before': {'release': 'absent'}, 'after': {'release': 'staged'}}
    assert os.listdir(root) == ['.deploy']

    result = run_module(release, args)
    assert result['changed'] is True and result['created'] is True and result['rebuilt'] is False
    assert result['state'] == 'unfinished' and result['live'] is False
    assert result['release_path'] == os.path.join(root, 'releases', 'r1')
    assert meta(root, 'r1')['state'] == 'in_progress'

    active = {'root': root, 'id': 'r1', 'state': 'active'}
    result = run_module(release, active, check=True)
    assert result['changed'] is True
    assert result['diff'] == {'before': {'current': None}, 'after': {'current': 'releases/r1'}}
    assert not os.path.lexists(os.path.join(root, 'current'))
    assert meta(root, 'r1')['state'] == 'in_progress'

    result = run_module(release, active)
    assert result['changed'] is True and result['state'] == 'complete'
    assert result['current_before'] is None and result['switch_late'] == 0
    assert os.readlink(os.path.join(root, 'current')) == 'releases/r1'
    assert meta(root, 'r1')['state'] == 'complete'
    assert [(e['event'], e['id']) for e in history(root)] == [('deploy', 'r1')]

    for check in (True, False):
        result = run_module(release, active, check=check)
        assert result['changed'] is False
        assert result['diff']['before'] == result['diff']['after']
    assert len(history(root)) == 1

    # staging the live complete release again is a no-op
    for check in (True, False):
        result = run_module(release, args, check=check)
        assert result['changed'] is False and result['live'] is True and result['state'] == 'complete'


def test_archive_with_checksum_and_shared(root, tmp_path, run_module):
    archive = make_tarball(
        tmp_path / 'app.tar.gz', {'index.php': '<?php echo 1;', 'storage/.keep': ''}, prefix='app-1/'
    )
    args = {
        'root': root,
        'id': 'v1',
        'source': 'archive',
        'archive': archive,
        'remote_src': True,
        'checksum': sha256(archive),
        'strip_components': 1,
        'shared_dirs': ['storage', 'public/uploads'],
        'shared_files': ['.env'],
        'writable_dirs': ['var/cache'],
    }
    result = run_module(release, args, check=True)
    assert result['changed'] is True and snapshot(root) == [('.deploy', '')]

    result = run_module(release, args)
    assert result['changed'] is True
    assert result['source']['checksum'] == sha256(archive)
    rel = os.path.join(root, 'releases', 'v1')
    with open(os.path.join(rel, 'index.php')) as handle:
        assert handle.read() == '<?php echo 1;'
    for path in ('storage', 'public/uploads', '.env'):
        assert os.path.islink(os.path.join(rel, path))
        assert os.path.realpath(os.path.join(rel, path)) == os.path.realpath(os.path.join(root, 'shared', path))
    assert os.path.isdir(os.path.join(rel, 'var/cache'))
    assert any('.env' in w and 'created it empty' in w for w in result.get('warnings', []))
    assert meta(root, 'v1')['source']['checksum'] == sha256(archive)


def test_archive_checksum_mismatch_fails_marks_failed_and_keeps_current(root, tmp_path, run_module, assert_error):
    good = make_tarball(tmp_path / 'good.tar.gz', {'version': 'one'})
    run_module(release, {'root': root, 'id': 'r1', 'source': 'archive', 'archive': good, 'remote_src': True})
    run_module(release, {'root': root, 'id': 'r1', 'state': 'active'})
    bad = make_tarball(tmp_path / 'bad.tar.gz', {'version': 'two'})
    wrong = 'sha256:' + hashlib.sha256(b'something else').hexdigest()
    result = run_module(
        release,
        {'root': root, 'id': 'r2', 'source': 'archive', 'archive': bad, 'remote_src': True, 'checksum': wrong},
        failed=True,
    )
    assert_error(result, bad, 'checksum')
    assert os.readlink(os.path.join(root, 'current')) == 'releases/r1'
    stored = meta(root, 'r2')
    assert stored['state'] == 'failed' and 'checksum' in stored['reason']
    # the result reports the state the release was left in
    assert result['state'] == 'failed'
    # what was fetched is gone, the marker stays
    assert os.listdir(os.path.join(root, 'releases', 'r2')) == [_release.METADATA_NAME]
    assert history(root)[-1]['event'] == 'failed'


def test_missing_archive_names_it(root, tmp_path, run_module, assert_error):
    missing = str(tmp_path / 'nope.tar.gz')
    result = run_module(
        release, {'root': root, 'id': 'r1', 'source': 'archive', 'archive': missing, 'remote_src': True}, failed=True
    )
    assert_error(result, missing)
    assert snapshot(root) == [('.deploy', '')]


def test_rebuild_unfinished_and_failed(root, run_module):
    run_module(release, {'root': root, 'id': 'r1'})
    first_started = meta(root, 'r1')['started']
    result = run_module(release, {'root': root, 'id': 'r1'})
    assert result['changed'] is True and result['rebuilt'] is True
    assert meta(root, 'r1')['started'] > first_started
    run_module(release, {'root': root, 'id': 'r1', 'state': 'failed', 'reason': 'broken build'})
    assert meta(root, 'r1')['state'] == 'failed'
    result = run_module(release, {'root': root, 'id': 'r1'})
    assert result['rebuilt'] is True and meta(root, 'r1')['state'] == 'in_progress'
    assert [n for n in os.listdir(os.path.join(root, 'releases')) if n.startswith('.')] == []


def test_activate_existing_complete_release(root, run_module):
    for rid in ('r1', 'r2'):
        run_module(release, {'root': root, 'id': rid})
        run_module(release, {'root': root, 'id': rid, 'state': 'active'})
    # r1 is complete and not live: staging keeps it as it is
    result = run_module(release, {'root': root, 'id': 'r1'})
    assert result['changed'] is False and result['rebuilt'] is False and result['state'] == 'complete'
    result = run_module(release, {'root': root, 'id': 'r1', 'state': 'active'})
    assert result['changed'] is True and result['current_before'] == 'r2'
    assert os.readlink(os.path.join(root, 'current')) == 'releases/r1'
    assert [(e['event'], e['id']) for e in history(root)] == [('deploy', 'r1'), ('deploy', 'r2'), ('activate', 'r1')]


def test_failed_state(root, run_module):
    run_module(release, {'root': root, 'id': 'r1'})
    args = {'root': root, 'id': 'r1', 'state': 'failed', 'reason': 'migrations failed'}
    result = run_module(release, args, check=True)
    assert result['changed'] is True and meta(root, 'r1')['state'] == 'in_progress'
    result = run_module(release, args)
    assert result['changed'] is True and result['state'] == 'failed'
    assert meta(root, 'r1')['reason'] == 'migrations failed'
    result = run_module(release, args)
    assert result['changed'] is False and result['state'] == 'failed'
    assert [e['event'] for e in history(root)] == ['failed']
    # an absent release stays absent
    result = run_module(release, {'root': root, 'id': 'r9', 'state': 'failed'})
    assert result['changed'] is False and result['state'] == 'absent'


def test_activate_failed_release_is_refused(root, run_module, assert_error):
    run_module(release, {'root': root, 'id': 'r1'})
    run_module(release, {'root': root, 'id': 'r1', 'state': 'failed'})
    for check in (True, False):
        result = run_module(release, {'root': root, 'id': 'r1', 'state': 'active'}, check=check, failed=True)
        assert_error(result, os.path.join(root, 'releases', 'r1'), 'failed')
        assert result['changed'] is False and result['state'] == 'failed'
    assert not os.path.lexists(os.path.join(root, 'current'))


def test_activate_missing_release(root, run_module, assert_error):
    os.makedirs(os.path.join(root, 'releases'))
    result = run_module(release, {'root': root, 'id': 'r9', 'state': 'active'}, failed=True)
    assert_error(result, 'r9', os.path.join(root, 'releases'))
    # a whole-deploy --check never really staged it: reported as a change
    result = run_module(release, {'root': root, 'id': 'r9', 'state': 'active'}, check=True)
    assert result['rc'] == 0 and result['changed'] is True


def test_complete_state(root, run_module, assert_error):
    run_module(release, {'root': root, 'id': 'r1'})
    args = {'root': root, 'id': 'r1', 'state': 'complete'}
    assert run_module(release, args, check=True)['changed'] is True
    assert meta(root, 'r1')['state'] == 'in_progress'
    assert run_module(release, args)['changed'] is True
    assert meta(root, 'r1')['state'] == 'complete'
    assert run_module(release, args)['changed'] is False
    assert not os.path.lexists(os.path.join(root, 'current'))
    assert_error(run_module(release, {'root': root, 'id': 'r9', 'state': 'complete'}, failed=True), 'r9')


def test_unmanaged_directory_is_refused(root, run_module, assert_error):
    os.makedirs(os.path.join(root, 'releases', 'r1'))
    with open(os.path.join(root, 'releases', 'r1', 'index.html'), 'w') as handle:
        handle.write('hand made')
    before = snapshot(root)
    for check in (True, False):
        result = run_module(release, {'root': root, 'id': 'r1'}, check=check, failed=True)
        assert_error(result, os.path.join(root, 'releases', 'r1'))
    assert snapshot(root) == before


@pytest.mark.parametrize(
    ('args', 'names'),
    [
        ({'id': '../x'}, ['id', '../x']),
        ({'id': '.hidden'}, ['id', '.hidden']),
        ({'id': 'r1', 'keep': 0}, ['keep']),
        ({'id': 'r1', 'protect': ['-rf']}, ['protect', '-rf']),
        ({'id': 'r1', 'shared_dirs': ['../etc']}, ['shared_dirs', '../etc']),
        ({'id': 'r1', 'shared_files': ['/etc/passwd']}, ['shared_files', '/etc/passwd']),
        ({'id': 'r1', 'shared_dirs': ['x'], 'shared_files': ['x']}, ['shared_dirs', 'shared_files']),
        ({'id': 'r1', 'shared_mode': '2777'}, ['shared_mode']),
        ({'id': 'r1', 'writable_mode': 'rwx'}, ['writable_mode']),
        ({'id': 'r1', 'shared_group': 'no-such-group-x'}, ['shared_group', 'no-such-group-x']),
        ({'id': 'r1', 'source': 'url'}, ['url']),
        ({'id': 'r1', 'source': 'url', 'url': 'http://127.0.0.1/a.tgz'}, ['checksum', 'http://127.0.0.1/a.tgz']),
        ({'id': 'r1', 'source': 'url', 'url': 'http://127.0.0.1/a', 'checksum': 'sha256:xyz'}, ['checksum']),
        ({'id': 'r1', 'source': 'git'}, ['git_repo']),
        ({'id': 'r1', 'source': 'git', 'git_repo': '/x', 'git_version': '--upload-pack=x'}, ['git_version']),
        ({'id': 'r1', 'source': 'archive'}, ['archive']),
        ({'id': 'r1', 'strip_components': -1}, ['strip_components']),
    ],
)
def test_invalid_input_fails_before_changing_anything(root, run_module, assert_error, args, names):
    for check in (True, False):
        result = run_module(release, dict(args, root=root), check=check, failed=True)
        assert_error(result, *names)
    assert snapshot(root) == [('.deploy', '')]


def test_relative_root_is_refused(run_module, assert_error):
    assert_error(run_module(release, {'root': 'relative/app', 'id': 'r1'}, failed=True), 'root', 'relative/app')


def test_lock_in_the_same_call_and_unlock(root, run_module):
    result = run_module(
        release, {'root': root, 'id': 'r1', 'lock': True, 'owner': {'user': 'alice', 'controller': 'ci'}}
    )
    token = result['token']
    assert token
    record = _lock.read(os.path.join(root, '.deploy', 'lock'))
    assert record['token'] == token and record['release_id'] == 'r1' and record['owner']['user'] == 'alice'
    result = run_module(
        release,
        {
            'root': root,
            'id': 'r1',
            'state': 'active',
            'lock_token': token,
            'unlock': True,
            'owner': {'user': 'alice', 'controller': 'ci'},
        },
    )
    assert result['changed'] is True and result.get('unlocked') is True
    assert _lock.read(os.path.join(root, '.deploy', 'lock')) is None
    assert history(root)[-1]['by'] == {'user': 'alice', 'controller': 'ci'}
    assert meta(root, 'r1')['deployed_by'] == {'user': 'alice', 'controller': 'ci', 'host_user': _release.host_user()}


def test_lock_held_by_another_deploy(root, run_module, assert_error):
    _lock.acquire(
        deploy_dir=os.path.join(root, '.deploy'), token='theirs', owner={'user': 'bob', 'controller': 'laptop'}
    )
    result = run_module(release, {'root': root, 'id': 'r1', 'lock': True}, failed=True)
    msg = assert_error(result, os.path.join(root, '.deploy', 'lock'), 'bob@laptop', 'steal=true')
    assert msg.startswith('deploy lock ')
    assert not os.path.exists(os.path.join(root, 'releases', 'r1'))
    # check mode only warns
    result = run_module(release, {'root': root, 'id': 'r1', 'lock': True}, check=True)
    assert result['rc'] == 0 and any('bob@laptop' in w for w in result.get('warnings', []))
    # a stale lock_token: the deploy whose lock was taken over stops
    result = run_module(release, {'root': root, 'id': 'r1', 'lock_token': 'mine'}, failed=True)
    assert_error(result, os.path.join(root, '.deploy', 'lock'), 'no longer held')
    result = run_module(release, {'root': root, 'id': 'r1', 'lock': True, 'lock_steal': True})
    assert result['changed'] is True
    assert any('stole the deploy lock' in w for w in result.get('warnings', []))


def test_stealing_marks_the_abandoned_release_failed(root, run_module):
    first = run_module(release, {'root': root, 'id': 'r1', 'lock': True})
    assert meta(root, 'r1')['state'] == 'in_progress'
    run_module(release, {'root': root, 'id': 'r2', 'lock': True, 'lock_steal': True})
    assert first['token'] != _lock.read(os.path.join(root, '.deploy', 'lock'))['token']
    stored = meta(root, 'r1')
    assert stored['state'] == 'failed' and stored['reason'].startswith('abandoned')


def test_prune_on_activate(root, run_module):
    for n in range(1, 5):
        run_module(release, {'root': root, 'id': f'r{n}'})
        result = run_module(release, {'root': root, 'id': f'r{n}', 'state': 'active', 'prune': True, 'keep': 2})
    assert result['removed'] == ['r2']
    assert sorted(os.listdir(os.path.join(root, 'releases'))) == ['r3', 'r4']


def test_switch_at_in_the_past_reports_lateness(root, run_module):
    run_module(release, {'root': root, 'id': 'r1'})
    result = run_module(release, {'root': root, 'id': 'r1', 'state': 'active', 'switch_at': 1.0})
    assert result['switch_late'] > 1_000_000
    assert any('after the agreed instant' in w for w in result.get('warnings', []))
    assert result['switch_waited'] == 0


def test_the_module_reports_when_it_started_and_how_long_the_switch_waited(root, run_module):
    before = time.time()
    staged = run_module(release, {'root': root, 'id': 'r1'})
    assert before <= staged['started_at'] <= time.time()
    result = run_module(release, {'root': root, 'id': 'r1', 'state': 'active', 'switch_at': time.time() + 0.2})
    assert result['switch_late'] == 0 and 0 < result['switch_waited'] <= 0.2
    assert result['switched_at'] >= result['started_at']


def test_current_real_directory_refused_without_adopt(root, run_module, assert_error):
    os.makedirs(os.path.join(root, 'current'))
    result = run_module(release, {'root': root, 'id': 'r1'}, failed=True)
    assert_error(result, os.path.join(root, 'current'), 'adopt=true')
    result = run_module(release, {'root': root, 'id': 'r1', 'adopt': True})
    assert result['changed'] is True
    result = run_module(release, {'root': root, 'id': 'r1', 'state': 'active', 'adopt': True})
    assert result['changed'] is True and result['backup']
    assert os.readlink(os.path.join(root, 'current')) == 'releases/r1'


def test_standalone_without_a_deploy_dir(fresh_root, tmp_path, run_module, assert_error):
    """The module on its own (no lock, so no .deploy yet): every state works and records its history."""
    run_module(release, {'root': fresh_root, 'id': 'r1'})
    result = run_module(release, {'root': fresh_root, 'id': 'r1', 'state': 'active'})
    assert result['changed'] is True
    assert [e['event'] for e in history(fresh_root)] == ['deploy']
    run_module(release, {'root': fresh_root, 'id': 'r2'})
    run_module(release, {'root': fresh_root, 'id': 'r2', 'state': 'failed', 'reason': 'broken'})
    assert [e['event'] for e in history(fresh_root)] == ['deploy', 'failed']


def test_staging_failure_without_a_deploy_dir_reports_the_real_error(fresh_root, tmp_path, run_module, assert_error):
    bad = make_tarball(tmp_path / 'bad.tar.gz', {'version': 'two'})
    wrong = 'sha256:' + hashlib.sha256(b'something else').hexdigest()
    args = {'root': fresh_root, 'id': 'r1', 'source': 'archive', 'archive': bad, 'remote_src': True, 'checksum': wrong}
    result = run_module(release, args, failed=True)
    # the checksum mismatch, not a missing history file
    msg = assert_error(result, bad, 'checksum mismatch')
    assert 'history' not in msg
    assert meta(fresh_root, 'r1')['state'] == 'failed'
