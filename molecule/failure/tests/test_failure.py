"""What three failed deploys leave on every host (converge.yml): v1 still live, each failed release
marked failed with its cause, one history entry per step, the deploy lock free, no download left."""

from __future__ import annotations

import pytest
import testinfra
from hostprobe import HOST_NAMES, INVENTORY, Snapshot, role_var, take_snapshot

testinfra_hosts = HOST_NAMES

ROOT: str = role_var('release_root')
LIVE = 'v1'
# (event, release id, previous) on every host. migrate-fails and fetch-fails never went live; health-fails
# went live on every host and every host rolled back from it.
HISTORY = [
    ('deploy', 'v1', None),
    ('failed', 'migrate-fails', 'v1'),
    ('deploy', 'health-fails', 'v1'),
    ('rollback', 'v1', 'health-fails'),
    ('failed', 'fetch-fails', 'v1'),
]


@pytest.fixture(scope='module')
def snap(host: testinfra.host.Host) -> Snapshot:
    return take_snapshot(host=host, root=ROOT)


def meta(snap: Snapshot, release_id: str) -> dict:
    return snap.json(f'{ROOT}/releases/{release_id}/.release.json')


def test_inventory_has_three_hosts() -> None:
    assert HOST_NAMES == ['failure-1', 'failure-2', 'failure-3'], f'inventory {INVENTORY} lists {HOST_NAMES}'


def test_v1_is_still_live(snap: Snapshot) -> None:
    assert snap[f'{ROOT}/current']['target'] == f'releases/{LIVE}', f'current on {snap.hostname}'
    assert meta(snap, LIVE)['state'] == 'complete'
    assert snap.text(f'{ROOT}/releases/{LIVE}/VERSION').strip() == '1'


def test_history(snap: Snapshot) -> None:
    entries = snap.json_lines(f'{ROOT}/.deploy/history.jsonl')
    assert [(e['event'], e['id'], e.get('previous')) for e in entries] == HISTORY, f'history on {snap.hostname}'


def test_lock_released_and_no_download_left(snap: Snapshot) -> None:
    assert not snap.exists(f'{ROOT}/.deploy/lock'), f'{ROOT}/.deploy/lock is still there on {snap.hostname}'
    leftovers = snap.get(f'{ROOT}/.deploy/tmp') or {'entries': []}
    assert leftovers['entries'] == [], f'{ROOT}/.deploy/tmp on {snap.hostname} holds {leftovers["entries"]}'


def test_failed_migration_marks_the_release_failed(snap: Snapshot) -> None:
    release = meta(snap, 'migrate-fails')
    assert release['state'] == 'failed'
    assert 'migrations failed on host failure-1' in release['reason'], release['reason']
    # the error of the migration itself, from the migrate host
    assert 'no such table: no_such_table' in release['reason'], release['reason']


def test_failed_health_check_on_one_host_rolls_back_every_host(snap: Snapshot) -> None:
    release = meta(snap, 'health-fails')
    assert release['state'] == 'failed'
    assert 'host failure-2' in release['reason'], release['reason']
    assert 'connection refused' in release['reason'].lower(), release['reason']
    entries = snap.json_lines(f'{ROOT}/.deploy/history.jsonl')
    deployed, rolled_back = entries[2], entries[3]
    assert rolled_back['switched_at'] > deployed['switched_at']


def test_failed_fetch_on_one_host_switches_no_host(snap: Snapshot) -> None:
    release = meta(snap, 'fetch-fails')
    assert release['state'] == 'failed'
    assert 'checksum mismatch' in release['reason'], release['reason']
    if snap.hostname == 'failure-3':
        assert release['reason'].startswith('staging failed'), release['reason']
        # what the failed fetch wrote is removed; the metadata stays
        assert snap[f'{ROOT}/releases/fetch-fails']['entries'] == ['.release.json']
    else:
        assert 'staging failed on host failure-3' in release['reason'], release['reason']
