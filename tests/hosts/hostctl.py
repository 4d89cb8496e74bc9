"""Bring up and tear down real SSH test hosts for the molecule scenarios.

Each host is a Debian 12 system reached over SSH:
- its own network namespace, joined to a per-name bridge in the root namespace by a veth pair
  (10.99.<k>.<i>/24, the bridge is .1, no default route);
- its own filesystem: an overlay mount whose lower layer is a cached debootstrap rootfs and whose
  upper layer lives in the state directory;
- its own mount, UTS and PID namespaces; PID 1 is this script's `_init`, which mounts /proc,
  /sys, /dev, /dev/pts and /run, sets the hostname, chroots and runs Debian's sshd.

Every step of `up` is recorded in the state file before it is taken, and `down` also sweeps by
name, so `down` leaves nothing behind even after an interrupted `up`.

Usage:
    hostctl.py up --name NAME --count N --inventory PATH [--packages pkg,pkg]
    hostctl.py down --name NAME
    hostctl.py status --name NAME
    hostctl.py build [--packages pkg,pkg]

Environment:
    ATOMIC_DEPLOY_CACHE       rootfs cache (default $HOME/.cache/atomic-deploy)
    ATOMIC_DEPLOY_STATE_DIR   per-name state (default /tmp/atomic-deploy-hosts)
    ATOMIC_DEPLOY_HOSTCTL_FAULT  test only: name of an `up` step at which to fail on purpose
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SUITE = 'bookworm'
# Bump when the way the rootfs is prepared changes, so cached copies are rebuilt.
ROOTFS_FORMAT = 1
BASE_PACKAGES = (
    # setfacl: Ansible's become to an unprivileged user (release_command_user) hands it the module file
    # with an ACL; tests/hosts/test_privilege.py reads ACLs back with getfacl
    'acl',
    'ca-certificates',
    'git',
    'gzip',
    'nginx',
    'openssh-server',
    'procps',
    'python3',
    'sqlite3',
    'sudo',
    'tar',
)
DEPLOY_USER = 'deploy'
SSHD_CONFIG = '/etc/ssh/hostctl_sshd_config'
STAMP_FILE = 'etc/hostctl-rootfs.json'
STATE_FORMAT = 1
NAME_RE = re.compile(r'^[a-z][a-z0-9-]{0,30}$')
SUBNET_BASE = ipaddress.ip_network('10.99.0.0/16')
# make bench-net goes up to 64 hosts (issue 21); each host is a python PID 1 and one sshd
MAX_HOSTS = 64
READY_TIMEOUT = 20.0
NOFILE_CAP = 65536

SSHD_CONFIG_TEXT = """\
# Written by tests/hosts/hostctl.py: test hosts accept key auth for the deploy user only.
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile /etc/ssh/authorized_keys/%u .ssh/authorized_keys
# PAM would add pam_systemd/loginuid noise inside a namespace; key auth does not need it.
UsePAM no
UseDNS no
PrintMotd no
AcceptEnv LANG LC_*
X11Forwarding no
# ansible opens several sessions per host in parallel
MaxSessions 64
MaxStartups 64:30:128
Subsystem sftp /usr/lib/openssh/sftp-server
"""


class HostctlError(Exception):
    """A failure reported to the user as `hostctl: error: ...`."""


# ---------------------------------------------------------------------------------------------
# small helpers


def log(*, msg: str) -> None:
    print(f'hostctl: {msg}', file=sys.stderr, flush=True)


def run(
    *,
    argv: list[str],
    check: bool = True,
    capture: bool = True,
    env: dict[str, str] | None = None,
    timeout: float | None = 120,
) -> subprocess.CompletedProcess[str]:
    """Run argv; capture=False shows its output on standard error: standard output carries only the
    JSON the callers read (molecule/_shared/create.yml parses it)."""
    if capture:
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    else:
        out = sys.stderr.fileno()
        result = subprocess.run(argv, stdout=out, stderr=out, text=True, env=env, timeout=timeout, check=False)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or '').strip() if capture else ''
        raise HostctlError(f'command {argv!r} failed with exit code {result.returncode}: {detail}')
    return result


def cache_dir() -> Path:
    default = Path(os.environ.get('HOME', '/root')) / '.cache' / 'atomic-deploy'
    return Path(os.environ.get('ATOMIC_DEPLOY_CACHE') or default)


def state_root() -> Path:
    return Path(os.environ.get('ATOMIC_DEPLOY_STATE_DIR') or '/tmp/atomic-deploy-hosts')


def name_tag(*, name: str) -> str:
    """Short hash of the state dir and the name: two state dirs may use the same name at once."""
    return hashlib.sha256(f'{state_root().resolve()}\0{name}'.encode()).hexdigest()[:6]


def check_name(*, name: str) -> str:
    if not NAME_RE.match(name):
        raise HostctlError(f"invalid name {name!r}: use 1-31 characters a-z, 0-9 and '-', starting with a letter")
    return name


def fault(*, step: str) -> None:
    """Fail on purpose at `step` (test only), to prove that `down` cleans up a partial `up`."""
    if os.environ.get('ATOMIC_DEPLOY_HOSTCTL_FAULT') == step:
        raise HostctlError(f'fault injected at step {step} (ATOMIC_DEPLOY_HOSTCTL_FAULT)')


@contextlib.contextmanager
def global_lock() -> Iterator[None]:
    """Serialise up/down of all names, whatever their state dir: subnet choice must not race."""
    state_root().mkdir(parents=True, exist_ok=True, mode=0o755)
    lock = Path('/run/lock/atomic-deploy-hostctl.lock')
    if not lock.parent.is_dir():
        lock = state_root() / '.lock'
    with open(lock, 'a+') as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class Names:
    """Every kernel object of one name is derived from it, so `down` can sweep by prefix."""

    def __init__(self, *, name: str) -> None:
        self.name = name
        self.tag = tag = name_tag(name=name)
        self.dir = state_root() / name
        self.state_file = self.dir / 'state.json'
        self.bridge = f'adbr{tag}'
        self.veth_prefix = f'adve{tag}h'
        self.peer_prefix = f'advp{tag}h'
        self.netns_prefix = f'atomic-{tag}-{name}-'

    def netns(self, *, index: int) -> str:
        return f'{self.netns_prefix}{index}'

    def owns_netns(self, *, netns: str) -> bool:
        # exact shape, so that name "web" never sweeps the namespaces of name "web-2"
        return re.fullmatch(rf'{re.escape(self.netns_prefix)}[0-9]+', netns) is not None

    def veth(self, *, index: int) -> str:
        return f'{self.veth_prefix}{index}'

    def peer(self, *, index: int) -> str:
        return f'{self.peer_prefix}{index}'

    def host_dir(self, *, index: int) -> Path:
        return self.dir / 'hosts' / str(index)


def load_state(*, names: Names) -> dict[str, Any]:
    try:
        return json.loads(names.state_file.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        log(msg=f'ignoring unreadable state file {names.state_file}: {exc}')
        return {}


def save_state(*, names: Names, state: dict[str, Any]) -> None:
    names.dir.mkdir(parents=True, exist_ok=True)
    tmp = names.state_file.with_suffix('.tmp')
    with open(tmp, 'w') as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, names.state_file)


# ---------------------------------------------------------------------------------------------
# rootfs cache


def apt_mirror(*, apt_dir: Path = Path('/etc/apt')) -> str:
    """The Debian mirror this machine's apt uses (one-line and deb822 sources)."""
    files = [apt_dir / 'sources.list']
    source_dir = apt_dir / 'sources.list.d'
    if source_dir.is_dir():
        files += sorted(source_dir.glob('*.list')) + sorted(source_dir.glob('*.sources'))
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == '.sources':
            for stanza in re.split(r'\n\s*\n', text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith('#') or ':' not in line or line[:1].isspace():
                        continue
                    key, _sep, value = line.partition(':')
                    fields[key.strip().lower()] = value.strip()
                if fields.get('enabled', 'yes').lower() == 'no' or 'deb' not in fields.get('types', '').split():
                    continue
                if SUITE in fields.get('suites', '').split():
                    return fields.get('uris', '').split()[0]
        else:
            for line in text.splitlines():
                words = re.sub(r'\[[^]]*\]', '', line.split('#', 1)[0]).split()
                if len(words) >= 3 and words[0] == 'deb' and words[2] == SUITE:
                    return words[1]
    raise HostctlError(f'no apt source for debian {SUITE} found in {apt_dir}/sources.list or {source_dir}')


def package_set(*, extra: list[str]) -> list[str]:
    for package in extra:
        if not re.match(r'^[a-z0-9][a-z0-9+.-]+$', package):
            raise HostctlError(f'invalid package name {package!r} in --packages')
    return sorted(set(BASE_PACKAGES) | set(extra))


def rootfs_path(*, packages: list[str]) -> Path:
    extra = sorted(set(packages) - set(BASE_PACKAGES))
    if not extra:
        return cache_dir() / f'rootfs-{SUITE}'
    digest = hashlib.sha256(','.join(extra).encode()).hexdigest()[:8]
    return cache_dir() / f'rootfs-{SUITE}-{digest}'


def rootfs_stamp(*, packages: list[str]) -> dict[str, Any]:
    return {'format': ROOTFS_FORMAT, 'suite': SUITE, 'packages': packages, 'user': DEPLOY_USER}


def rootfs_current(*, path: Path, packages: list[str]) -> bool:
    try:
        return json.loads((path / STAMP_FILE).read_text()) == rootfs_stamp(packages=packages)
    except (OSError, ValueError):
        return False


def ensure_rootfs(*, packages: list[str]) -> Path:
    """Return the cached rootfs, building it first when it is missing or its stamp differs."""
    path = rootfs_path(packages=packages)
    if rootfs_current(path=path, packages=packages):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / '.build.lock', 'a+') as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        if rootfs_current(path=path, packages=packages):
            return path
        build_rootfs(path=path, packages=packages)
    return path


def ensure_debootstrap() -> None:
    """Install debootstrap when it is missing (a fresh machine): apt-get's output goes to stderr."""
    if shutil.which('debootstrap') is None:
        log(msg='debootstrap is missing: installing it with apt-get')
        run(argv=['apt-get', 'update', '-q'], capture=False, timeout=900)
        run(argv=['apt-get', 'install', '-y', '-q', 'debootstrap'], capture=False, timeout=900)


def build_rootfs(*, path: Path, packages: list[str]) -> None:
    ensure_debootstrap()
    mirror = apt_mirror()
    started = time.monotonic()
    log(msg=f'building {SUITE} rootfs {path} from {mirror} (once; later runs use the cache)')
    tmp = Path(tempfile.mkdtemp(prefix=f'.{path.name}.building-', dir=path.parent))
    os.chmod(tmp, 0o755)
    try:
        # A private mount namespace: debootstrap's /proc and /sys mounts vanish with it, even if
        # the build is killed half way.
        run(
            argv=[
                'unshare',
                '--mount',
                '--propagation',
                'private',
                'debootstrap',
                '--variant=minbase',
                f'--include={",".join(packages)}',
                SUITE,
                str(tmp),
                mirror,
            ],
            capture=False,
            timeout=3600,
        )
        configure_rootfs(root=tmp)
        (tmp / STAMP_FILE).write_text(json.dumps(rootfs_stamp(packages=packages), indent=2) + '\n')
        if path.exists():
            old = path.with_name(f'.{path.name}.old-{os.getpid()}')
            os.rename(path, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log(msg=f'rootfs {path} built in {time.monotonic() - started:.0f} s')


def configure_rootfs(*, root: Path) -> None:
    run(
        argv=[
            'chroot',
            str(root),
            '/usr/sbin/useradd',
            '--create-home',
            '--shell',
            '/bin/bash',
            '--user-group',
            '--groups',
            'www-data',
            '--password',
            '*',
            DEPLOY_USER,
        ]
    )
    sudoers = root / 'etc' / 'sudoers.d' / DEPLOY_USER
    sudoers.write_text(f'{DEPLOY_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n')
    os.chmod(sudoers, 0o440)
    run(argv=['chroot', str(root), '/usr/sbin/visudo', '-c', '-q', '-f', f'/etc/sudoers.d/{DEPLOY_USER}'])
    # each host makes its own host key at start; none may be shared through the cache
    for key in (root / 'etc' / 'ssh').glob('ssh_host_*'):
        key.unlink()
    (root / SSHD_CONFIG.lstrip('/')).write_text(SSHD_CONFIG_TEXT)
    # the hosts have no route out: apt lists and downloaded packages are dead weight
    for sub in ('var/cache/apt/archives', 'var/lib/apt/lists'):
        for entry in (root / sub).glob('*.deb' if sub.endswith('archives') else '*_*'):
            entry.unlink()


# ---------------------------------------------------------------------------------------------
# network


def ip_json(*, argv: list[str]) -> list[dict[str, Any]]:
    out = run(argv=['ip', '-j', *argv]).stdout.strip()
    return json.loads(out) if out else []


def pick_subnet(*, names: Names) -> ipaddress.IPv4Network:
    """A /24 in 10.99.0.0/16 that no interface uses, preferring one derived from the name."""
    used: set[ipaddress.IPv4Network] = set()
    for link in ip_json(argv=['-4', 'addr', 'show']):
        for addr in link.get('addr_info', []):
            network = ipaddress.ip_interface(f'{addr["local"]}/{addr["prefixlen"]}').network
            if network.overlaps(SUBNET_BASE):
                used.add(ipaddress.ip_network(f'{addr["local"]}/24', strict=False))
    start = int(names.tag, 16) % 254
    for offset in range(254):
        subnet = ipaddress.ip_network(f'10.99.{(start + offset) % 254 + 1}.0/24')
        if subnet not in used:
            return subnet
    raise HostctlError('no free /24 left in 10.99.0.0/16 for the test hosts')


def links_with_prefixes(*, prefixes: tuple[str, ...]) -> list[str]:
    return [
        link['ifname']
        for link in ip_json(argv=['link', 'show'])
        if link.get('ifname', '').split('@')[0].startswith(prefixes)
    ]


def all_netns() -> list[str]:
    return [entry['name'] for entry in ip_json(argv=['netns', 'list']) if entry.get('name')]


def owned_netns(*, names: Names) -> list[str]:
    return [netns for netns in all_netns() if names.owns_netns(netns=netns)]


# ---------------------------------------------------------------------------------------------
# processes and mounts


def pid_cmdline(*, pid: int) -> str:
    try:
        return Path(f'/proc/{pid}/cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace')
    except OSError:
        return ''


def owned_pids(*, names: Names, state: dict[str, Any]) -> set[int]:
    """Processes of this name: in its namespaces, or started with its state directory."""
    marker = f'{names.dir}/'
    pids: set[int] = set()
    for netns in owned_netns(names=names):
        out = run(argv=['ip', 'netns', 'pids', netns], check=False).stdout
        pids.update(int(word) for word in out.split() if word.isdigit())
    for host in state.get('hosts', []):
        pid = host.get('pid')
        if pid and marker in pid_cmdline(pid=pid):
            pids.add(pid)
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit() and marker in pid_cmdline(pid=int(entry.name)):
            pids.add(int(entry.name))
    pids.discard(os.getpid())
    return pids


def kill_all(*, pids: set[int], what: str) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            status = Path(f'/proc/{pid}/stat')
            try:
                # a zombie of someone else's counts as gone: it holds no namespace or mount
                if status.read_text().rsplit(')', 1)[1].split()[0] == 'Z':
                    alive.discard(pid)
            except (OSError, IndexError):
                alive.discard(pid)
        if alive:
            time.sleep(0.02)
    if alive:
        raise HostctlError(f'processes {sorted(alive)} of {what} survived SIGKILL')


def mounts_under(*, path: Path) -> list[str]:
    prefix = str(path).rstrip('/') + '/'
    found = []
    for line in Path('/proc/self/mountinfo').read_text().splitlines():
        mount_point = line.split()[4].encode().decode('unicode_escape')
        if mount_point.startswith(prefix) or mount_point == str(path):
            found.append(mount_point)
    return sorted(found, key=len, reverse=True)


# ---------------------------------------------------------------------------------------------
# down


def do_down(*, names: Names, quiet: bool = False) -> dict[str, list[str]]:
    """Undo everything of `names`: recorded in the state file or found by name."""
    state = load_state(names=names)
    removed: dict[str, list[str]] = {'processes': [], 'mounts': [], 'links': [], 'netns': [], 'dirs': []}
    pids = owned_pids(names=names, state=state)
    kill_all(pids=pids, what=names.name)
    removed['processes'] = [str(pid) for pid in sorted(pids)]
    for mount_point in mounts_under(path=names.dir):
        if run(argv=['umount', mount_point], check=False).returncode != 0:
            run(argv=['umount', '--lazy', mount_point])
        removed['mounts'].append(mount_point)
    existing = set(links_with_prefixes(prefixes=('',)))
    recorded = {host.get('veth') for host in state.get('hosts', [])} | {state.get('bridge')}
    links = {link for link in existing if link.startswith((names.veth_prefix, names.peer_prefix, names.bridge))}
    links |= recorded & existing
    # veths first (deleting one end deletes its peer), then the bridge
    for link in sorted(links, key=lambda item: (item == state.get('bridge', names.bridge), item)):
        result = run(argv=['ip', 'link', 'delete', link], check=False)
        if result.returncode == 0:
            removed['links'].append(link)
        elif link in links_with_prefixes(prefixes=(link,)):
            raise HostctlError(f'cannot delete link {link}: {result.stderr.strip()}')
    recorded_netns = {host.get('netns') for host in state.get('hosts', [])}
    for netns in sorted(set(owned_netns(names=names)) | (recorded_netns & set(all_netns()))):
        run(argv=['ip', 'netns', 'delete', netns])
        removed['netns'].append(netns)
    # a process forked by an `up` killed a moment ago may have exec'd since the first sweep
    late = owned_pids(names=names, state=state)
    kill_all(pids=late, what=names.name)
    removed['processes'] += [str(pid) for pid in sorted(late)]
    leftover = mounts_under(path=names.dir)
    if leftover:
        raise HostctlError(f'mounts {leftover} under {names.dir} are still present; not removing {names.dir}')
    if names.dir.exists():
        shutil.rmtree(names.dir)
        removed['dirs'].append(str(names.dir))
    if not quiet:
        summary = ', '.join(f'{len(v)} {k}' for k, v in removed.items())
        log(msg=f'down {names.name}: removed {summary}')
    return removed


# ---------------------------------------------------------------------------------------------
# up


def make_keypair(*, names: Names) -> Path:
    key = names.dir / 'ssh' / 'id_ed25519'
    key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    run(argv=['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', f'hostctl-{names.name}', '-f', str(key)])
    return key


def start_host(
    *,
    names: Names,
    state: dict[str, Any],
    host: dict[str, Any],
    rootfs: Path,
    processes: dict[str, subprocess.Popen[bytes]],
) -> None:
    index = host['index']
    hdir = Path(host['dir'])
    for sub in ('upper', 'work', 'root'):
        (hdir / sub).mkdir(parents=True, exist_ok=True)
    run(argv=['ip', 'netns', 'add', host['netns']])
    fault(step=f'netns-{index}')
    veth, peer = host['veth'], names.peer(index=index)
    run(argv=['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', peer])
    run(argv=['ip', 'link', 'set', veth, 'master', state['bridge'], 'up'])
    run(argv=['ip', 'link', 'set', peer, 'netns', host['netns']])
    netns = ['ip', '-n', host['netns']]
    run(argv=[*netns, 'link', 'set', peer, 'name', 'eth0'])
    run(argv=[*netns, 'addr', 'add', f'{host["address"]}/{state["prefixlen"]}', 'dev', 'eth0'])
    run(argv=[*netns, 'link', 'set', 'eth0', 'up'])
    run(argv=[*netns, 'link', 'set', 'lo', 'up'])
    fault(step=f'link-{index}')
    config = {
        'hostname': host['name'],
        'rootfs': str(rootfs),
        'upper': str(hdir / 'upper'),
        'work': str(hdir / 'work'),
        'root': str(hdir / 'root'),
        'authorized_key': state['public_key'],
        'hosts': {item['name']: item['address'] for item in state['hosts']},
    }
    config_path = hdir / 'init.json'
    config_path.write_text(json.dumps(config, indent=2))
    with open(hdir / 'log', 'ab') as log_file:
        process = subprocess.Popen(
            [
                'ip',
                'netns',
                'exec',
                host['netns'],
                'unshare',
                '--mount',
                '--uts',
                '--pid',
                '--fork',
                '--kill-child',
                '--propagation',
                'private',
                sys.executable,
                str(Path(__file__).resolve()),
                '_init',
                '--config',
                str(config_path),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    host['pid'] = process.pid
    processes[host['name']] = process
    fault(step=f'started-{index}')


def tail(*, path: Path, lines: int = 15) -> str:
    try:
        return '\n'.join(path.read_text(errors='replace').splitlines()[-lines:])
    except OSError:
        return '(no log)'


def wait_ready(
    *, names: Names, state: dict[str, Any], key: Path, processes: dict[str, subprocess.Popen[bytes]]
) -> None:
    """Wait until every host accepts an SSH login as the deploy user."""
    deadline = time.monotonic() + READY_TIMEOUT
    pending = list(state['hosts'])
    while pending:
        for host in list(pending):
            # poll(), not /proc: a process in the middle of execve() shows an empty cmdline
            if processes[host['name']].poll() is not None:
                raise HostctlError(
                    f'host {host["name"]} exited during start; log {host["dir"]}/log:\n'
                    f'{tail(path=Path(host["dir"]) / "log")}'
                )
            with contextlib.suppress(OSError), socket.create_connection((host['address'], 22), timeout=0.2) as conn:
                if conn.recv(4).startswith(b'SSH-'):
                    pending.remove(host)
        if pending and time.monotonic() > deadline:
            raise HostctlError(
                f'sshd of {", ".join(h["name"] for h in pending)} not reachable after '
                f'{READY_TIMEOUT:.0f} s; see {names.dir}/hosts/*/log'
            )
        if pending:
            time.sleep(0.05)
    probes = {
        host['name']: subprocess.Popen(
            ['ssh', *ssh_args(key=key), f'{DEPLOY_USER}@{host["address"]}', 'sudo', '-n', 'true'],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for host in state['hosts']
    }
    for host_name, probe in probes.items():
        out, err = probe.communicate(timeout=30)
        if probe.returncode != 0:
            raise HostctlError(
                f'ssh login as {DEPLOY_USER} with sudo to {host_name} failed '
                f'(exit {probe.returncode}): {(err or out).strip()}'
            )


def ssh_args(*, key: Path) -> list[str]:
    return [
        '-i',
        str(key),
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        'BatchMode=yes',
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        'LogLevel=ERROR',
        '-o',
        'ConnectTimeout=5',
    ]


def connection_vars(*, key: str) -> dict[str, str]:
    """The Ansible variables every host of a name needs besides its address (the bench uses them too)."""
    return {
        'ansible_user': DEPLOY_USER,
        'ansible_ssh_private_key_file': key,
        'ansible_ssh_common_args': '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes',
        'ansible_python_interpreter': '/usr/bin/python3',
    }


def render_inventory(*, state: dict[str, Any]) -> str:
    """Ansible YAML inventory; JSON is YAML, and json.dumps quotes every string safely."""
    hosts = {
        host['name']: {'ansible_host': host['address'], **connection_vars(key=state['private_key'])}
        for host in state['hosts']
    }
    lines = [f'# written by tests/hosts/hostctl.py up --name {state["name"]}', 'all:', '  hosts:']
    for host_name, host_vars in hosts.items():
        lines.append(f'    {json.dumps(host_name)}:')
        lines.extend(f'      {key}: {json.dumps(value)}' for key, value in host_vars.items())
    # a group per name, so one inventory can hold several names; ansible groups take no '-'
    group = 'hostctl_' + state['name'].replace('-', '_')
    lines.extend(['  children:', f'    {json.dumps(group)}:', '      hosts:'])
    lines.extend(f'        {json.dumps(host_name)}: {{}}' for host_name in hosts)
    return '\n'.join(lines) + '\n'


def do_up(*, names: Names, count: int, inventory: Path, packages: list[str]) -> dict[str, Any]:
    if not 1 <= count <= MAX_HOSTS:
        raise HostctlError(f'--count {count} is out of range 1-{MAX_HOSTS}')
    started = time.monotonic()
    rootfs = ensure_rootfs(packages=packages)
    do_down(names=names, quiet=True)
    state: dict[str, Any] = {
        'format': STATE_FORMAT,
        'name': names.name,
        'rootfs': str(rootfs),
        'inventory': str(inventory),
        'bridge': names.bridge,
        'hosts': [],
    }
    names.dir.mkdir(parents=True, exist_ok=True)
    save_state(names=names, state=state)
    subnet = pick_subnet(names=names)
    state.update(subnet=str(subnet), prefixlen=subnet.prefixlen, gateway=str(subnet.network_address + 1))
    save_state(names=names, state=state)
    run(argv=['ip', 'link', 'add', names.bridge, 'type', 'bridge'])
    run(argv=['ip', 'addr', 'add', f'{state["gateway"]}/{subnet.prefixlen}', 'dev', names.bridge])
    run(argv=['ip', 'link', 'set', names.bridge, 'up'])
    fault(step='bridge')
    key = make_keypair(names=names)
    state.update(private_key=str(key), public_key=Path(f'{key}.pub').read_text().strip())
    state['hosts'] = [
        {
            'index': index,
            'name': f'{names.name}-{index}',
            'netns': names.netns(index=index),
            'veth': names.veth(index=index),
            'address': str(subnet.network_address + 1 + index),
            'dir': str(names.host_dir(index=index)),
            'pid': None,
        }
        for index in range(1, count + 1)
    ]
    save_state(names=names, state=state)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for host in state['hosts']:
        start_host(names=names, state=state, host=host, rootfs=rootfs, processes=processes)
        save_state(names=names, state=state)
    wait_ready(names=names, state=state, key=key, processes=processes)
    fault(step='ready')
    inventory.parent.mkdir(parents=True, exist_ok=True)
    tmp = inventory.with_name(f'.{inventory.name}.tmp')
    tmp.write_text(render_inventory(state=state))
    os.replace(tmp, inventory)
    state['up_seconds'] = round(time.monotonic() - started, 3)
    save_state(names=names, state=state)
    return state


def summary(*, state: dict[str, Any]) -> dict[str, Any]:
    return {
        'name': state['name'],
        'inventory': state.get('inventory'),
        'private_key': state.get('private_key'),
        'subnet': state.get('subnet'),
        'up_seconds': state.get('up_seconds'),
        'hosts': [
            {
                'name': h['name'],
                'address': h['address'],
                'user': DEPLOY_USER,
                'port': 22,
                'netns': h['netns'],
                'pid': h['pid'],
            }
            for h in state.get('hosts', [])
        ],
    }


def do_status(*, names: Names) -> tuple[bool, dict[str, Any]]:
    state = load_state(names=names)
    netns = set(owned_netns(names=names))
    result: dict[str, Any] = {
        'name': names.name,
        'state_file': str(names.state_file) if state else None,
        'subnet': state.get('subnet'),
        'hosts': [],
    }
    healthy = bool(state.get('hosts'))
    for host in state.get('hosts', []):
        alive = bool(host.get('pid')) and names.dir.as_posix() in pid_cmdline(pid=host['pid'])
        ssh = False
        with contextlib.suppress(OSError), socket.create_connection((host['address'], 22), timeout=0.5) as conn:
            ssh = conn.recv(4).startswith(b'SSH-')
        up = alive and ssh and host['netns'] in netns
        healthy = healthy and up
        result['hosts'].append(
            {
                'name': host['name'],
                'address': host['address'],
                'pid': host.get('pid'),
                'process': alive,
                'netns': host['netns'] in netns,
                'ssh': ssh,
                'up': up,
            }
        )
    expected_links = {host['veth'] for host in state.get('hosts', [])} | ({state['bridge']} if state else set())
    found_links = set(links_with_prefixes(prefixes=(names.veth_prefix, names.peer_prefix, names.bridge)))
    result['leftovers'] = {
        'netns': sorted(netns - {host['netns'] for host in state.get('hosts', [])}),
        'links': sorted(found_links - expected_links),
        'mounts': mounts_under(path=names.dir),
    }
    result['up'] = healthy
    return healthy, result


# ---------------------------------------------------------------------------------------------
# _init: PID 1 of one host (runs inside its netns, new mount/uts/pid namespaces)


def mount(*, source: str, target: str, fstype: str, options: str) -> None:
    run(argv=['mount', '-t', fstype, '-o', options, source, target])


def init_host(*, config_path: Path) -> int:
    config = json.loads(config_path.read_text())
    root = config['root']
    mount(
        source='overlay',
        target=root,
        fstype='overlay',
        options=f'lowerdir={config["rootfs"]},upperdir={config["upper"]},workdir={config["work"]}',
    )
    mount(source='proc', target=f'{root}/proc', fstype='proc', options='nosuid,nodev,noexec')
    mount(source='sysfs', target=f'{root}/sys', fstype='sysfs', options='ro,nosuid,nodev,noexec')
    dev = f'{root}/dev'
    mount(source='tmpfs', target=dev, fstype='tmpfs', options='nosuid,mode=0755,size=64k')
    for node, minor in (('null', 3), ('zero', 5), ('full', 7), ('random', 8), ('urandom', 9)):
        os.mknod(f'{dev}/{node}', 0o666 | stat.S_IFCHR, os.makedev(1, minor))
        os.chmod(f'{dev}/{node}', 0o666)
    os.mknod(f'{dev}/tty', 0o666 | stat.S_IFCHR, os.makedev(5, 0))
    os.chmod(f'{dev}/tty', 0o666)
    for link, target in (
        ('fd', '/proc/self/fd'),
        ('stdin', '/proc/self/fd/0'),
        ('stdout', '/proc/self/fd/1'),
        ('stderr', '/proc/self/fd/2'),
        ('ptmx', 'pts/ptmx'),
        ('core', '/proc/kcore'),
    ):
        os.symlink(target, f'{dev}/{link}')
    os.mkdir(f'{dev}/pts')
    os.mkdir(f'{dev}/shm')
    mount(source='devpts', target=f'{dev}/pts', fstype='devpts', options='newinstance,ptmxmode=0666,mode=0620,gid=5')
    mount(source='shm', target=f'{dev}/shm', fstype='tmpfs', options='nosuid,nodev,mode=1777')
    mount(source='tmpfs', target=f'{root}/run', fstype='tmpfs', options='nosuid,nodev,mode=0755')
    for sub, mode in (('sshd', 0o755), ('lock', 0o1777)):
        os.mkdir(f'{root}/run/{sub}')
        os.chmod(f'{root}/run/{sub}', mode)

    hostname = config['hostname']
    socket.sethostname(hostname)
    os.chroot(root)
    os.chdir('/')
    Path('/etc/hostname').write_text(hostname + '\n')
    hosts = ['127.0.0.1\tlocalhost', f'127.0.1.1\t{hostname}', '::1\tlocalhost ip6-localhost ip6-loopback']
    hosts += [f'{address}\t{name}' for name, address in config['hosts'].items() if name != hostname]
    Path('/etc/hosts').write_text('\n'.join(hosts) + '\n')
    keys = Path('/etc/ssh/authorized_keys')
    keys.mkdir(mode=0o755, exist_ok=True)
    (keys / DEPLOY_USER).write_text(config['authorized_key'] + '\n')
    os.chmod(keys / DEPLOY_USER, 0o644)
    if not Path('/etc/ssh/ssh_host_ed25519_key').exists():
        run(
            argv=[
                '/usr/bin/ssh-keygen',
                '-q',
                '-t',
                'ed25519',
                '-N',
                '',
                '-C',
                f'root@{hostname}',
                '-f',
                '/etc/ssh/ssh_host_ed25519_key',
            ]
        )

    # huge descriptor limits make some daemons (and old sudo) loop over every possible fd
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > NOFILE_CAP:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, NOFILE_CAP), NOFILE_CAP))
    env = {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8'}
    sshd = subprocess.Popen(['/usr/sbin/sshd', '-D', '-e', '-f', SSHD_CONFIG], env=env, stdin=subprocess.DEVNULL)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(sshd.pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    # PID 1 of the namespace: reap every orphan until sshd itself exits
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if pid == sshd.pid:
            return os.waitstatus_to_exitcode(status)


# ---------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='hostctl.py', description=__doc__.split('\n\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command', required=True)
    up = sub.add_parser('up', help='bring up NAME-1..N and write an ansible inventory')
    up.add_argument('--name', required=True)
    up.add_argument('--count', type=int, required=True)
    up.add_argument('--inventory', required=True, type=Path)
    up.add_argument('--packages', default='', help='extra packages for the rootfs (comma separated)')
    up.add_argument('--keep-on-failure', action='store_true', help='leave a failed up in place for debugging')
    down = sub.add_parser('down', help='remove every host, link, namespace, mount and file of NAME')
    down.add_argument('--name', required=True)
    status = sub.add_parser('status', help='print the state of NAME as JSON; exit 0 only when every host is up')
    status.add_argument('--name', required=True)
    build = sub.add_parser('build', help='build the cached rootfs now (up does it when needed)')
    build.add_argument('--packages', default='')
    init = sub.add_parser('_init')
    init.add_argument('--config', required=True, type=Path)
    args = parser.parse_args(argv)

    if args.command == '_init':
        return init_host(config_path=args.config)
    if os.geteuid() != 0:
        raise HostctlError('hostctl needs root (network namespaces, mounts, chroot)')
    if args.command == 'build':
        packages = package_set(extra=[p for p in args.packages.split(',') if p])
        print(ensure_rootfs(packages=packages))
        return 0
    names = Names(name=check_name(name=args.name))
    with global_lock():
        if args.command == 'down':
            print(json.dumps(do_down(names=names), indent=2))
            return 0
        if args.command == 'status':
            healthy, result = do_status(names=names)
            print(json.dumps(result, indent=2))
            return 0 if healthy else 1
        packages = package_set(extra=[p for p in args.packages.split(',') if p])
        try:
            state = do_up(names=names, count=args.count, inventory=args.inventory.resolve(), packages=packages)
        except BaseException:
            if not args.keep_on_failure:
                with contextlib.suppress(Exception):
                    do_down(names=names, quiet=True)
            raise
        print(json.dumps(summary(state=state), indent=2))
        log(msg=f'up {names.name}: {args.count} hosts in {state["up_seconds"]:.2f} s, inventory {args.inventory}')
        return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except HostctlError as error:
        print(f'hostctl: error: {error}', file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
