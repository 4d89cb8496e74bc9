# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module-level tests for releases_info."""

from __future__ import annotations

import json
import os
import time

from ansible_collections.atomic.deploy.plugins.module_utils import _history, _lock
from ansible_collections.atomic.deploy.plugins.modules import releases_info


def test_missing_root(tmp_path, run_module):
    result = run_module(releases_info, {'root': str(tmp_path / 'nothing')})
    assert result['changed'] is False and result['exists'] is False
    assert result['releases'] == [] and result['current'] is None and result['lock'] is None and result['history'] == []


def test_order_states_current_rollback_candidate(tmp_path, run_module, build_root, snapshot):
    root = str(tmp_path / 'app')
    # names sort against start order on purpose: v10 started after v9
    build_root(
        root,
        [('v9', 'complete'), ('v10', 'complete'), ('zz', 'failed'), ('aa', 'in_progress'), ('v11', 'complete')],
        current='v11',
    )
    os.mkdir(os.path.join(root, 'releases', 'handmade'))
    os.symlink('/etc', os.path.join(root, 'releases', 'evil'))
    os.mkdir(os.path.join(root, 'releases', '.tmp-v12-abc'))
    # touch the oldest so mtime would put it last
    os.utime(os.path.join(root, 'releases', 'v9'), (2_000_000_000, 2_000_000_000))
    before = snapshot(root)
    for check in (False, True):
        result = run_module(releases_info, {'root': root}, check=check)
        assert result['changed'] is False and result['exists'] is True
        assert [(r['id'], r['state'], r['current']) for r in result['releases']] == [
            ('handmade', 'unmanaged', False),
            ('v9', 'complete', False),
            ('v10', 'complete', False),
            ('zz', 'failed', False),
            ('aa', 'unfinished', False),
            ('v11', 'complete', True),
        ]
        assert result['current'] == 'v11' and result['current_target'] == 'releases/v11'
        assert result['rollback_candidate'] == 'v10'
        assert result['ignored'] == ['.tmp-v12-abc', 'evil']
        assert result['releases'][3]['reason'] == 'broken'
        assert result['releases'][1]['deployed_by'] == {'user': 'alice'}
        assert result['table'][0].split() == ['release', 'state', 'started', 'by']
        assert any(line.startswith('*') and 'v11' in line for line in result['table'])
    assert snapshot(root) == before


def test_lock_without_token_and_expiry(tmp_path, run_module, build_root):
    root = str(tmp_path / 'app')
    build_root(root, [('r1', 'complete')], current='r1')
    os.makedirs(os.path.join(root, '.deploy'))
    _lock.acquire(deploy_dir=os.path.join(root, '.deploy'), token='secret-token', owner={'user': 'bob'}, timeout=1)
    result = run_module(releases_info, {'root': root})
    assert result['lock']['owner']['user'] == 'bob' and result['lock']['expired'] is False
    assert result['lock']['holder'].startswith('bob@unknown controller since ')
    assert 'secret-token' not in json.dumps(result)
    time.sleep(1.05)
    assert run_module(releases_info, {'root': root})['lock']['expired'] is True


def test_history_tail(tmp_path, run_module, build_root):
    root = str(tmp_path / 'app')
    build_root(root, [('r1', 'complete')], current='r1')
    os.makedirs(os.path.join(root, '.deploy'))
    path = os.path.join(root, '.deploy', 'history.jsonl')
    for n in range(30):
        _history.append(path=path, event='deploy', release_id=f'r{n}', fsync=False)
    with open(path, 'ab') as handle:
        handle.write(b'{"torn":')
    result = run_module(releases_info, {'root': root, 'history': 3})
    assert [e['id'] for e in result['history']] == ['r27', 'r28', 'r29']
    assert run_module(releases_info, {'root': root, 'history': 0})['history'] == []


def test_current_pointing_outside(tmp_path, run_module, build_root):
    root = str(tmp_path / 'app')
    build_root(root, [('r1', 'complete')])
    os.symlink('/etc', os.path.join(root, 'current'))
    result = run_module(releases_info, {'root': root})
    assert result['current'] is None and result['current_target'] == '/etc'
    assert result['rollback_candidate'] == 'r1'


def test_negative_history(tmp_path, run_module, assert_error):
    assert_error(run_module(releases_info, {'root': str(tmp_path), 'history': -1}, failed=True), 'history')


def test_untrusted_directories_are_reported_not_listed(tmp_path, run_module, build_root):
    root = str(tmp_path / 'app')
    build_root(root, [('v1', 'complete'), ('forged', 'complete'), ('v2', 'complete')], current='v2')
    forged = os.path.join(root, 'releases', 'forged')
    os.chmod(forged, 0o2775)  # as a deploy made it through a link in shared/: the web user's group can write
    result = run_module(releases_info, {'root': root, 'verify': True})
    assert [r['id'] for r in result['releases']] == ['v1', 'v2']
    assert result['rollback_candidate'] == 'v1'
    assert result['untrusted'] == [{'path': forged, 'reason': f'writable by group {os.getegid()}'}]
    assert 'forged' in result['ignored']
    assert any(forged in w and 'not trusted' in w for w in result['warnings']), result['warnings']
    assert any('not a release (not trusted): ' + forged in line for line in result['table'])
