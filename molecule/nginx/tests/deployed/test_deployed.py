"""After converge and idempotence: every host's nginx serves release n2, the current one."""

from __future__ import annotations

import testinfra
from hostprobe import HOST_NAMES, INVENTORY, Snapshot
from nginxchecks import check_nginx_runs, check_nginx_serves

testinfra_hosts = HOST_NAMES


def test_inventory_has_three_hosts() -> None:
    assert HOST_NAMES == ['nginx-1', 'nginx-2', 'nginx-3'], f'inventory {INVENTORY} lists {HOST_NAMES}'


def test_nginx_serves_the_deployed_release(snap: Snapshot, served_version: str) -> None:
    check_nginx_serves(snap=snap, served_version=served_version, release_id='n2', version='2')


def test_nginx_runs(host: testinfra.host.Host) -> None:
    check_nginx_runs(host=host)
