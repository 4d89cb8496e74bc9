"""Releases piling up and deploys going wrong on three hosts: keep-N pruning, a host that cannot fetch,
a failed post-switch URL check, rollback to the previous release, a refused rollback, the status table.

Each ``step_*`` fixture runs playbooks and depends on the step before it; the tests of a step come
before the next step's tests in this file (pytest sets module fixtures up lazily, in test order).

run: bash tests/role/run.sh -k failures
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import (
    HOSTS,
    Fleet,
    Run,
    StatusServer,
    current,
    diff_snapshots,
    free_port,
    history,
    lock_held,
    make_archive,
    meta,
    releases,
    sha256,
    snapshot,
)


@pytest.fixture(scope='module')
def archive(fleet: Fleet) -> Path:
    return make_archive(path=fleet.base / 'app.tar.gz', files={'index.html': 'app\n'})


def deploy_vars(*, archive: Path, release_id: str, **extra) -> dict:
    return {
        'release_id': release_id,
        'release_source': 'archive',
        'release_archive': str(archive),
        'release_keep': 2,
        **extra,
    }


def last_event(root: Path) -> tuple[str, str, str | None]:
    entry = history(root)[-1]
    return entry['event'], entry['id'], entry.get('previous')


# --- step 1: four deploys with release_keep=2 ------------------------------------------------------


@pytest.fixture(scope='module')
def step_four(fleet: Fleet, archive: Path) -> dict[str, dict[str, set[str]]]:
    seen: dict[str, dict[str, set[str]]] = {}
    for release_id in ('k1', 'k2', 'k3', 'k4'):
        fleet.ok(fleet.deploy(extra=deploy_vars(archive=archive, release_id=release_id)))
        seen[release_id] = {host: releases(root) for host, root in fleet.roots.items()}
    return seen


def test_keep_leaves_the_newest_complete_releases(fleet: Fleet, step_four: dict) -> None:
    assert step_four['k2'] == dict.fromkeys(HOSTS, {'k1', 'k2'})
    assert step_four['k3'] == dict.fromkeys(HOSTS, {'k2', 'k3'})
    for host, root in fleet.roots.items():
        assert releases(root) == {'k3', 'k4'}, host
        assert current(root) == 'k4', host
        assert {meta(root, release=r)['state'] for r in ('k3', 'k4')} == {'complete'}, host
        assert not (root / 'releases' / 'k1').exists() and not (root / 'releases' / 'k2').exists(), host


# --- step 2: one host cannot fetch (wrong checksum): no host switches --------------------------------


@pytest.fixture(scope='module')
def step_bad_fetch(fleet: Fleet, archive: Path, step_four: dict) -> Run:
    wrong = 'sha256:' + '0' * 64
    assert wrong != f'sha256:{sha256(archive)}'
    return fleet.failed(
        fleet.deploy(extra=deploy_vars(archive=archive, release_id='k5'), host_vars={'h3': {'release_checksum': wrong}})
    )


def test_one_host_failing_to_fetch_switches_no_host(fleet: Fleet, step_bad_fetch: Run) -> None:
    run = step_bad_fetch
    assert 'release k5 was not switched on any host' in run.stdout, run.describe()
    assert 'staging failed on host h3' in run.stdout, run.describe()
    for host, root in fleet.roots.items():
        assert current(root) == 'k4', f'{host}: current moved'
        assert meta(root, release='k5')['state'] == 'failed', f'{host}: k5 is not marked failed'
        assert not lock_held(root), f'{host}: the deploy lock was left behind'
        assert run.recap[host]['failed'] == 1, f'{host}: {run.recap[host]}'
        assert last_event(root)[:2] == ('failed', 'k5'), host
        reason = meta(root, release='k5')['reason']
        assert 'checksum mismatch' in reason, f'{host}: k5 failed for {reason}'


# --- step 3: the URL check fails on one host after the switch: every host rolls back ----------------


@pytest.fixture(scope='module')
def step_bad_check(fleet: Fleet, archive: Path, step_bad_fetch: Run) -> tuple[Run, list[str]]:
    server = StatusServer(statuses={'/h1': 200, '/h2': 200, '/h3': 500})
    try:
        extra = deploy_vars(
            archive=archive,
            release_id='k6',
            release_healthcheck_retries=0,
            release_healthcheck_delay=0,
            release_healthcheck_timeout=5,
        )
        # Per host, so not an extra var: h1 and h2 pass their check, h3 gets a 500.
        host_vars = {host: {'release_healthcheck_url': f'{server.url}/{host}'} for host in HOSTS}
        run = fleet.failed(fleet.deploy(extra=extra, host_vars=host_vars))
    finally:
        server.stop()
    return run, server.requests


def test_failed_url_check_on_one_host_rolls_every_host_back(
    fleet: Fleet, step_bad_check: tuple[Run, list[str]]
) -> None:
    run, requests = step_bad_check
    assert sorted(requests) == ['/h1', '/h2', '/h3'], requests
    assert 'release k6 failed after the switch' in run.stdout, run.describe()
    assert 'rolled back to k4' in run.stdout, run.describe()
    assert re.search(r'host h3\b.*answered status 500', run.stdout), run.describe()
    for host, root in fleet.roots.items():
        assert current(root) == 'k4', f'{host}: not rolled back'
        assert meta(root, release='k6')['state'] == 'failed', f'{host}: k6 is not marked failed'
        assert not lock_held(root), f'{host}: the deploy lock was left behind'
        events = [(e['event'], e['id']) for e in history(root)][-2:]
        assert events == [('deploy', 'k6'), ('rollback', 'k4')], f'{host}: {events}'
        assert run.recap[host]['failed'] == 1, f'{host}: {run.recap[host]}'


def test_no_pruning_after_a_failed_check(fleet: Fleet, step_bad_check: tuple) -> None:
    # k5 failed after current k4: kept; k3 is the rollback target of k4.
    for host, root in fleet.roots.items():
        assert releases(root) == {'k3', 'k4', 'k5', 'k6'}, host


# --- step 4: rollback to the previous release ----------------------------------------------------------


@pytest.fixture(scope='module')
def step_rollback(fleet: Fleet, step_bad_check: tuple) -> Run:
    return fleet.ok(fleet.playbook('rollback'))


def test_rollback_to_the_previous_release(fleet: Fleet, step_rollback: Run) -> None:
    for host, root in fleet.roots.items():
        assert current(root) == 'k3', host
        assert meta(root, release='k4')['state'] == 'failed', f'{host}: the release rolled back from is not failed'
        assert last_event(root) == ('rollback', 'k3', 'k4'), host
        assert not lock_held(root), host
        assert step_rollback.recap[host]['changed'] == 1, f'{host}: {step_rollback.recap[host]}'


# --- step 5: a rollback to a failed release is refused -------------------------------------------------


@pytest.fixture(scope='module')
def step_refused(fleet: Fleet, step_rollback: Run) -> tuple[Run, list[str]]:
    before = snapshot(*fleet.roots.values())
    run = fleet.failed(fleet.playbook('rollback', extra={'release_rollback_to': 'k6'}))
    return run, diff_snapshots(before=before, after=snapshot(*fleet.roots.values()))


def test_rollback_to_a_failed_release_is_refused(fleet: Fleet, step_refused: tuple[Run, list[str]]) -> None:
    run, changes = step_refused
    for host in HOSTS:
        refusal = rf'^fatal: \[{host}\]: FAILED!.*refusing to roll back to k6: it is failed'
        assert re.search(refusal, run.stdout, re.MULTILINE), run.describe()
    assert changes == [], 'the refused rollback changed the disk:\n' + '\n'.join(changes)
    for host, root in fleet.roots.items():
        assert current(root) == 'k3', host
        assert run.recap[host]['failed'] == 1, f'{host}: {run.recap[host]}'


# --- step 6: the status entry point -----------------------------------------------------------------------


@pytest.fixture(scope='module')
def step_status(fleet: Fleet, step_refused: tuple) -> Run:
    return fleet.ok(fleet.playbook('status'))


def test_status_prints_the_table(fleet: Fleet, step_status: Run) -> None:
    shown = step_status.results(task='Show the releases of')
    assert set(shown) == set(HOSTS), step_status.describe()
    for host, root in fleet.roots.items():
        lines = shown[host]['msg']
        assert lines[:4] == [f'root     {root}', 'current  k3', 'rollback none', 'lock     free'], lines
        in_order = sorted(releases(root), key=lambda r: (meta(root, release=r)['started'], r))
        assert in_order == ['k3', 'k4', 'k5', 'k6'], in_order
        header, *rows = lines[4 : 5 + len(in_order)]
        assert header.split() == ['release', 'state', 'started', 'by'], lines
        for row, release_id in zip(rows, in_order, strict=True):
            record = meta(root, release=release_id)
            cells = row.split()
            marked = cells[0] == '*'
            assert marked == (release_id == 'k3'), f'{host}: {row!r}'
            assert cells[marked:][:3] == [release_id, record['state'], record['started']], f'{host}: {row!r}'
        entries = history(root)[-5:]
        shown_history = lines[5 + len(in_order) :]
        assert len(shown_history) == len(entries), lines
        assert shown_history[0].startswith('history '), lines
        for line, entry in zip(shown_history, entries, strict=True):
            assert re.search(rf'\b{entry["event"]}\s+{entry["id"]}\b', line), f'{host}: {line!r} is not {entry}'


# --- step 7: one host alone, and nothing listens at the check URL ------------------------------------------


@pytest.fixture(scope='module')
def step_single_host(fleet: Fleet, archive: Path, step_status: Run) -> Run:
    extra = deploy_vars(
        archive=archive,
        release_id='k7',
        release_hosts='h1',
        release_healthcheck_url=f'http://127.0.0.1:{free_port()}/health',
        release_healthcheck_retries=0,
        release_healthcheck_delay=0,
    )
    return fleet.failed(fleet.deploy(extra=extra))


def test_single_host_rolls_back_when_nothing_answers(fleet: Fleet, step_single_host: Run) -> None:
    run = step_single_host
    assert set(run.recap) == {'h1'}, run.describe()
    assert 'release k7 failed after the switch' in run.stdout and 'rolled back to k3' in run.stdout, run.describe()
    root = fleet.root('h1')
    assert current(root) == 'k3'
    assert meta(root, release='k7')['state'] == 'failed'
    assert [(e['event'], e['id']) for e in history(root)][-2:] == [('deploy', 'k7'), ('rollback', 'k3')]
    assert not lock_held(root)
    for host in ('h2', 'h3'):
        assert current(fleet.root(host)) == 'k3' and 'k7' not in releases(fleet.root(host)), host
