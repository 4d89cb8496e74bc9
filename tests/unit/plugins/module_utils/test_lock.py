# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for plugins/module_utils/_lock.py: acquire, release, steal, expiry, races between processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import threading
import time

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _lock

OWNER = {'user': 'alice', 'controller': 'ci-1', 'playbook': 'deploy.yml'}


@pytest.fixture
def deploy_dir(tmp_path) -> str:
    path = tmp_path / '.deploy'
    path.mkdir()
    return str(path)


def lock_path(deploy_dir: str) -> str:
    return os.path.join(deploy_dir, 'lock')


def on_disk(deploy_dir: str) -> dict | None:
    try:
        with open(lock_path(deploy_dir)) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def plant(deploy_dir: str, *, token: str = 'theirs', expires_in: float = 3600.0, **extra) -> dict:
    """Write a lock record of another deploy, with an expiry relative to now."""
    now = time.time()
    record = {
        'token': token,
        'owner': {'user': 'bob', 'controller': 'laptop', 'playbook': 'hotfix.yml', 'awx_job_id': 42},
        'release_id': 'r7',
        'started': '2026-01-01T00:00:00.000000Z',
        'started_at': now - 10,
        'expires': '2026-01-01T01:00:00.000000Z',
        'expires_at': now + expires_in,
        'timeout': 3600,
    }
    record.update(extra)
    with open(lock_path(deploy_dir), 'w') as handle:
        json.dump(record, handle)
    return record


# --- acquire -----------------------------------------------------------------------------------


def test_acquire_free_lock(deploy_dir):
    before = time.time()
    outcome = _lock.acquire(deploy_dir=deploy_dir, token='mine', owner=OWNER, release_id='r1', timeout=60)
    assert outcome['changed'] is True
    assert outcome['taken_over'] is None
    assert outcome['warning'] == ''
    record = on_disk(deploy_dir)
    assert record == outcome['record']
    assert record['token'] == 'mine'
    assert record['release_id'] == 'r1'
    assert record['owner'] == dict(OWNER, pid=os.getpid())
    assert before <= record['started_at'] <= time.time()
    assert record['expires_at'] == pytest.approx(record['started_at'] + 60)
    assert record['started'].endswith('Z') and record['expires'] > record['started']
    assert stat.S_IMODE(os.stat(lock_path(deploy_dir)).st_mode) == 0o640
    # the guard file stays; nothing else is left behind
    assert sorted(os.listdir(deploy_dir)) == ['lock', 'lock.guard']


def test_reacquire_with_same_token_changes_nothing(deploy_dir):
    first = _lock.acquire(deploy_dir=deploy_dir, token='mine', timeout=60)
    raw = open(lock_path(deploy_dir), 'rb').read()
    again = _lock.acquire(deploy_dir=deploy_dir, token='mine', timeout=9999)
    assert again == {'record': first['record'], 'changed': False, 'taken_over': None, 'warning': None}
    assert open(lock_path(deploy_dir), 'rb').read() == raw


def test_acquire_held_lock_fails_naming_the_holder(deploy_dir):
    planted = plant(deploy_dir)
    with pytest.raises(_lock.LockHeld) as info:
        _lock.acquire(deploy_dir=deploy_dir, token='mine')
    message = str(info.value)
    assert message.startswith(f'deploy lock {lock_path(deploy_dir)} is held by bob@laptop')
    assert '(playbook hotfix.yml, awx job 42, release r7)' in message
    assert 'since 2026-01-01T00:00:00.000000Z, expires 2026-01-01T01:00:00.000000Z' in message
    assert 'steal=true' in message and 'release_lock_steal=true' in message
    assert info.value.record == planted
    assert info.value.path == lock_path(deploy_dir)
    assert on_disk(deploy_dir) == planted


def test_steal_takes_over_with_warning(deploy_dir):
    planted = plant(deploy_dir)
    outcome = _lock.acquire(deploy_dir=deploy_dir, token='mine', steal=True)
    assert outcome['changed'] is True
    assert outcome['taken_over'] == planted
    assert outcome['warning'].startswith(f'stole the deploy lock {lock_path(deploy_dir)} held by bob@laptop')
    assert on_disk(deploy_dir)['token'] == 'mine'


def test_expired_lock_is_taken_over_with_warning(deploy_dir):
    planted = plant(deploy_dir, expires_in=-1)
    outcome = _lock.acquire(deploy_dir=deploy_dir, token='mine')
    assert outcome['changed'] is True
    assert outcome['taken_over'] == planted
    assert outcome['warning'].startswith('took over the expired deploy lock')
    assert on_disk(deploy_dir)['token'] == 'mine'


def test_expiry_with_a_tiny_timeout(deploy_dir):
    _lock.acquire(deploy_dir=deploy_dir, token='first', timeout=1)
    with pytest.raises(_lock.LockHeld):
        _lock.acquire(deploy_dir=deploy_dir, token='second')
    time.sleep(1.05)
    assert _lock.expired(_lock.read(lock_path(deploy_dir)))
    outcome = _lock.acquire(deploy_dir=deploy_dir, token='second')
    assert outcome['taken_over']['token'] == 'first'


@pytest.mark.parametrize(
    ('record', 'now', 'is_expired'),
    [
        ({'expires_at': 100.0}, 99.9, False),
        ({'expires_at': 100.0}, 100.0, True),
        ({'expires_at': 100}, 150, True),
        ({'expires_at': None}, 10**12, False),
        ({'expires_at': 'soon'}, 10**12, False),
        ({}, 10**12, False),
    ],
)
def test_expired(record, now, is_expired):
    assert _lock.expired(record, now=now) is is_expired


@pytest.mark.parametrize('content', [b'{not json', b'[]', b'{"owner": "x"}', b'\xff\xfe', b''])
def test_corrupt_lock_is_held_until_stolen(deploy_dir, content):
    with open(lock_path(deploy_dir), 'wb') as handle:
        handle.write(content)
    record = _lock.read(lock_path(deploy_dir))
    assert record['corrupt'] is True
    with pytest.raises(_lock.LockHeld, match='held by an unknown owner .the lock file is not a valid lock record.'):
        _lock.acquire(deploy_dir=deploy_dir, token='mine')
    assert open(lock_path(deploy_dir), 'rb').read() == content
    outcome = _lock.acquire(deploy_dir=deploy_dir, token='mine', steal=True)
    assert outcome['warning'].startswith('stole the deploy lock')
    assert on_disk(deploy_dir)['token'] == 'mine'


def test_symlinked_lock_is_never_followed(deploy_dir, tmp_path):
    victim = tmp_path / 'victim'
    victim.write_text('{"token": "mine"}')
    os.symlink(victim, lock_path(deploy_dir))
    record = _lock.read(lock_path(deploy_dir))
    assert record == {'corrupt': True, 'reason': 'the lock is a symlink', 'expires_at': None}
    with pytest.raises(_lock.LockHeld, match='the lock is a symlink'):
        _lock.acquire(deploy_dir=deploy_dir, token='mine')
    _lock.acquire(deploy_dir=deploy_dir, token='mine', steal=True)
    # the link was replaced, not written through
    assert victim.read_text() == '{"token": "mine"}'
    assert not os.path.islink(lock_path(deploy_dir))


def test_acquire_check_mode_writes_nothing(deploy_dir):
    outcome = _lock.acquire(deploy_dir=deploy_dir, token='mine', check_mode=True)
    assert outcome['changed'] is True
    assert os.listdir(deploy_dir) == []
    plant(deploy_dir)
    with pytest.raises(_lock.LockHeld):
        _lock.acquire(deploy_dir=deploy_dir, token='mine', check_mode=True)
    outcome = _lock.acquire(deploy_dir=deploy_dir, token='mine', steal=True, check_mode=True)
    assert outcome['changed'] is True and outcome['warning'].startswith('stole')
    assert on_disk(deploy_dir)['token'] == 'theirs'


def test_acquire_rejects_timeout_below_one(deploy_dir):
    with pytest.raises(ValueError, match='lock timeout must be at least 1 second, got 0'):
        _lock.acquire(deploy_dir=deploy_dir, token='mine', timeout=0)
    assert on_disk(deploy_dir) is None


def test_wait_for_a_lock_released_meanwhile(deploy_dir):
    _lock.acquire(deploy_dir=deploy_dir, token='first')
    releaser = threading.Timer(0.3, lambda: _lock.release(deploy_dir=deploy_dir, token='first'))
    releaser.start()
    try:
        started = time.monotonic()
        outcome = _lock.acquire(deploy_dir=deploy_dir, token='second', wait=5, poll=0.05)
        waited = time.monotonic() - started
    finally:
        releaser.join()
    assert outcome['changed'] is True
    assert 0.25 <= waited < 3
    assert on_disk(deploy_dir)['token'] == 'second'


def test_wait_gives_up(deploy_dir):
    plant(deploy_dir)
    started = time.monotonic()
    with pytest.raises(_lock.LockHeld):
        _lock.acquire(deploy_dir=deploy_dir, token='mine', wait=1, poll=0.1)
    assert 0.9 <= time.monotonic() - started < 3


# --- release / verify --------------------------------------------------------------------------


def test_release_own_lock(deploy_dir):
    _lock.acquire(deploy_dir=deploy_dir, token='mine')
    outcome = _lock.release(deploy_dir=deploy_dir, token='mine')
    assert outcome['changed'] is True and outcome['record']['token'] == 'mine'
    assert on_disk(deploy_dir) is None
    # releasing again is a no-op
    assert _lock.release(deploy_dir=deploy_dir, token='mine') == {'changed': False, 'record': None, 'warning': None}


def test_release_with_wrong_token_leaves_the_lock(deploy_dir):
    planted = plant(deploy_dir)
    outcome = _lock.release(deploy_dir=deploy_dir, token='mine')
    assert outcome['changed'] is False
    assert outcome['record'] == planted
    assert (
        outcome['warning']
        == f'deploy lock {lock_path(deploy_dir)} is now held by {_lock.describe(planted)}; left in place'
    )
    assert on_disk(deploy_dir) == planted


def test_release_without_token_is_an_admin_unlock(deploy_dir):
    plant(deploy_dir)
    assert _lock.release(deploy_dir=deploy_dir, token=None)['changed'] is True
    assert on_disk(deploy_dir) is None


def test_release_check_mode_keeps_the_lock(deploy_dir):
    planted = plant(deploy_dir, token='mine')
    assert _lock.release(deploy_dir=deploy_dir, token='mine', check_mode=True)['changed'] is True
    assert on_disk(deploy_dir) == planted


def test_release_without_deploy_dir(tmp_path):
    missing = str(tmp_path / 'nothing' / '.deploy')
    assert _lock.release(deploy_dir=missing, token='x') == {'changed': False, 'record': None, 'warning': None}
    assert not os.path.exists(missing)


def test_verify(deploy_dir):
    with pytest.raises(_lock.LockHeld, match='no longer held by this deploy .no lock is held.') as info:
        _lock.verify(deploy_dir=deploy_dir, token='mine')
    assert lock_path(deploy_dir) in str(info.value)
    _lock.acquire(deploy_dir=deploy_dir, token='mine')
    assert _lock.verify(deploy_dir=deploy_dir, token='mine')['token'] == 'mine'
    _lock.acquire(deploy_dir=deploy_dir, token='thief', steal=True, owner={'user': 'mallory', 'controller': 'x'})
    with pytest.raises(_lock.LockHeld, match='no longer held by this deploy; it is now held by mallory@x') as info:
        _lock.verify(deploy_dir=deploy_dir, token='mine')
    assert info.value.record['token'] == 'thief'


def test_describe_without_owner_details():
    text = _lock.describe({'token': 't', 'started': 'S', 'expires': 'E'})
    assert text == 'unknown user@unknown controller since S, expires E'


def test_describe_and_shown_name_the_job():
    record = {
        'token': 't',
        'owner': {'user': 'ci', 'controller': 'runner', 'playbook': 'deploy.yml', 'ci_job_url': 'https://ci.example/7'},
        'release_id': 'r9',
        'started': 'S',
        'expires': 'E',
        'expires_at': 0,
    }
    holder = 'ci@runner (playbook deploy.yml, ci job https://ci.example/7, release r9) since S, expires E'
    assert _lock.describe(record) == holder
    shown = _lock.shown(record)
    assert shown['holder'] == holder and shown['expired'] is True and 'token' not in shown
    assert _lock.shown(None) is None


def test_new_token_is_random():
    tokens = {_lock.new_token() for _n in range(100)}
    assert len(tokens) == 100
    assert all(len(token) == 32 for token in tokens)


# --- races between processes -------------------------------------------------------------------

WORKERS = 4
ROUNDS = 50


def _racer(deploy_dir: str, worker: int, barrier, results, expire_first: bool) -> None:
    for round_no in range(ROUNDS):
        round_dir = os.path.join(deploy_dir, f'round-{round_no}')
        # everybody waits here: all workers call acquire at (nearly) the same instant
        barrier.wait(timeout=30)
        try:
            _lock.acquire(deploy_dir=round_dir, token=f'w{worker}-r{round_no}', timeout=3600)
            results.put((round_no, worker, 'won'))
        except _lock.LockHeld:
            results.put((round_no, worker, 'lost'))
        except BaseException as exc:
            results.put((round_no, worker, f'error {exc!r}'))
    del expire_first


@pytest.mark.parametrize('expire_first', [False, True], ids=['free-lock', 'expired-lock'])
def test_concurrent_acquire_exactly_one_wins(tmp_path, expire_first):
    deploy_dir = str(tmp_path)
    for round_no in range(ROUNDS):
        round_dir = os.path.join(deploy_dir, f'round-{round_no}')
        os.mkdir(round_dir)
        if expire_first:
            # every racer finds the same expired lock: only one may take it over
            plant(round_dir, token='stale', expires_in=-5)
    ctx = multiprocessing.get_context('fork')
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(deploy_dir, n, barrier, results, expire_first)) for n in range(WORKERS)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=60) for _n in range(WORKERS * ROUNDS)]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    errors = [o for o in outcomes if o[2].startswith('error')]
    assert errors == []
    for round_no in range(ROUNDS):
        winners = [worker for r, worker, what in outcomes if r == round_no and what == 'won']
        assert len(winners) == 1, f'round {round_no}: winners {winners}'
        record = on_disk(os.path.join(deploy_dir, f'round-{round_no}'))
        assert record['token'] == f'w{winners[0]}-r{round_no}'
