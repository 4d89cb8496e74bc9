"""Smoke tests of the hostctl test hosts: each is a separate machine reached over SSH as deploy."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ['MOLECULE_INVENTORY_FILE']
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
HOST_NAMES = sorted(RUNNER.get_hosts('all'))
testinfra_hosts = HOST_NAMES


@pytest.fixture(scope='module')
def all_hosts() -> list[testinfra.host.Host]:
    inventory_dir = str(Path(INVENTORY).parent)
    return [testinfra.get_host(f'ansible://{name}', ansible_inventory=inventory_dir) for name in HOST_NAMES]


def test_three_hosts_in_inventory() -> None:
    assert HOST_NAMES == ['smoke-1', 'smoke-2', 'smoke-3'], f'inventory {INVENTORY} lists {HOST_NAMES}'


def test_hostname_is_the_inventory_name(host: testinfra.host.Host) -> None:
    assert host.check_output('hostname') == host.backend.get_hostname()


def test_hostnames_differ(all_hosts: list[testinfra.host.Host]) -> None:
    names = [each.check_output('hostname') for each in all_hosts]
    assert len(set(names)) == len(all_hosts), f'hostnames {names} are not distinct'


def test_login_user_is_deploy(host: testinfra.host.Host) -> None:
    assert host.check_output('id --user --name') == 'deploy'
    assert host.check_output('id --user') != '0'


def test_sudo_without_password(host: testinfra.host.Host) -> None:
    result = host.run('sudo --non-interactive id --user')
    assert result.rc == 0, f'sudo failed: {result.stderr}'
    assert result.stdout.strip() == '0'


def test_deploy_is_in_www_data(host: testinfra.host.Host) -> None:
    assert host.group('www-data').exists
    assert 'www-data' in host.user('deploy').groups


def test_python3_and_nginx_installed_nginx_not_running(host: testinfra.host.Host) -> None:
    assert host.file('/usr/bin/python3').exists
    assert host.package('nginx').is_installed
    assert not host.process.filter(comm='nginx')


def test_password_login_is_disabled(host: testinfra.host.Host) -> None:
    with host.sudo():
        settings = host.check_output('sshd -T -f /etc/ssh/hostctl_sshd_config')
    assert 'passwordauthentication no' in settings.splitlines()


def test_own_pid_namespace(host: testinfra.host.Host) -> None:
    # PID 1 is the host's own init, not the controller's
    init = host.file('/proc/1/cmdline').content_string.replace('\0', ' ')
    assert 'hostctl.py _init' in init, f'pid 1 is {init!r}'


def test_no_default_route(host: testinfra.host.Host) -> None:
    routes = host.file('/proc/net/route').content_string.splitlines()[1:]
    assert routes, 'no routes at all: the host has no network'
    assert all(line.split()[1] != '00000000' for line in routes), f'default route present: {routes}'


def test_root_filesystems_are_separate(all_hosts: list[testinfra.host.Host], tmp_path: Path) -> None:
    first, *others = all_hosts
    marker = f'/etc/hostctl-smoke-{uuid.uuid4().hex}'
    with first.sudo():
        first.run_expect([0], 'touch %s', marker)
    try:
        assert first.file(marker).exists
        for other in others:
            assert not other.file(marker).exists, f'{marker} written on {HOST_NAMES[0]} shows on another host'
        assert not Path(marker).exists(), f'{marker} written on {HOST_NAMES[0]} shows on the controller'
    finally:
        with first.sudo():
            first.run_expect([0], 'rm -f %s', marker)
    controller_marker = tmp_path / 'controller-marker'
    controller_marker.write_text('x')
    assert not first.file(str(controller_marker)).exists, 'a controller file is visible on the host'
