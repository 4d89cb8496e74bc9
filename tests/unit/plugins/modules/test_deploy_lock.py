# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module-level tests for deploy_lock."""

from __future__ import annotations

import json
import os
import time

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _lock
from ansible_collections.atomic.deploy.plugins.modules import deploy_lock


@pytest.fixture
def root(tmp_path) -> str:
    return str(tmp_path / 'app')


def lock_file(root: str) -> str:
    return os.path.join(root, '.deploy', 'lock')


def test_acquire_check_real_idempotent(root, run_module):
    args = {'root': root, 'token': 'tok-a', 'release_id': 'r1', 'owner': {'user': 'alice', 'controller': 'ci-1'}}
    result = run_module(deploy_lock, args, check=True)
    assert result['changed'] is True and result['acquired'] is True
    assert not os.path.exists(root)
    result = run_module(deploy_lock, args)
    assert result['changed'] is True and result['acquired'] is True and result['token'] == 'tok-a'
    assert result['taken_over'] is None
    # the token is the holder's: never in the returned record
    assert 'token' not in result['lock']
    assert result['lock']['owner']['user'] == 'alice' and result['lock']['release_id'] == 'r1'
    assert oct(os.stat(os.path.join(root, '.deploy')).st_mode & 0o777) == oct(0o750)
    for check in (True, False):
        again = run_module(deploy_lock, args, check=check)
        assert again['changed'] is False and again['acquired'] is True


def test_generated_token(root, run_module):
    result = run_module(deploy_lock, {'root': root})
    assert len(result['token']) == 32
    assert _lock.read(lock_file(root))['token'] == result['token']


def test_second_deploy_fails_naming_the_holder(root, run_module, assert_error):
    run_module(
        deploy_lock,
        {
            'root': root,
            'token': 'tok-a',
            'release_id': 'r1',
            'owner': {'user': 'alice', 'controller': 'ci-1', 'playbook': 'deploy.yml'},
        },
    )
    before = open(lock_file(root)).read()
    for check in (True, False):
        result = run_module(deploy_lock, {'root': root, 'token': 'tok-b'}, check=check, failed=True)
        msg = assert_error(result, lock_file(root), 'alice@ci-1', 'playbook deploy.yml', 'release r1', 'steal=true')
        assert msg.startswith(f'deploy lock {lock_file(root)} is held by alice@ci-1')
        # the holder's token is the holder's: a refused deploy must not see it (nor log it)
        assert 'tok-a' not in json.dumps(result)
    assert open(lock_file(root)).read() == before


def test_steal(root, run_module):
    run_module(deploy_lock, {'root': root, 'token': 'tok-a', 'owner': {'user': 'alice', 'controller': 'ci-1'}})
    result = run_module(deploy_lock, {'root': root, 'token': 'tok-b', 'steal': True})
    assert result['changed'] is True
    assert result['taken_over']['owner']['user'] == 'alice' and 'token' not in result['taken_over']
    assert any(w.startswith('stole the deploy lock') and 'alice@ci-1' in w for w in result['warnings'])
    assert _lock.read(lock_file(root))['token'] == 'tok-b'


def test_expired_lock_taken_over_with_warning(root, run_module):
    run_module(deploy_lock, {'root': root, 'token': 'tok-a', 'timeout': 1})
    time.sleep(1.05)
    result = run_module(deploy_lock, {'root': root, 'token': 'tok-b'})
    assert result['changed'] is True and result['taken_over'] is not None
    assert any(w.startswith('took over the expired deploy lock') for w in result['warnings'])


def test_release_idempotent_and_wrong_token(root, run_module):
    run_module(deploy_lock, {'root': root, 'token': 'tok-a'})
    wrong = run_module(deploy_lock, {'root': root, 'state': 'absent', 'token': 'tok-b'})
    assert wrong['changed'] is False
    assert any('left in place' in w for w in wrong['warnings'])
    assert _lock.read(lock_file(root))['token'] == 'tok-a'
    args = {'root': root, 'state': 'absent', 'token': 'tok-a'}
    result = run_module(deploy_lock, args, check=True)
    assert result['changed'] is True and os.path.exists(lock_file(root))
    result = run_module(deploy_lock, args)
    assert result['changed'] is True and not os.path.exists(lock_file(root))
    for check in (True, False):
        assert run_module(deploy_lock, args, check=check)['changed'] is False


def test_admin_unlock(root, run_module):
    run_module(deploy_lock, {'root': root, 'token': 'tok-a', 'release_id': 'r1', 'owner': {'awx_job_id': 4242}})
    result = run_module(deploy_lock, {'root': root, 'state': 'absent'})
    assert result['changed'] is True
    assert not os.path.exists(lock_file(root))
    released = result['released']
    assert 'token' not in released and released['release_id'] == 'r1' and released['expired'] is False
    assert 'awx job 4242, release r1) since' in released['holder']


def test_released_is_null_when_nothing_was_released(root, run_module):
    run_module(deploy_lock, {'root': root, 'token': 'tok-a'})
    wrong = run_module(deploy_lock, {'root': root, 'state': 'absent', 'token': 'tok-b'})
    assert wrong['released'] is None and 'holder' in wrong['lock']
    assert run_module(deploy_lock, {'root': root, 'state': 'absent', 'token': 'tok-a'})['released'] is not None
    assert run_module(deploy_lock, {'root': root, 'state': 'absent'})['released'] is None


@pytest.mark.parametrize(('args', 'name'), [({'timeout': 0}, 'timeout'), ({'wait': -1}, 'wait'), ({}, 'root')])
def test_bad_parameters(tmp_path, run_module, assert_error, args, name):
    root = 'relative' if name == 'root' else str(tmp_path / 'app')
    assert_error(run_module(deploy_lock, dict(args, root=root), failed=True), name)
    assert not os.path.exists(tmp_path / 'app')


def _racer(root: str, token: str, barrier, queue) -> None:
    import io
    import sys

    from ansible_collections.atomic.deploy.tests.support.modules import patch_module_args

    out = io.StringIO()
    crash = None
    with patch_module_args({'root': root, 'token': token, 'owner': {'user': token, 'controller': 'unit'}}):
        barrier.wait(timeout=30)
        sys.stdout = out
        try:
            deploy_lock.main()
        except SystemExit:
            pass
        except BaseException as exc:
            crash = f'crash: {exc!r}'
        finally:
            sys.stdout = sys.__stdout__
    queue.put({'token': token, 'failed': True, 'msg': crash} if crash else json.loads(out.getvalue()))


def test_concurrent_first_deploys_on_a_fresh_root(tmp_path):
    """Four deploys take the lock of a root that does not exist yet, at the same instant, 20 times.

    Exactly one wins each round; every other one must get the lock-held message naming the
    winner, not an error about a directory another racer created first.
    """
    import multiprocessing

    from ansible_collections.atomic.deploy.tests.support.modules import preload_module_serializers

    preload_module_serializers()  # import once, before forking
    ctx = multiprocessing.get_context('fork')
    problems = []
    for round_no in range(20):
        root = str(tmp_path / f'round-{round_no}' / 'app')
        barrier, queue = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_racer, args=(root, f'w{n}', barrier, queue)) for n in range(4)]
        for proc in procs:
            proc.start()
        results = [queue.get(timeout=60) for _proc in procs]
        for proc in procs:
            proc.join(timeout=30)
        winners = [r['token'] for r in results if not r.get('failed')]
        assert len(winners) == 1, results
        for result in results:
            if result.get('failed') and f'is held by {winners[0]}@unit' not in result['msg']:
                problems.append(result['msg'])
    assert problems == []
