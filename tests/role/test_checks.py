"""Checks that prove what users get, and failures that read like the role's (issue 13): a shell string
refused when the run is planned, a reload command and a systemd unit that fail after the switch (and again
after the rollback), an old release that still answers the URL check, and a staged release that fails its
pre-switch check and never goes live.

Each ``step_*`` fixture runs playbooks and depends on the step before it; the tests of a step come
before the next step's tests in this file.

run: bash tests/role/run.sh -k checks
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    FILES,
    HOSTS,
    PYTHON,
    FileServer,
    Fleet,
    Run,
    StatusServer,
    current,
    diff_snapshots,
    history,
    lock_held,
    make_archive,
    meta,
    snapshot,
)

# A reload command that fails on every host, after the switch and after the rollback.
FAILING_RELOAD = [PYTHON, '-c', 'import sys; sys.stderr.write("reload refused by the app\\n"); sys.exit(3)']


def archive(fleet: Fleet, release_id: str) -> Path:
    """An app whose VERSION file names its release."""
    return make_archive(
        path=fleet.base / f'{release_id}.tar.gz', files={'index.html': f'{release_id}\n', 'VERSION': f'{release_id}\n'}
    )


def deploy_vars(fleet: Fleet, release_id: str, **extra) -> dict:
    return {
        'release_id': release_id,
        'release_source': 'archive',
        'release_archive': str(archive(fleet, release_id)),
        'release_healthcheck_retries': 1,
        'release_healthcheck_delay': 0.2,
        'release_healthcheck_timeout': 5,
        **extra,
    }


def currents(fleet: Fleet) -> dict[str, str | None]:
    return {host: current(root) for host, root in fleet.roots.items()}


def final_messages(run: Run) -> dict[str, str]:
    return {host: result['msg'] for host, result in run.results(task='Fail the deploy').items()}


# --- step 1: the first release -------------------------------------------------------------------


RECORD_PREVIOUS = str(FILES / 'hooks' / 'record_previous.yml')


@pytest.fixture(scope='module')
def step_first(fleet: Fleet) -> Run:
    return fleet.ok(fleet.deploy(extra=deploy_vars(fleet, 'c1', release_hooks_before_activate=[RECORD_PREVIOUS])))


def test_first_release_is_live(fleet: Fleet, step_first: Run) -> None:
    assert currents(fleet) == dict.fromkeys(HOSTS, 'c1')


def test_previous_id_is_an_empty_string_on_a_first_deploy(fleet: Fleet, step_first: Run) -> None:
    # '' on every ansible-core: a none became '' before 2.19 and stayed none after
    for host, root in fleet.roots.items():
        recorded = (root / 'releases' / 'c1' / 'previous-id.json').read_text(encoding='utf-8')
        assert json.loads(recorded) == '', f'{host}: release_deploy_previous_id was {recorded.strip()}'


# --- step 2: a command string with shell syntax is refused by the plan ----------------------------


@pytest.fixture(scope='module')
def step_shell_string(fleet: Fleet, step_first: Run) -> tuple[Run, list[str]]:
    before = snapshot(*fleet.roots.values())
    extra = deploy_vars(fleet, 'c2', release_reload_command='kill -HUP $(cat /run/app.pid)')
    run = fleet.failed(fleet.deploy(extra=extra))
    return run, diff_snapshots(before=before, after=snapshot(*fleet.roots.values()))


def test_shell_string_is_refused_when_the_run_is_planned(step_shell_string: tuple[Run, list[str]]) -> None:
    run, changes = step_shell_string
    assert changes == [], 'the refused deploy changed the disk:\n' + '\n'.join(changes)
    assert not any(name.startswith('Stage release') for name in run.ran()), run.describe()
    text = run.stdout
    assert "release_reload_command 'kill -HUP $(cat /run/app.pid)' contains shell syntax ($()" in text, run.describe()
    # the argv list it would run, and the sh -c form
    assert r'[\"kill\", \"-HUP\", \"$(cat\", \"/run/app.pid)\"]' in text, run.describe()
    assert r'release_reload_command: [\"sh\", \"-c\", \"kill -HUP $(cat /run/app.pid)\"]' in text, run.describe()


# --- step 3: the reload command fails after the switch, and again after the rollback -------------


@pytest.fixture(scope='module')
def step_bad_reload(fleet: Fleet, step_shell_string: tuple) -> Run:
    return fleet.failed(fleet.deploy(extra=deploy_vars(fleet, 'c3', release_reload_command=FAILING_RELOAD)))


def test_failed_reload_ends_with_the_roles_message(fleet: Fleet, step_bad_reload: Run) -> None:
    run = step_bad_reload
    messages = final_messages(run)
    assert set(messages) == set(HOSTS), run.describe()
    for host, msg in messages.items():
        assert msg.startswith('release c3 failed after the switch: '), msg
        assert 'Run the reload command failed on host' in msg and 'reload refused by the app' in msg, msg
        assert f'rolled back to c1: current points at c1 on host {host}, release c3 is marked failed' in msg, msg
        assert f'after the rollback, Run the reload command failed on host {host}' in msg, msg
        assert 'One or more items failed' not in msg, msg
    for host, root in fleet.roots.items():
        assert current(root) == 'c1', host
        assert not lock_held(root), host
        assert run.recap[host]['failed'] == 1, f'{host}: {run.recap[host]}'
        reason = meta(root, release='c3')['reason']
        assert 'reload refused by the app' in reason and '(rc 3)' in reason, f'{host}: {reason}'
        assert [(e['event'], e['id']) for e in history(root)][-2:] == [('deploy', 'c3'), ('rollback', 'c1')], host


def test_failed_reload_command_is_not_changed(step_bad_reload: Run) -> None:
    results = step_bad_reload.results(task='Run the reload command')
    assert set(results) == set(HOSTS), step_bad_reload.describe()
    for host, result in results.items():
        assert result.get('rc') == 3, f'{host}: {result}'
        assert result['changed'] is False, f'{host}: a failed reload command reported changed: {result}'


# --- step 4: a systemd unit on a host without systemd ---------------------------------------------


def has_systemd() -> bool:
    return Path('/run/systemd/system').is_dir()


@pytest.fixture(scope='module')
def step_bad_unit(fleet: Fleet, step_bad_reload: Run) -> Run:
    extra = deploy_vars(fleet, 'c4', release_reload_services=['atomic-deploy-test-no-such-unit'])
    return fleet.failed(fleet.deploy(extra=extra))


def test_failed_unit_reload_names_the_unit_not_the_loop(fleet: Fleet, step_bad_unit: Run) -> None:
    if has_systemd():
        pytest.skip('this host runs systemd: the unit is just missing, which the same path reports')
    run = step_bad_unit
    messages = final_messages(run)
    assert set(messages) == set(HOSTS), run.describe()
    for host, msg in messages.items():
        assert msg.startswith('release c4 failed after the switch: '), msg
        assert 'Reload the services failed on host' in msg, msg
        assert 'atomic-deploy-test-no-such-unit: ' in msg, msg
        assert 'One or more items failed' not in msg, msg
        assert f'rolled back to c1: current points at c1 on host {host}' in msg, msg
        assert 'after the rollback, Reload the services failed' in msg, msg
    for host, root in fleet.roots.items():
        assert current(root) == 'c1', host
        assert not lock_held(root), host
        reason = meta(root, release='c4')['reason']
        assert 'atomic-deploy-test-no-such-unit: ' in reason and 'One or more items failed' not in reason, reason


# --- step 5: an old release still answers the URL check --------------------------------------------


@pytest.fixture(scope='module')
def stale_server(fleet: Fleet, step_bad_unit: Run) -> Iterator[FileServer]:
    """Serves h1's releases/c1 itself: like a server that resolved current once, at start."""
    server = FileServer(directory=(fleet.root('h1') / 'releases' / 'c1').resolve())
    yield server
    server.stop()


@pytest.fixture(scope='module')
def step_stale(fleet: Fleet, stale_server: FileServer) -> Run:
    extra = deploy_vars(
        fleet, 'c5', release_healthcheck_url=f'{stale_server.url}/VERSION', release_healthcheck_expect_id=True
    )
    return fleet.failed(fleet.deploy(extra=extra))


def test_old_release_answering_fails_the_identity_check(fleet: Fleet, step_stale: Run) -> None:
    run = step_stale
    for msg in final_messages(run).values():
        assert msg.startswith('release c5 failed after the switch: '), msg
        assert re.search(r'answered as release c1, not c5', msg), msg
        assert 'rolled back to c1' in msg, msg
    for host, root in fleet.roots.items():
        assert current(root) == 'c1', host
        assert meta(root, release='c5')['state'] == 'failed', host


@pytest.fixture(scope='module')
def step_identity_ok(fleet: Fleet, step_stale: Run) -> Iterator[Run]:
    """Serves h1's current, followed at each request: the new release answers."""
    server = FileServer(directory=fleet.root('h1'))
    try:
        # The app does not name its release itself: the role writes RELEASE_ID into the release.
        extra = deploy_vars(
            fleet,
            'c6',
            release_id_file='RELEASE_ID',
            release_healthcheck_url=f'{server.url}/current/RELEASE_ID',
            release_healthcheck_expect_id=True,
        )
        yield fleet.ok(fleet.deploy(extra=extra))
    finally:
        server.stop()


def test_new_release_answering_passes_the_identity_check(fleet: Fleet, step_identity_ok: Run) -> None:
    assert currents(fleet) == dict.fromkeys(HOSTS, 'c6')
    for host, root in fleet.roots.items():
        id_file = root / 'releases' / 'c6' / 'RELEASE_ID'
        assert id_file.read_text(encoding='utf-8') == 'c6\n', host
        assert oct(id_file.stat().st_mode & 0o777) == '0o644', host
    checks = step_identity_ok.results(task='Check the application URL after the switch')
    # the default callback prints no result for a passing check: the recap and the current link tell
    assert checks == {} or all(not r.get('failed') for r in checks.values())


# --- step 6: the staged release fails its pre-switch check: no host switches ---------------------------


@pytest.fixture(scope='module')
def step_precheck(fleet: Fleet, step_identity_ok: Run) -> tuple[Run, list[str]]:
    server = StatusServer(statuses={}, default=500)
    try:
        extra = deploy_vars(fleet, 'c7', release_precheck_url=f'{server.url}/next/VERSION')
        run = fleet.failed(fleet.deploy(extra=extra))
    finally:
        server.stop()
    return run, server.requests


def test_release_failing_the_precheck_never_goes_live(fleet: Fleet, step_precheck: tuple[Run, list[str]]) -> None:
    run, requests = step_precheck
    assert requests and set(requests) == {'/next/VERSION'}, requests
    assert not any(name.startswith('Switch current to release') for name in run.ran()), run.describe()
    for host, msg in final_messages(run).items():
        assert msg.startswith('release c7 was not switched on any host: '), msg
        assert 'Check the staged release over HTTP before the switch' in msg and '500' in msg, msg
        assert f'current still points at c6 on host {host}' in msg, msg
    for host, root in fleet.roots.items():
        assert current(root) == 'c6', host
        assert meta(root, release='c7')['state'] == 'failed', host
        assert not lock_held(root), host
        events = [(e['event'], e['id']) for e in history(root)]
        assert ('deploy', 'c7') not in events, f'{host}: c7 went live: {events}'


def test_next_points_at_the_staged_release(fleet: Fleet, step_precheck: tuple) -> None:
    for host, root in fleet.roots.items():
        link = root / 'next'
        assert link.is_symlink(), f'{host}: {link} is missing'
        assert Path(subprocess.check_output(['readlink', str(link)], text=True).strip()).name == 'c7', host
