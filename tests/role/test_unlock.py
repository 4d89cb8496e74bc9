"""The unlock playbook: a lock left by a cancelled job is shown (who, since when, from which AWX job)
and freed only with the holder's token or force.

run: bash tests/role/run.sh -k unlock
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
from helpers import FILES, HOSTS, Fleet, Run, lock_held, make_archive


@pytest.fixture(scope='module')
def step_left_locked(fleet: Fleet) -> dict[str, dict]:
    """A deploy under AWX job 4242 whose lock, copied while it held it, is put back as a cancelled job leaves it."""
    archive = make_archive(path=fleet.base / 'app.tar.gz', files={'index.html': 'app\n'})
    extra = {
        'release_id': 'u1',
        'release_archive': str(archive),
        'tower_job_id': 4242,
        'release_hooks_after_fetch': [str(FILES / 'hooks' / 'save_lock.yml')],
    }
    fleet.ok(fleet.deploy(extra=extra))
    records = {}
    for host, root in fleet.roots.items():
        assert not lock_held(root), host
        copy = Path(f'{root}.lock-copy')
        shutil.copy(copy, root / '.deploy' / 'lock')
        records[host] = json.loads(copy.read_text(encoding='utf-8'))
    return records


@pytest.fixture(scope='module')
def step_show(fleet: Fleet, step_left_locked: dict) -> Run:
    return fleet.ok(fleet.playbook('unlock'))


def test_unlock_without_token_or_force_shows_the_holder_and_keeps_the_lock(
    fleet: Fleet, step_left_locked: dict, step_show: Run
) -> None:
    holder = f'root@{socket.gethostname()} (playbook atomic.deploy.deploy, awx job 4242, release u1) since '
    for host, root in fleet.roots.items():
        assert step_left_locked[host]['owner']['awx_job_id'] == 4242, host
        assert lock_held(root), f'{host}: the lock was freed without a token or force'
        started = step_left_locked[host]['started']
        assert f'on host {host} is held by {holder}{started}, expires ' in step_show.stdout, step_show.describe()
    assert step_show.stdout.count('left in place: free it with -e release_unlock_force=true') == len(HOSTS)


@pytest.fixture(scope='module')
def step_unlock(fleet: Fleet, step_left_locked: dict, step_show: Run) -> Run:
    host_vars = {
        'h1': {'release_unlock_token': 'not-the-holders-token'},
        'h2': {'release_unlock_token': step_left_locked['h2']['token']},
        'h3': {'release_unlock_force': True},
    }
    return fleet.failed(fleet.playbook('unlock', host_vars=host_vars))


def test_unlock_frees_only_with_the_holders_token_or_force(fleet: Fleet, step_unlock: Run) -> None:
    run = step_unlock
    assert run.recap['h1']['failed'] == 1 and run.recap['h2']['failed'] == 0 and run.recap['h3']['failed'] == 0
    assert lock_held(fleet.root('h1')), 'h1: a wrong token freed the lock'
    assert (
        'is held by root@' in run.stdout and 'with another token than release_unlock_token: left in place' in run.stdout
    )
    for host in ('h2', 'h3'):
        assert not lock_held(fleet.root(host)), f'{host}: the lock is still held'
        assert f'freed the deploy lock of {fleet.root(host)} on host {host}, held by root@' in run.stdout, (
            run.describe()
        )


def test_unlock_of_a_free_lock_says_so(fleet: Fleet, step_unlock: Run) -> None:
    run = fleet.playbook('unlock', extra={'release_hosts': 'h2'})
    assert run.rc == 0, run.describe()
    assert f'the deploy lock of {fleet.root("h2")} on host h2 is free' in run.stdout, run.describe()
