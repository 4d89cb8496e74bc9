"""Reloads and restarts with the host's own service manager (issue 18, release_service_manager).

These hosts run no systemd, as a FreeBSD (rc.d) or OpenRC host would not: an init script stands for the
service, and ``ansible.builtin.systemd_service``, which the role used before, fails there ("Service is in
unknown state"). The script records what it was asked to do.

run: bash tests/role/run.sh -k service_manager
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import HOSTS, Fleet, current, make_archive

SERVICE = 'atomic-deploy-test-rcd'


def deploy_vars(fleet: Fleet, release_id: str, **extra) -> dict:
    archive = make_archive(path=fleet.base / f'{release_id}.tar.gz', files={'index.html': f'{release_id}\n'})
    return {'release_id': release_id, 'release_source': 'archive', 'release_archive': str(archive), **extra}


@pytest.fixture(scope='module')
def init_script(fleet: Fleet) -> Iterator[Path]:
    if Path('/run/systemd/system').is_dir():
        pytest.fail('this host runs systemd: the test needs a host without it (as CI and the role hosts are)')
    log = fleet.base / 'rcd.log'
    script = Path('/etc/init.d') / SERVICE
    script.write_text(f'#!/bin/sh\necho "$1" >> {log}\nexit 0\n', encoding='utf-8')
    script.chmod(0o755)
    yield log
    script.unlink()


def test_auto_reloads_and_restarts_with_the_hosts_service_manager(fleet: Fleet, init_script: Path) -> None:
    extra = deploy_vars(fleet, 'r1', release_reload_services=[SERVICE], release_restart_services=[SERVICE])
    fleet.ok(fleet.deploy(extra=extra))
    asked = init_script.read_text(encoding='utf-8').split()
    assert asked.count('reload') == len(HOSTS), asked
    # the init script path of ansible.builtin.service restarts as stop then start
    restarts = asked.count('restart') or min(asked.count('stop'), asked.count('start'))
    assert restarts == len(HOSTS), asked
    assert all(current(root) == 'r1' for root in fleet.roots.values())


def test_service_named_explicitly(fleet: Fleet, init_script: Path) -> None:
    init_script.write_text('', encoding='utf-8')
    extra = deploy_vars(fleet, 'r2', release_reload_services=[SERVICE], release_service_manager='service')
    fleet.ok(fleet.deploy(extra=extra))
    assert init_script.read_text(encoding='utf-8').split().count('reload') == len(HOSTS)
    assert all(current(root) == 'r2' for root in fleet.roots.values())
