"""Generated release ids: one id per run, the same on every host and in every serial batch; and the
role's documentation as ansible-doc renders it.

run: bash tests/role/run.sh -k ids
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from helpers import FILES, HOSTS, PYTHON, VENV_BIN, Fleet, Run, current, history, make_archive, meta

GENERATED = re.compile(r'^\d{8}T\d{6}Z$')


@pytest.fixture(scope='module')
def archive(fleet: Fleet) -> Path:
    return make_archive(path=fleet.base / 'app.tar.gz', files={'index.html': 'app\n'})


def ids(fleet: Fleet) -> dict[str, str | None]:
    return {host: current(root) for host, root in fleet.roots.items()}


@pytest.fixture(scope='module')
def step_check_fresh(fleet: Fleet, archive: Path) -> Run:
    extra = {'release_archive': str(archive), 'release_shared_dirs': ['storage'], 'release_migrate_command': ['false']}
    return fleet.deploy(extra=extra, check=True, diff=True)


def test_check_mode_on_fresh_roots_creates_nothing(fleet: Fleet, step_check_fresh: Run) -> None:
    # The migration (false) would fail a real run: check mode skips it and does not fail on what a real
    # run would have created.
    fleet.ok(step_check_fresh)
    assert not (fleet.base / 'roots').exists(), f'--check created {sorted((fleet.base / "roots").rglob("*"))}'
    assert step_check_fresh.stdout.count('-    "current": null') == len(HOSTS), step_check_fresh.describe()


@pytest.fixture(scope='module')
def step_generated(fleet: Fleet, archive: Path, step_check_fresh: Run) -> tuple[Run, dict[str, str | None]]:
    run = fleet.ok(fleet.deploy(extra={'release_archive': str(archive)}))
    return run, ids(fleet)


def test_generated_id_is_the_same_on_every_host(fleet: Fleet, step_generated: tuple) -> None:
    _run, found = step_generated
    first = found['h1']
    assert first is not None and GENERATED.match(first), found
    assert found == dict.fromkeys(HOSTS, first), found
    for host, root in fleet.roots.items():
        assert meta(root, release=first)['id'] == first, host


@pytest.fixture(scope='module')
def step_serial(fleet: Fleet, archive: Path, step_generated: tuple) -> tuple[Run, dict[str, str | None], Path]:
    log = fleet.base / 'migrations.log'
    extra = {
        'release_archive': str(archive),
        'release_serial': 1,
        'release_migrate_command': [PYTHON, str(FILES / 'migrate_log.py'), str(log)],
    }
    run = fleet.ok(fleet.deploy(extra=extra))
    return run, ids(fleet), log


def test_generated_id_is_the_same_in_every_serial_batch(fleet: Fleet, step_generated: tuple, step_serial) -> None:
    run, found, _log = step_serial
    earlier = step_generated[1]['h1']
    # one stage task per batch: the play really ran host by host
    stages = [name for name, _statuses in run.tasks() if name.startswith('Stage release ')]
    assert len(stages) == len(HOSTS), run.describe()
    latest = found['h1']
    assert latest is not None and GENERATED.match(latest), found
    assert latest != earlier, "the second run reused the first run's id"
    assert found == dict.fromkeys(HOSTS, latest), found
    for host, root in fleet.roots.items():
        last = history(root)[-1]
        assert (last['event'], last['id'], last.get('previous')) == ('deploy', latest, earlier), host


def test_migrations_run_once_in_the_first_serial_batch(fleet: Fleet, step_serial) -> None:
    _run, found, log = step_serial
    expected = f'h1 {fleet.root("h1") / "releases" / str(found["h1"])}'
    assert log.read_text(encoding='utf-8').splitlines() == [expected]


def test_ansible_doc_renders_the_role(fleet: Fleet) -> None:
    proc = subprocess.run(
        [str(VENV_BIN / 'ansible-doc'), '-t', 'role', 'atomic.deploy.release'],
        env=fleet.env(),
        cwd=fleet.base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert '[WARNING]' not in proc.stderr and '[ERROR]' not in proc.stderr, proc.stderr
    for entry in ('main', 'rollback', 'status'):
        assert re.search(rf'ENTRY POINT: \*?{entry}\*? - ', proc.stdout), f'entry point {entry} missing\n{proc.stdout}'
    for name in ('release_root', 'release_migrate_command', 'release_rollback_to', 'release_status_history'):
        assert name in proc.stdout, f'{name} missing\n{proc.stdout}'
