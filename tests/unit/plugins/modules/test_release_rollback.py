# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module-level tests for release_rollback."""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _history, _lock
from ansible_collections.atomic.deploy.plugins.modules import release_rollback


def current(root: str) -> str:
    return os.readlink(os.path.join(root, 'current'))


def state(root: str, release_id: str) -> str:
    with open(os.path.join(root, 'releases', release_id, '.release.json')) as handle:
        return json.load(handle)['state']


def test_previous_check_real_idempotent(tmp_path, run_module, build_root, snapshot):
    root = str(tmp_path / 'app')
    build_root(
        root,
        [('r1', 'complete'), ('r2', 'complete'), ('r3', 'failed'), ('r4', 'in_progress'), ('r5', 'complete')],
        current='r5',
    )
    before = snapshot(root)
    result = run_module(release_rollback, {'root': root}, check=True)
    assert result['changed'] is True and result['rolled_back_from'] == 'r5' and result['current'] == 'r2'
    assert result['diff'] == {'before': {'current': 'releases/r5'}, 'after': {'current': 'releases/r2'}}
    assert snapshot(root) == before

    result = run_module(release_rollback, {'root': root, 'reason': 'smoke test failed', 'owner': {'user': 'alice'}})
    assert result['changed'] is True and result['current'] == 'r2' and result['switched_at'] > 0
    assert current(root) == 'releases/r2'
    assert state(root, 'r5') == 'failed'
    entries = _history.read(path=os.path.join(root, '.deploy', 'history.jsonl'))
    assert [(e['event'], e['id'], e['previous'], e['reason']) for e in entries] == [
        ('rollback', 'r2', 'r5', 'smoke test failed')
    ]
    assert _lock.read(os.path.join(root, '.deploy', 'lock')) is None

    # rolling back again goes further back (r5 is now failed and newer than current)
    result = run_module(release_rollback, {'root': root}, check=True)
    assert result['current'] == 'r1'


def test_named_target_and_already_live(tmp_path, run_module, build_root):
    root = str(tmp_path / 'app')
    build_root(root, [('r1', 'complete'), ('r2', 'complete'), ('r3', 'complete')], current='r3')
    args = {'root': root, 'to': 'r1', 'mark_failed': False}
    result = run_module(release_rollback, args)
    assert result['changed'] is True and current(root) == 'releases/r1'
    assert state(root, 'r3') == 'complete'
    for check in (True, False):
        result = run_module(release_rollback, args, check=check)
        assert result['changed'] is False and result['current'] == 'r1'
        assert result['diff']['before'] == result['diff']['after']


@pytest.mark.parametrize(
    ('to', 'names'),
    [
        ('r3', ['r3', 'failed']),
        ('r4', ['r4', 'unfinished']),
        ('r9', ['r9', 'does not exist']),
        ('handmade', ['handmade', 'unmanaged']),
        ('../etc', ['to', '../etc']),
    ],
)
def test_refused_targets_change_nothing(tmp_path, run_module, build_root, assert_error, snapshot, to, names):
    root = str(tmp_path / 'app')
    build_root(
        root,
        [('handmade', None), ('r1', 'complete'), ('r2', 'complete'), ('r3', 'failed'), ('r4', 'in_progress')],
        current='r2',
    )
    before = snapshot(root)
    for check in (True, False):
        result = run_module(release_rollback, {'root': root, 'to': to}, check=check, failed=True)
        msg = assert_error(result, *names)
        assert msg.startswith(('refusing to roll back to', 'rollback target', 'to '))
    after = snapshot(root)
    # the lock taken for the attempt is released again; .deploy may have been created, nothing else
    assert [entry for entry in after if not entry[0].startswith('.deploy')] == before
    assert _lock.read(os.path.join(root, '.deploy', 'lock')) is None


def test_no_candidate(tmp_path, run_module, build_root, assert_error):
    root = str(tmp_path / 'app')
    build_root(root, [('r0', 'failed'), ('r1', 'complete')], current='r1')
    result = run_module(release_rollback, {'root': root}, failed=True)
    assert_error(result, 'r1', os.path.join(root, 'releases'))
    assert current(root) == 'releases/r1'
    missing = str(tmp_path / 'nothing')
    assert_error(run_module(release_rollback, {'root': missing}, failed=True), os.path.join(missing, 'releases'))


def test_refused_while_another_deploy_holds_the_lock(tmp_path, run_module, build_root, assert_error):
    root = str(tmp_path / 'app')
    build_root(root, [('r1', 'complete'), ('r2', 'complete')], current='r2')
    os.makedirs(os.path.join(root, '.deploy'))
    _lock.acquire(deploy_dir=os.path.join(root, '.deploy'), token='theirs', owner={'user': 'bob', 'controller': 'ci'})
    for check in (True, False):
        result = run_module(release_rollback, {'root': root}, check=check, failed=True)
        assert_error(result, os.path.join(root, '.deploy', 'lock'), 'bob@ci', 'steal=true')
    assert current(root) == 'releases/r2'
    result = run_module(release_rollback, {'root': root, 'lock_steal': True})
    assert result['changed'] is True and current(root) == 'releases/r1'
    assert any('stole the deploy lock' in w for w in result['warnings'])


def test_an_untrusted_target_is_refused_naming_why(tmp_path, run_module, build_root, assert_error, snapshot):
    root = str(tmp_path / 'app')
    build_root(root, [('v1', 'complete'), ('forged', 'complete'), ('v2', 'complete')], current='v2')
    forged = os.path.join(root, 'releases', 'forged')
    os.chmod(os.path.join(forged, '.release.json'), 0o666)
    before = snapshot(root)
    result = run_module(release_rollback, {'root': root, 'to': 'forged'}, failed=True)
    msg = assert_error(result, forged, 'not trusted', '.release.json is writable by every user')
    assert msg.startswith('refusing to roll back to forged')
    assert [entry for entry in snapshot(root) if not entry[0].startswith('.deploy')] == before
    result = run_module(release_rollback, {'root': root})
    assert result['current'] == 'v1' and result['rolled_back_from'] == 'v2'
