"""Tests of tests/hosts/hostctl.py.

The first group is pure logic. The second brings real hosts up and down and needs root and the
cached rootfs (`python3 tests/hosts/hostctl.py build` makes it); it is skipped without them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

HOSTCTL = Path(__file__).with_name('hostctl.py')
_spec = importlib.util.spec_from_file_location('hostctl', HOSTCTL)
assert _spec is not None and _spec.loader is not None
hostctl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostctl)


# ---------------------------------------------------------------------------------------------
# pure logic


def test_interface_names_fit_the_kernel_limit() -> None:
    names = hostctl.Names(name='a' + 'b' * 30)
    longest = [names.bridge, names.veth(index=hostctl.MAX_HOSTS), names.peer(index=hostctl.MAX_HOSTS)]
    assert all(len(link) <= 15 for link in longest), longest


@pytest.mark.parametrize('count', [0, 65])
def test_up_takes_1_to_64_hosts(count: int, tmp_path: Path) -> None:
    # make bench-net goes up to 64 hosts; the range is checked before anything is touched
    with pytest.raises(hostctl.HostctlError, match='out of range 1-64'):
        hostctl.do_up(names=hostctl.Names(name='range'), count=count, inventory=tmp_path / 'i.yml', packages=[])
    assert not (tmp_path / 'i.yml').exists()


def test_names_of_different_names_do_not_share_prefixes() -> None:
    web, web2 = hostctl.Names(name='web'), hostctl.Names(name='web-2')
    assert web.owns_netns(netns=web.netns(index=1))
    assert web.owns_netns(netns=web.netns(index=12))
    assert not web.owns_netns(netns=web2.netns(index=1))
    assert not web2.owns_netns(netns=web.netns(index=2))
    assert web2.owns_netns(netns=web2.netns(index=1))
    assert not web.bridge.startswith(web2.bridge) and not web2.bridge.startswith(web.bridge)


def test_same_name_in_another_state_dir_gets_other_kernel_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv('ATOMIC_DEPLOY_STATE_DIR', str(tmp_path / 'a'))
    first = hostctl.Names(name='web')
    monkeypatch.setenv('ATOMIC_DEPLOY_STATE_DIR', str(tmp_path / 'b'))
    second = hostctl.Names(name='web')
    assert first.bridge != second.bridge
    assert first.veth(index=1) != second.veth(index=1)
    assert not first.owns_netns(netns=second.netns(index=1))


@pytest.mark.parametrize('name', ['', 'Web', 'web_1', '-web', '1web', 'w' * 32, 'web/1'])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(hostctl.HostctlError, match='invalid name'):
        hostctl.check_name(name=name)


def test_bad_package_names_are_refused() -> None:
    with pytest.raises(hostctl.HostctlError, match='invalid package name'):
        hostctl.package_set(extra=['nginx; rm -rf /'])


def test_extra_packages_get_their_own_rootfs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv('ATOMIC_DEPLOY_CACHE', str(tmp_path))
    base = hostctl.rootfs_path(packages=hostctl.package_set(extra=['nginx']))
    extra = hostctl.rootfs_path(packages=hostctl.package_set(extra=['rsync']))
    assert base == tmp_path / 'rootfs-bookworm'
    assert extra.parent == tmp_path and extra != base


def test_stale_stamp_means_rebuild(tmp_path: Path) -> None:
    packages = hostctl.package_set(extra=[])
    (tmp_path / 'etc').mkdir()
    stamp = tmp_path / hostctl.STAMP_FILE
    assert not hostctl.rootfs_current(path=tmp_path, packages=packages)
    stamp.write_text(json.dumps(hostctl.rootfs_stamp(packages=packages)))
    assert hostctl.rootfs_current(path=tmp_path, packages=packages)
    assert not hostctl.rootfs_current(path=tmp_path, packages=[*packages, 'rsync'])


def test_apt_mirror_from_deb822(tmp_path: Path) -> None:
    (tmp_path / 'sources.list.d').mkdir()
    (tmp_path / 'sources.list.d' / 'debian.sources').write_text(
        'Types: deb\n# a comment\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n'
        'Components: main\n\n'
        'Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n'
        'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n'
    )
    assert hostctl.apt_mirror(apt_dir=tmp_path) == 'http://mirror.example/debian'


def test_apt_mirror_from_one_line_format(tmp_path: Path) -> None:
    (tmp_path / 'sources.list').write_text(
        '# deb http://commented.example/debian bookworm main\n'
        'deb [signed-by=/k.gpg] http://one.example/debian bookworm main\n'
    )
    assert hostctl.apt_mirror(apt_dir=tmp_path) == 'http://one.example/debian'


def test_apt_mirror_missing(tmp_path: Path) -> None:
    with pytest.raises(hostctl.HostctlError, match='no apt source for debian bookworm'):
        hostctl.apt_mirror(apt_dir=tmp_path)


def test_inventory_is_valid_yaml_with_every_connection_variable() -> None:
    state = {
        'name': 'web-a',
        'private_key': '/state/web-a/ssh/id_ed25519',
        'hosts': [{'name': 'web-a-1', 'address': '10.99.7.2'}, {'name': 'web-a-2', 'address': '10.99.7.3'}],
    }
    inventory = yaml.safe_load(hostctl.render_inventory(state=state))
    hosts = inventory['all']['hosts']
    assert list(hosts) == ['web-a-1', 'web-a-2']
    assert hosts['web-a-2'] == {
        'ansible_host': '10.99.7.3',
        'ansible_user': 'deploy',
        'ansible_ssh_private_key_file': '/state/web-a/ssh/id_ed25519',
        'ansible_ssh_common_args': '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes',
        'ansible_python_interpreter': '/usr/bin/python3',
    }
    assert set(inventory['all']['children']['hostctl_web_a']['hosts']) == {'web-a-1', 'web-a-2'}


# ---------------------------------------------------------------------------------------------
# real hosts

needs_hosts = pytest.mark.skipif(
    os.geteuid() != 0
    or not hostctl.rootfs_current(
        path=hostctl.rootfs_path(packages=hostctl.package_set(extra=[])), packages=hostctl.package_set(extra=[])
    ),
    reason='needs root and the cached rootfs (python3 tests/hosts/hostctl.py build)',
)
# unique per run, so two checkouts can run these tests at the same time
NAME = f'selftest-{os.getpid()}'


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv('ATOMIC_DEPLOY_STATE_DIR', str(tmp_path / 'state'))
    monkeypatch.delenv('ATOMIC_DEPLOY_HOSTCTL_FAULT', raising=False)
    yield tmp_path / 'state'
    hostctl_cli('down', '--name', NAME)


def hostctl_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HOSTCTL), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def leftovers(*, state_dir: Path) -> dict[str, list[str]]:
    names = hostctl.Names(name=NAME)
    marker = f'{state_dir}/'
    return {
        'netns': hostctl.owned_netns(names=names),
        'links': hostctl.links_with_prefixes(prefixes=(names.veth_prefix, names.peer_prefix, names.bridge)),
        'mounts': hostctl.mounts_under(path=state_dir),
        'processes': [
            entry.name
            for entry in Path('/proc').iterdir()
            if entry.name.isdigit() and marker in hostctl.pid_cmdline(pid=int(entry.name))
        ],
        'dirs': [str(path) for path in state_dir.glob(NAME)],
    }


CLEAN = {'netns': [], 'links': [], 'mounts': [], 'processes': [], 'dirs': []}


@needs_hosts
def test_up_ssh_down_twice(state_dir: Path, tmp_path: Path) -> None:
    inventory = tmp_path / 'inventory.yml'
    up = hostctl_cli('up', '--name', NAME, '--count', '2', '--inventory', str(inventory))
    assert up.returncode == 0, up.stderr
    summary = json.loads(up.stdout)
    hosts = yaml.safe_load(inventory.read_text())['all']['hosts']
    assert list(hosts) == [f'{NAME}-1', f'{NAME}-2']
    seen = []
    for name, host_vars in hosts.items():
        ssh = subprocess.run(
            ['ssh', *hostctl.ssh_args(key=Path(host_vars['ansible_ssh_private_key_file']))]
            + [f'deploy@{host_vars["ansible_host"]}', 'hostname; sudo -n id -un; id -un'],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert ssh.returncode == 0, ssh.stderr
        assert ssh.stdout.split() == [name, 'root', 'deploy']
        seen.append(host_vars['ansible_host'])
    assert seen == [host['address'] for host in summary['hosts']]
    status = hostctl_cli('status', '--name', NAME)
    assert status.returncode == 0 and json.loads(status.stdout)['up'] is True
    for _attempt in range(2):
        down = hostctl_cli('down', '--name', NAME)
        assert down.returncode == 0, down.stderr
        assert leftovers(state_dir=state_dir) == CLEAN
    status = hostctl_cli('status', '--name', NAME)
    assert status.returncode == 1 and json.loads(status.stdout)['up'] is False


@needs_hosts
@pytest.mark.parametrize('step', ['bridge', 'netns-2', 'link-2', 'started-1', 'ready'])
def test_down_cleans_a_failed_up(state_dir: Path, tmp_path: Path, step: str) -> None:
    env = {**os.environ, 'ATOMIC_DEPLOY_HOSTCTL_FAULT': step}
    up = hostctl_cli(
        'up', '--name', NAME, '--count', '2', '--inventory', str(tmp_path / 'i.yml'), '--keep-on-failure', env=env
    )
    assert up.returncode == 1
    assert f'fault injected at step {step}' in up.stderr
    assert leftovers(state_dir=state_dir)['links'], 'the failed up left nothing to clean: the fault came too early'
    down = hostctl_cli('down', '--name', NAME)
    assert down.returncode == 0, down.stderr
    assert leftovers(state_dir=state_dir) == CLEAN


@needs_hosts
def test_failed_up_cleans_itself(state_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, 'ATOMIC_DEPLOY_HOSTCTL_FAULT': 'ready'}
    up = hostctl_cli('up', '--name', NAME, '--count', '2', '--inventory', str(tmp_path / 'i.yml'), env=env)
    assert up.returncode == 1
    assert leftovers(state_dir=state_dir) == CLEAN


@needs_hosts
@pytest.mark.parametrize('delay', [0.15, 0.3, 0.45])
def test_down_cleans_a_killed_up(state_dir: Path, tmp_path: Path, delay: float) -> None:
    process = subprocess.Popen(
        [sys.executable, str(HOSTCTL), 'up', '--name', NAME, '--count', '3', '--inventory', str(tmp_path / 'i.yml')],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    down = hostctl_cli('down', '--name', NAME)
    assert down.returncode == 0, down.stderr
    assert leftovers(state_dir=state_dir) == CLEAN
