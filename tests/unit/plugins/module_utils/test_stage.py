# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plain pytest for plugins/module_utils/_stage.py, _stage_options.py, _fetch.py and _activate.py: the release flows
without AnsibleModule."""

from __future__ import annotations

import io
import json
import os
import tarfile

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import (
    _activate,
    _fetch,
    _history,
    _lock,
    _prune,
    _release,
    _stage,
    _stage_options,
)


@pytest.fixture
def layout(tmp_path) -> _release.Layout:
    return _release.Layout(str(tmp_path / 'app'))


@pytest.fixture
def warnings() -> list[str]:
    return []


def tarball(path, files: dict[str, str]) -> str:
    with tarfile.open(path, 'w:gz') as tf:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return str(path)


def history(layout) -> list[dict]:
    return _history.read(path=layout.history)


def stage(layout, release_id, warnings, *, check_mode=False, **options) -> dict:
    return _stage.present(
        layout=layout,
        release_id=release_id,
        options=_stage_options.StageOptions(**options),
        owner={'user': 'alice'},
        check_mode=check_mode,
        warn=warnings.append,
        result={},
    )


def activate(layout, release_id, warnings, *, check_mode=False, **kwargs) -> dict:
    return _activate.active(
        layout=layout, release_id=release_id, check_mode=check_mode, warn=warnings.append, result={}, **kwargs
    )


def deploy(layout, release_id, warnings, **kwargs) -> dict:
    stage(layout, release_id, warnings)
    return activate(layout, release_id, warnings, **kwargs)


# --- plan_stage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('options', 'name', 'text'),
    [
        ({'source': 'archive'}, 'archive', 'source=archive needs archive (role variable release_archive)'),
        ({'source': 'url', 'url': 'https://x/a.tgz'}, 'checksum', 'source=url needs checksum for https://x/a.tgz'),
        ({'source': 'url'}, 'url', 'source=url needs url'),
        ({'source': 'git'}, 'git_repo', 'source=git needs git_repo'),
        ({'strip_components': -1}, 'strip_components', 'strip_components must not be negative'),
        ({'shared_dirs': ['a'], 'shared_files': ['a']}, 'shared_files', 'a is listed in both'),
        ({'shared_dirs': ['../x']}, 'shared_dirs', 'contains ".."'),
        ({'writable_mode': '0777'}, 'writable_mode', 'writable_mode'),
    ],
)
def test_plan_stage_refuses_incomplete_or_unsafe_inputs(options, name, text):
    with pytest.raises(_release.ReleaseError) as caught:
        _stage_options.plan_stage(options=_stage_options.StageOptions(**options), check_mode=False)
    assert text in str(caught.value)
    assert caught.value.details.get('name') == name


def test_plan_stage_normalises_paths_and_records_the_source():
    plan = _stage_options.plan_stage(
        options=_stage_options.StageOptions(
            source='git', git_repo='/srv/repo.git', shared_dirs=['./storage/', 'public//up']
        ),
        check_mode=False,
    )
    assert plan.shared_dirs == ['storage', 'public/up']
    assert plan.source == {'type': 'git', 'git_repo': '/srv/repo.git', 'git_version': 'HEAD'}


def test_plan_stage_records_the_controller_path_of_a_sent_archive(tmp_path):
    sent = tmp_path / 'ansible-tmp-123' / 'source'
    sent.parent.mkdir()
    sent.write_bytes(b'')
    options = _stage_options.StageOptions(
        source='archive', archive=str(sent), remote_src=True, archive_origin='/ci/build/app.tar.gz'
    )
    plan = _stage_options.plan_stage(options=options, check_mode=False)
    assert plan.source == {'type': 'archive', 'archive': '/ci/build/app.tar.gz'}


def test_options_from_params_ignores_other_parameters():
    options = _stage_options.StageOptions.from_params({'source': 'archive', 'archive': '/a.tgz', 'state': 'present'})
    assert options.source == 'archive' and options.archive == '/a.tgz' and options.dedupe is True


# --- present ------------------------------------------------------------------------------------


def test_present_stages_an_unfinished_release(layout, warnings):
    result = stage(layout, 'r1', warnings, shared_dirs=['storage'])
    assert result['created'] is True and result['changed'] is True and result['rebuilt'] is False
    assert result['state'] == 'unfinished' and result['current_before'] is None
    assert result['diff'] == {'before': {'release': 'absent'}, 'after': {'release': 'staged'}}
    assert os.readlink(os.path.join(layout.release('r1'), 'storage')) == '../../shared/storage'
    meta = _release.read_metadata(layout.release('r1'))
    assert meta['state'] == 'in_progress' and meta['deployed_by']['user'] == 'alice'
    assert meta['deployed_by']['host_user'] == _release.host_user()


def test_present_in_check_mode_changes_nothing(layout, warnings):
    result = stage(layout, 'r1', warnings, check_mode=True)
    assert result['changed'] is True and result['state'] == 'unfinished'
    assert not os.path.exists(layout.root)


def test_present_extracts_an_archive_and_dedupes_from_the_live_release(layout, warnings, tmp_path):
    archive = tarball(tmp_path / 'a.tgz', {'app.py': 'print(1)\n', 'README': 'same\n'})
    stage(layout, 'r1', warnings, source='archive', archive=archive)
    activate(layout, 'r1', warnings)
    archive2 = tarball(tmp_path / 'b.tgz', {'app.py': 'print(2)\n', 'README': 'same\n'})
    result = stage(layout, 'r2', warnings, source='archive', archive=archive2)
    assert result['stats']['linked'] == 1 and result['stats']['written'] == 1
    same = [os.stat(os.path.join(layout.release(r), 'README')).st_ino for r in ('r1', 'r2')]
    assert same[0] == same[1]


def test_present_is_live_when_current_points_at_the_complete_release(layout, warnings):
    deploy(layout, 'r1', warnings)
    result = stage(layout, 'r1', warnings)
    assert result['live'] is True and result['state'] == 'complete' and not result.get('changed')


def test_present_keeps_a_complete_release_that_is_not_live(layout, warnings):
    deploy(layout, 'r1', warnings)
    deploy(layout, 'r2', warnings)
    result = stage(layout, 'r1', warnings)
    assert result['live'] is False and result['state'] == 'complete' and result['changed'] is False
    assert 'links' in result and result['current_before'] == 'r2'


def test_present_rebuilds_a_failed_release(layout, warnings):
    stage(layout, 'r1', warnings)
    _activate.failed(layout=layout, release_id='r1', reason='broken', warn=warnings.append, result={})
    result = stage(layout, 'r1', warnings)
    assert result['rebuilt'] is True and result['state'] == 'unfinished'


def test_a_failed_fetch_marks_the_release_failed_records_it_and_frees_the_lock(layout, warnings, tmp_path):
    bad = tmp_path / 'bad.tgz'
    bad.write_bytes(b'\x1f\x8b' + b'not gzip at all' * 10)
    # detect_format reads only the head; make the check pass so the fetch itself fails
    good_head = tarball(tmp_path / 'ok.tgz', {'a': 'a'})
    result = {}
    with pytest.raises(_release.ReleaseError):
        _stage.present(
            layout=layout,
            release_id='r1',
            options=_stage_options.StageOptions(source='archive', archive=good_head, checksum='sha256:' + '0' * 64),
            lock=True,
            warn=warnings.append,
            result=result,
        )
    assert _release.read_metadata(layout.release('r1'))['state'] == 'failed'
    assert os.listdir(layout.release('r1')) == [_release.METADATA_NAME]
    assert [(e['event'], e['id']) for e in history(layout)] == [('failed', 'r1')]
    assert _lock.read(layout.lock) is None
    assert result['token']  # the partial result names the token this run used


def test_present_refuses_a_symlink_at_the_release_path(layout, warnings, tmp_path):
    os.makedirs(layout.releases)
    os.symlink(str(tmp_path), layout.release('r1'))
    with pytest.raises(_release.ReleaseError, match='is not a release directory'):
        stage(layout, 'r1', warnings)


def test_present_refuses_a_real_current_directory_without_adopt(layout, warnings):
    os.makedirs(layout.current)
    with pytest.raises(_release.ReleaseError, match='set adopt=true'):
        stage(layout, 'r1', warnings)


def test_take_lock_marks_the_release_of_an_expired_lock_abandoned(layout, warnings, monkeypatch):
    stage(layout, 'old', warnings)
    _release.ensure_deploy_dir(layout)
    with monkeypatch.context() as patch:
        patch.setattr(_lock.time, 'time', lambda: 1_000_000.0)
        _lock.acquire(deploy_dir=layout.deploy, token='t-old', release_id='old', timeout=1)
    token, taken = _stage.take_lock(
        layout=layout,
        release_id='new',
        token=None,
        timeout=60,
        steal=False,
        owner=None,
        fsync=False,
        check_mode=False,
        warn=warnings.append,
    )
    assert taken is True and token
    assert _release.read_metadata(layout.release('old'))['state'] == 'failed'
    assert history(layout)[-1]['event'] == 'failed' and history(layout)[-1]['id'] == 'old'
    assert warnings


# --- active, complete, failed -------------------------------------------------------------------


def test_active_finalizes_switches_and_records_a_deploy(layout, warnings):
    stage(layout, 'r1', warnings)
    result = activate(layout, 'r1', warnings, owner={'user': 'bob'})
    assert result['changed'] is True and result['state'] == 'complete' and result['current_before'] is None
    assert os.readlink(layout.current) == 'releases/r1'
    entry = history(layout)[-1]
    assert (entry['event'], entry['id'], entry['by']) == ('deploy', 'r1', {'user': 'bob'})
    again = activate(layout, 'r1', warnings)
    assert again['changed'] is False and len(history(layout)) == 1


def test_active_in_check_mode_reports_the_switch_and_the_prune(layout, warnings):
    for rid in ('r1', 'r2', 'r3'):
        deploy(layout, rid, warnings)
    stage(layout, 'r4', warnings)
    result = activate(layout, 'r4', warnings, check_mode=True, prune=True, keep=2)
    assert result['changed'] is True and result['removed'] == ['r1']
    assert os.readlink(layout.current) == 'releases/r3'
    assert sorted(os.listdir(layout.releases)) == ['r1', 'r2', 'r3', 'r4']


def test_active_prune_warns_about_a_release_it_must_leave_whole(layout, warnings, monkeypatch):
    for rid in ('r1', 'r2', 'r3'):
        deploy(layout, rid, warnings)
    real = _release._fs.undeletable
    monkeypatch.setattr(
        _release._fs, 'undeletable', lambda path: [path + '/cache'] if path.endswith('/r1') else real(path)
    )
    result = activate(layout, 'r3', warnings, prune=True, keep=1)
    assert result['removed'] == ['r2']
    assert any(w.startswith('could not prune r1: ') for w in warnings), warnings


def test_active_refuses_a_failed_release(layout, warnings):
    stage(layout, 'r1', warnings)
    _activate.failed(layout=layout, release_id='r1', warn=warnings.append, result={})
    with pytest.raises(_release.ReleaseError, match='refusing to activate release r1'):
        activate(layout, 'r1', warnings)


def test_active_unlocks_with_the_token(layout, warnings):
    _release.ensure_deploy_dir(layout)
    _lock.acquire(deploy_dir=layout.deploy, token='tok')
    stage(layout, 'r1', warnings)
    result = activate(layout, 'r1', warnings, lock_token='tok', unlock=True)
    assert result['unlocked'] is True and _lock.read(layout.lock) is None


def test_active_with_a_lost_lock_fails(layout, warnings):
    _release.ensure_deploy_dir(layout)
    _lock.acquire(deploy_dir=layout.deploy, token='theirs')
    stage(layout, 'r1', warnings)
    with pytest.raises(_lock.LockHeld):
        activate(layout, 'r1', warnings, lock_token='mine')


def test_complete_finalizes_once(layout, warnings):
    stage(layout, 'r1', warnings)
    first = _activate.complete(layout=layout, release_id='r1', result={})
    second = _activate.complete(layout=layout, release_id='r1', result={})
    assert first == {'state': 'complete', 'changed': True}
    assert second == {'state': 'complete'}


def test_complete_in_check_mode_of_a_release_not_staged(layout):
    assert _activate.complete(layout=layout, release_id='r1', check_mode=True, result={}) == {
        'changed': True,
        'state': 'complete',
    }


def test_failed_marks_records_and_warns_when_live(layout, warnings):
    deploy(layout, 'r1', warnings)
    result = _activate.failed(layout=layout, release_id='r1', reason='smoke test', warn=warnings.append, result={})
    assert result['changed'] is True and result['state'] == 'failed' and result['current_before'] == 'r1'
    assert 'does not roll it back' in warnings[-1]
    entry = history(layout)[-1]
    assert (entry['event'], entry['reason'], entry['previous']) == ('failed', 'smoke test', 'r1')


def test_failed_of_a_missing_release_is_absent(layout, warnings):
    assert _activate.failed(layout=layout, release_id='nope', warn=warnings.append, result={})['state'] == 'absent'


# --- pieces -------------------------------------------------------------------------------------


def test_dedupe_base_prefers_a_complete_current(layout, warnings):
    deploy(layout, 'r1', warnings)
    deploy(layout, 'r2', warnings)
    _release.ensure_deploy_dir(layout)
    releases, _ignored = _release.list_releases(layout)
    assert _fetch.dedupe_base(releases=releases, current='r1', dedupe=True) == layout.release('r1')
    assert _fetch.dedupe_base(releases=releases, current=None, dedupe=True) == layout.release('r2')
    assert _fetch.dedupe_base(releases=releases, current='r1', dedupe=False) is None


def test_history_record_adds_host_and_who(layout):
    entry = _history.record(layout=layout, event='rollback', release_id='r1', owner={'user': 'x'}, previous='r2')
    assert entry['by'] == {'user': 'x'} and entry['host'] and entry['previous'] == 'r2'
    assert oct(os.stat(layout.deploy).st_mode & 0o777) == '0o750'
    with open(layout.history) as handle:
        assert json.loads(handle.readline())['event'] == 'rollback'


@pytest.mark.parametrize(
    ('keep', 'protect', 'text'),
    [(0, [], 'keep must be at least 1, got 0'), (1, ['../x'], 'protect'), (True, [], 'keep must be at least 1')],
)
def test_validate_prune_args(keep, protect, text):
    with pytest.raises(_release.ReleaseError, match=text):
        _prune.validate_prune_args(keep=keep, protect=protect)


# --- id_file and next_link ------------------------------------------------------------------------


def test_id_file_holds_the_release_id(layout, warnings, tmp_path):
    archive = tarball(tmp_path / 'a.tgz', {'public/index.php': '<?php', 'REVISION': 'from the code'})
    stage(layout, 'r1', warnings, source='archive', archive=archive, id_file='public/VERSION')
    path = os.path.join(layout.release('r1'), 'public', 'VERSION')
    with open(path) as handle:
        assert handle.read() == 'r1\n'
    assert os.stat(path).st_mode & 0o7777 == 0o644


def test_id_file_never_overwrites_a_file_of_the_artifact(layout, warnings, tmp_path):
    archive = tarball(tmp_path / 'a.tgz', {'public/index.php': '<?php', 'REVISION': 'from the code'})
    deploy(layout, 'r1', warnings)
    with pytest.raises(_release.ReleaseError) as caught:
        stage(layout, 'r2', warnings, source='archive', archive=archive, id_file='REVISION')
    assert str(caught.value).startswith('id_file REVISION is a file of the artifact (')
    assert layout.release('r2') + '/REVISION' in str(caught.value)
    assert _release.current_id(layout) == 'r1'
    releases, _ignored = _release.list_releases(layout)
    assert _release.find(releases, 'r2').state == _release.FAILED


def test_id_file_is_added_to_a_complete_release_that_is_not_live(layout, warnings):
    deploy(layout, 'r1', warnings)
    deploy(layout, 'r2', warnings)
    check = stage(layout, 'r1', warnings, id_file='REVISION', check_mode=True)
    assert check['changed'] is True and not os.path.exists(os.path.join(layout.release('r1'), 'REVISION'))
    assert stage(layout, 'r1', warnings, id_file='REVISION')['changed'] is True
    assert stage(layout, 'r1', warnings, id_file='REVISION')['changed'] is False


@pytest.mark.parametrize(
    ('id_file', 'shared', 'text'),
    [
        ('.release.json', [], 'is the release metadata file'),
        ('storage/VERSION', ['storage'], 'inside the shared path storage'),
        ('.env', ['.env'], 'inside the shared path .env'),
        ('../VERSION', [], 'contains ".."'),
        ('/VERSION', [], 'is absolute'),
    ],
)
def test_id_file_refusals(id_file, shared, text):
    with pytest.raises(_release.ReleaseError, match=text) as caught:
        _stage_options.plan_stage(
            options=_stage_options.StageOptions(id_file=id_file, shared_dirs=shared), check_mode=False
        )
    assert caught.value.details['name'] == 'id_file'


def test_id_file_is_never_written_through_a_link(layout, warnings, tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    os.makedirs(layout.releases)
    deploy(layout, 'r1', warnings)
    os.symlink(str(outside), os.path.join(layout.release('r1'), 'public'))
    deploy(layout, 'r2', warnings)
    with pytest.raises(_release.ReleaseError, match='is not a directory of the release'):
        stage(layout, 'r1', warnings, id_file='public/VERSION')
    assert os.listdir(outside) == []


def test_next_link_points_at_the_staged_release(layout, warnings):
    deploy(layout, 'r1', warnings)
    check = stage(layout, 'r2', warnings, next_link=True, check_mode=True)
    assert check['next'] == 'releases/r2' and check['diff']['after']['next'] == 'releases/r2'
    assert not os.path.lexists(layout.next)
    result = stage(layout, 'r2', warnings, next_link=True)
    assert os.readlink(layout.next) == 'releases/r2' and result['next'] == 'releases/r2'
    assert os.readlink(layout.current) == 'releases/r1'
    assert result['diff']['before']['next'] is None
    again = stage(layout, 'r2', warnings, next_link=True)  # unfinished: rebuilt, next already right
    assert os.readlink(layout.next) == 'releases/r2' and again['diff']['before']['next'] == 'releases/r2'
    assert not [n for n in os.listdir(layout.root) if n.startswith('.next.tmp-')]


def test_next_link_refuses_a_real_directory(layout, warnings):
    os.makedirs(layout.next)
    with pytest.raises(_release.ReleaseError, match='not a symlink; refusing to replace it with the next link'):
        stage(layout, 'r1', warnings, next_link=True)


# --- trust: only what the deploy user made (SECURITY.md) ----------------------------------------


def test_a_forged_release_is_reported_and_never_a_base(layout, warnings, tmp_path):
    deploy(layout, 'r1', warnings)
    forged = os.path.join(layout.releases, 'r9')
    os.mkdir(forged)
    os.chmod(forged, 0o2775)  # what a deploy once made through a link in shared/: the web group can write
    with open(os.path.join(forged, '.release.json'), 'w') as handle:
        json.dump({'format': 1, 'id': 'r9', 'state': 'complete', 'started': '2099-01-01T00:00:00.000000Z'}, handle)
    warnings.clear()
    result = stage(layout, 'r2', warnings)
    assert result['untrusted'] == [{'path': forged, 'reason': f'writable by group {os.getegid()}'}]
    assert any(forged in w and 'not trusted' in w for w in warnings), warnings
    with pytest.raises(_release.ReleaseError, match=f'{forged} is not trusted \\(writable by group'):
        stage(layout, 'r9', warnings)
    assert os.listdir(forged) == ['.release.json']


def test_a_deploy_makes_the_metadata_of_older_releases_private(layout, warnings):
    deploy(layout, 'r1', warnings)
    meta = os.path.join(layout.release('r1'), _release.METADATA_NAME)
    os.chmod(meta, 0o644)  # as written before the rule
    deploy(layout, 'r2', warnings)
    assert os.stat(meta).st_mode & 0o777 == 0o600
    assert os.stat(os.path.join(layout.release('r2'), _release.METADATA_NAME)).st_mode & 0o777 == 0o600
