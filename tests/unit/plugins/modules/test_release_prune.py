# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module-level tests for release_prune."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _lock
from ansible_collections.atomic.deploy.plugins.modules import release_prune


def listing(root: str) -> list[str]:
    return sorted(os.listdir(os.path.join(root, 'releases')))


def test_keep_protect_check_real_idempotent(tmp_path, run_module, build_root, snapshot):
    root = str(tmp_path / 'app')
    build_root(root, [(f'r{n}', 'complete') for n in range(1, 7)], current='r6')
    args = {'root': root, 'keep': 2, 'protect': ['r1']}
    before = snapshot(root)
    result = run_module(release_prune, args, check=True)
    assert result['changed'] is True and result['removed'] == ['r2', 'r3', 'r4']
    assert result['diff'] == {
        'before': {'releases': ['r1', 'r2', 'r3', 'r4', 'r5', 'r6']},
        'after': {'releases': ['r1', 'r5', 'r6']},
    }
    assert snapshot(root) == before
    result = run_module(release_prune, args)
    assert (
        result['changed'] is True and result['removed'] == ['r2', 'r3', 'r4'] and result['kept'] == ['r1', 'r5', 'r6']
    )
    assert listing(root) == ['r1', 'r5', 'r6']
    # the lock taken for the run is gone again
    assert _lock.read(os.path.join(root, '.deploy', 'lock')) is None
    for check in (True, False):
        result = run_module(release_prune, args, check=check)
        assert result['changed'] is False and result['removed'] == []
        assert result['diff']['before'] == result['diff']['after']


def test_planted_symlinks_delete_nothing_outside(tmp_path, run_module, build_root):
    root = str(tmp_path / 'app')
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'canary').write_text('alive')
    build_root(root, [('r1', 'complete'), ('r2', 'complete'), ('r3', 'complete')], current='r3')
    os.symlink('/', os.path.join(root, 'releases', 'r1', 'root'))
    os.symlink(str(outside), os.path.join(root, 'releases', 'r1', 'outside'))
    os.symlink(str(outside / 'canary'), os.path.join(root, 'releases', 'r2', 'canary'))
    result = run_module(release_prune, {'root': root, 'keep': 1})
    assert result['removed'] == ['r1', 'r2']
    assert listing(root) == ['r3']
    assert (outside / 'canary').read_text() == 'alive'
    assert os.path.exists('/etc/passwd')


def test_current_oldest_unfinished_and_failed(tmp_path, run_module, build_root):
    root = str(tmp_path / 'app')
    build_root(
        root,
        [
            ('r1', 'in_progress'),
            ('r2', 'complete'),
            ('r3', 'failed'),
            ('r4', 'complete'),
            ('r5', 'failed'),
            ('r6', 'complete'),
            ('r7', 'in_progress'),
        ],
        current='r2',
    )
    result = run_module(release_prune, {'root': root, 'keep': 1})
    # current r2 (oldest complete) is kept; r4 goes (keep=1 keeps r6); r1 unfinished older than current goes;
    # failed/unfinished newer than current are kept for inspection
    assert result['removed'] == ['r1', 'r4']
    assert listing(root) == ['r2', 'r3', 'r5', 'r6', 'r7']


def test_unmanaged_and_leftovers(tmp_path, run_module, build_root):
    root = str(tmp_path / 'app')
    build_root(root, [('handmade', None), ('r1', 'complete'), ('r2', 'complete')], current='r2')
    os.mkdir(os.path.join(root, 'releases', '.tmp-r3-abc'))
    os.mkdir(os.path.join(root, 'releases', '.trash-r0-abc'))
    result = run_module(release_prune, {'root': root, 'keep': 1})
    assert result['removed'] == ['r1']
    assert [os.path.basename(p) for p in result['leftovers']] == ['.tmp-r3-abc', '.trash-r0-abc']
    assert listing(root) == ['handmade', 'r2']


def test_no_releases_dir(tmp_path, run_module):
    result = run_module(release_prune, {'root': str(tmp_path / 'app')})
    assert result['changed'] is False and result['removed'] == []
    assert not os.path.exists(tmp_path / 'app')


def test_refused_while_another_deploy_holds_the_lock(tmp_path, run_module, build_root, assert_error, snapshot):
    root = str(tmp_path / 'app')
    build_root(root, [('r1', 'in_progress'), ('r2', 'complete'), ('r3', 'complete')], current='r3')
    os.makedirs(os.path.join(root, '.deploy'))
    _lock.acquire(deploy_dir=os.path.join(root, '.deploy'), token='theirs', owner={'user': 'bob', 'controller': 'ci'})
    before = snapshot(root)
    for check in (True, False):
        result = run_module(release_prune, {'root': root, 'keep': 1}, check=check, failed=True)
        assert_error(result, os.path.join(root, '.deploy', 'lock'), 'bob@ci')
    assert snapshot(root) == before
    # with the holder's token (the deploy prunes inside its own lock) it runs
    result = run_module(release_prune, {'root': root, 'keep': 1, 'lock_token': 'theirs'})
    assert result['removed'] == ['r1', 'r2']


@pytest.mark.parametrize(('args', 'name'), [({'keep': 0}, 'keep'), ({'protect': ['../x']}, 'protect')])
def test_bad_parameters(tmp_path, run_module, build_root, assert_error, snapshot, args, name):
    root = str(tmp_path / 'app')
    build_root(root, [('r1', 'complete'), ('r2', 'complete')], current='r2')
    before = snapshot(root)
    assert_error(run_module(release_prune, dict(args, root=root), failed=True), name)
    assert snapshot(root) == before


def test_blocked_release_is_left_whole_as_non_root(run_module, build_root, assert_error):
    top = tempfile.mkdtemp(prefix='atomic-deploy-prune-')
    try:
        os.chmod(top, 0o755)
        root = os.path.join(top, 'app')
        build_root(root, [('r1', 'complete'), ('r2', 'complete'), ('r3', 'complete')], current='r3')
        os.makedirs(os.path.join(root, '.deploy'))
        for base, dirs, files in os.walk(root):
            for name in [base] + [os.path.join(base, n) for n in dirs + files]:
                os.lchown(name, 65534, 65534)
        # the web server (root here) created a cache dir in r1 that the deploy user cannot empty
        cache = os.path.join(root, 'releases', 'r1', 'cache')
        os.mkdir(cache)
        with open(os.path.join(cache, 'page'), 'w') as handle:
            handle.write('x')
        result = run_module.as_user(release_prune, {'root': root, 'keep': 1})
        assert_error(result, cache, 'r1')
        assert result['removed'] == ['r2']
        assert list(result['blocked']) == ['r1']
        # r1 is left whole, r2 is gone
        assert sorted(os.listdir(os.path.join(root, 'releases'))) == ['r1', 'r3']
        assert os.path.exists(os.path.join(root, 'releases', 'r1', 'version'))
    finally:
        shutil.rmtree(top)
