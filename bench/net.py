"""Network benchmark for atomic.deploy: deploys to real SSH hosts over links shaped to 100 Mbit/s.

bench/run.sh prepares the bench venv, the artifacts and a tmpfs and runs this for `make bench-net`
(`bash bench/run.sh net [ARGS]`); see the network section of bench/README.md. In short:

- N SSH test hosts from tests/hosts/hostctl.py (name `benchnet`, a rootfs with rsync; up to 64), each
  with a tmpfs at /srv/bench for the deploy roots and Ansible's remote temp files;
- an htb qdisc on every host's root-namespace veth shapes controller -> host to 100 Mbit/s, checked
  with 20 MB over plain TCP to a listener in the namespace of up to 8 hosts (and the qdisc's rate read
  back on every host) before anything is measured;
- per host count, rounds of every case interleaved: the rsync floor, ours (archive, and the same
  under Mitogen's mitogen_linear strategy), our no-op, and optionally the two-task Ansible floor and
  ours with `release_source=directory`; wall time, the bytes on each host's veth both ways, the
  controller CPU seconds of everything the run started, the switch's wait and skew; every run's
  `current` checked on every host (a digest of the tree, compared with the artifact's) before it counts.

The figures are computed and rendered by bench/netreport.py. Everything started here is torn down at
exit, also on an error, SIGINT or SIGTERM (qdiscs, ssh masters, hostctl down).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import datetime as dt
import json
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from netreport import (
    CASE_ORDER,
    NetBenchError,
    case_summary,
    census_rows,
    census_seconds,
    counter_delta,
    fmt_bytes,
    htb_rates,
    load_runs,
    median,
    merge_breakdowns,
    merge_census,
    parse_counter,
    render_comparison,
    render_markdown,
    shaping_verdict,
    switch_metrics,
    target_rows,
    task_breakdown,
    write_results,
)

import bench

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
HOSTCTL = REPO_ROOT / 'tests' / 'hosts' / 'hostctl.py'
sys.path.insert(0, str(HOSTCTL.parent))
import hostctl  # noqa: E402  (tests/hosts: the one copy of the hosts' ssh options and inventory vars)

NAME = 'benchnet'
HOST_ROOT = '/srv/bench'
HOST_TMPFS_SIZE = '3g'
RATE_BITS = 100_000_000
SHAPING_BYTES = 20_000_000
SHAPING_PORT = 5209
# a 20 MB transfer per host takes 1.7 s: at 64 hosts every link is checked by its qdisc, 8 by a transfer
SHAPING_SAMPLE = 8
DEFAULT_HOSTS = '1 4 16 64'
DEFAULT_CASES = ('rsync_floor', 'ours_archive', 'ours_mitogen', 'ours_noop')
# above this many hosts only the --scale-cases run: the roots of every case would not fit in memory
SCALE_ABOVE = 16
DEFAULT_SCALE_CASES = ('rsync_floor', 'ours_archive')
DEFAULT_BREAKDOWN_HOSTS = '4 16'
FORKS = hostctl.MAX_HOSTS
# the first deploy's bytes per host do not depend on the count; at 64 hosts it would take 2 minutes
FIRST_DEPLOY_HOSTS = 16
# memory a host needs per deploy root of v1 on its tmpfs (52.5 MB of files in 4 kB pages, and slack)
ROOT_BYTES = 80_000_000
PR_SET_CHILD_SUBREAPER = 36

# Runs on a host (python3 - COMMAND ARGS...): makes a floor case's root from the template, or reports
# what ROOT/current points to and the generator's content digest of that tree (bench.tree_digest:
# regular files, top-level dotfiles and symlinks skipped). Kept in one script so each step is one ssh call.
REMOTE = r"""
import hashlib, json, os, shutil, subprocess, sys

def tree_digest(path):
    entries = []
    for folder, dirs, files in os.walk(path):
        rel_folder = os.path.relpath(folder, path)
        if rel_folder == '.':
            dirs[:] = [name for name in dirs if not name.startswith('.')]
        for name in files:
            full = os.path.join(folder, name)
            rel = name if rel_folder == '.' else rel_folder + '/' + name
            if os.path.islink(full) or (rel_folder == '.' and name.startswith('.')):
                continue
            with open(full, 'rb') as handle:
                entries.append((rel, hashlib.sha256(handle.read()).digest()))
    digest = hashlib.sha256()
    for rel, file_digest in sorted(entries):
        digest.update(rel.encode() + b'\0' + file_digest)
    return digest.hexdigest(), len(entries)

command, args = sys.argv[1], sys.argv[2:]
if command == 'link':
    # a floor's root: releases/v1 is the template's v1 (a symlink, no copy: 64 hosts' memory), current -> it
    template, root, subdirs = args[0], args[1], args[2:]
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, 'releases'))
    os.symlink(os.path.join(template, 'releases', 'v1'), os.path.join(root, 'releases', 'v1'))
    os.symlink('releases/v1', os.path.join(root, 'current'))
    for sub in subdirs:
        os.makedirs(os.path.join(root, sub), exist_ok=True)
elif command == 'seed':
    # fresh roots with the shared dir and file every deploy links, as on a real server
    for root in args:
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(os.path.join(root, 'shared', 'storage'))
        with open(os.path.join(root, 'shared', '.env'), 'w') as handle:
            handle.write('APP_ENV=bench\n')
elif command == 'remove':
    for root in args:
        shutil.rmtree(root, ignore_errors=True)
elif command == 'check':
    current = os.path.join(args[0], 'current')
    out = {'link': None, 'digest': None, 'files': 0}
    if os.path.islink(current):
        out['link'] = os.readlink(current)
        out['digest'], out['files'] = tree_digest(os.path.realpath(current))
    print(json.dumps(out))
else:
    sys.exit('unknown command ' + command)
"""

# Runs in a host's network namespace: accept one connection, read to EOF, answer with the count.
LISTENER = r"""
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(1)
server.settimeout(float(sys.argv[3]))
print('listening', flush=True)
conn, _peer = server.accept()
conn.settimeout(float(sys.argv[3]))
total = 0
while True:
    chunk = conn.recv(1 << 20)
    if not chunk:
        break
    total += len(chunk)
conn.sendall(str(total).encode())
conn.close()
"""


class Interrupted(Exception):
    """SIGINT or SIGTERM: stop and tear down."""


def log(message: str) -> None:
    print(f'bench-net: {message}', file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------
# hosts, links and shaping


@dataclass
class Host:
    name: str
    address: str
    veth: str
    netns: str


@dataclass
class Fleet:
    hosts: list[Host]
    key: Path
    shaped: list[str] = field(default_factory=list)
    up: bool = False


def run_hostctl(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    # a process of its own: the hosts it starts are reparented away from the bench (no subreaper yet)
    return subprocess.run(
        [sys.executable, str(HOSTCTL), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def bring_up(*, count: int, inventory: Path) -> Fleet:
    log(f'bringing up {count} hosts (hostctl up --name {NAME} --packages rsync)')
    result = run_hostctl(
        'up', '--name', NAME, '--count', str(count), '--inventory', str(inventory), '--packages', 'rsync'
    )
    if result.returncode != 0:
        raise NetBenchError(f'hostctl up failed: {result.stderr.strip()[-2000:]}')
    state = hostctl.load_state(names=hostctl.Names(name=NAME))
    hosts = [Host(name=h['name'], address=h['address'], veth=h['veth'], netns=h['netns']) for h in state['hosts']]
    log(f'{count} hosts up in {state.get("up_seconds", 0):.1f} s; {host_memory(state=state)}')
    return Fleet(hosts=hosts, key=Path(state['private_key']), up=True)


def host_memory(*, state: dict) -> str:
    """The resident memory of the hosts' processes (PID 1, sshd), for the log."""
    total, processes = 0, 0
    for host in state['hosts']:
        out = subprocess.run(['ip', 'netns', 'pids', host['netns']], capture_output=True, text=True, check=False)
        for pid in out.stdout.split():
            try:
                fields = Path(f'/proc/{pid}/status').read_text().splitlines()
            except OSError:
                continue
            rss = [line.split()[1] for line in fields if line.startswith('VmRSS:')]
            total += int(rss[0]) * 1024 if rss else 0
            processes += 1
    per_host = total / max(1, len(state['hosts']))
    return f'{processes} processes in the namespaces, {total / 1e6:.0f} MB resident ({per_host / 1e6:.1f} MB a host)'


def check_memory(*, hosts: int, roots: int) -> None:
    """Refuse a host count whose deploy roots would not fit in the memory that is free now."""
    need = hosts * roots * ROOT_BYTES + 2_000_000_000
    available = 0
    for line in Path('/proc/meminfo').read_text().splitlines():
        if line.startswith('MemAvailable:'):
            available = int(line.split()[1]) * 1024
    if available and need > available:
        raise NetBenchError(
            f'{hosts} hosts with {roots} deploy roots each need about {need / 1e9:.1f} GB of tmpfs and controller '
            f'memory, {available / 1e9:.1f} GB are available: use fewer hosts or fewer cases (--scale-cases)'
        )


def tear_down(fleet: Fleet | None) -> None:
    if fleet is not None:
        for veth in list(fleet.shaped):
            subprocess.run(['tc', 'qdisc', 'del', 'dev', veth, 'root'], capture_output=True, check=False)
            fleet.shaped.remove(veth)
    result = run_hostctl('down', '--name', NAME, timeout=300)
    if result.returncode != 0:
        log(f'hostctl down --name {NAME} failed: {result.stderr.strip()}')
    if fleet is not None:
        fleet.up = False


def shape(*, fleet: Fleet, rate_bits: int) -> None:
    rate = f'{rate_bits // 1_000_000}mbit'
    for host in fleet.hosts:
        # Egress of the root-namespace end = what the controller sends to the host. One htb class for
        # all traffic; burst of a few full-size GSO segments so TSO on the veth does not overshoot.
        fleet.shaped.append(host.veth)
        for argv in (
            ['tc', 'qdisc', 'replace', 'dev', host.veth, 'root', 'handle', '1:', 'htb', 'default', '10'],
            ['tc', 'class', 'replace', 'dev', host.veth, 'parent', '1:', 'classid', '1:10', 'htb']
            + ['rate', rate, 'ceil', rate, 'burst', '64k', 'cburst', '64k'],
        ):
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise NetBenchError(f'{" ".join(argv)} failed: {result.stderr.strip()}')


def measure_link(*, host: Host, payload: int) -> float:
    """Seconds for `payload` bytes over one TCP connection to a listener in the host's namespace."""
    listener = subprocess.Popen(
        ['ip', 'netns', 'exec', host.netns, 'python3', '-c', LISTENER, host.address, str(SHAPING_PORT), '30'],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        if listener.stdout.readline().strip() != 'listening':
            raise NetBenchError(
                f'the listener in {host.netns} did not start: {listener.stderr.read() if listener.stderr else ""}'
            )
        block = b'\0' * (1 << 20)
        started = time.perf_counter()
        with socket.create_connection((host.address, SHAPING_PORT), timeout=30) as conn:
            left = payload
            while left:
                left -= conn.send(block[: min(left, len(block))])
            conn.shutdown(socket.SHUT_WR)
            answer = conn.recv(64)
        elapsed = time.perf_counter() - started
        if int(answer or b'0') != payload:
            raise NetBenchError(f'the listener in {host.netns} received {answer!r} bytes, not {payload}')
        return elapsed
    finally:
        listener.kill()
        listener.wait()


def check_shaping(*, fleet: Fleet, rate_bits: int) -> dict[str, float]:
    """Every host's class is read back from the kernel; the first SHAPING_SAMPLE hosts carry 20 MB."""
    for host in fleet.hosts:
        out = subprocess.run(['tc', 'class', 'show', 'dev', host.veth], capture_output=True, text=True, check=False)
        if out.returncode != 0 or rate_bits not in htb_rates(out.stdout):
            raise NetBenchError(f'{host.veth} of {host.name} has no htb class at {rate_bits // 1_000_000} Mbit/s')
    measured = {}
    for host in fleet.hosts[:SHAPING_SAMPLE]:
        for attempt in (1, 2):
            seconds = measure_link(host=host, payload=SHAPING_BYTES)
            ok, expected, message = shaping_verdict(seconds=seconds, payload=SHAPING_BYTES, rate_bits=rate_bits)
            # Too slow once can be a burst of load on the shared cores; too fast is never noise.
            if ok or attempt == 2 or seconds < expected:
                break
        log(f'shaping {host.name} ({host.veth}): {message}')
        if not ok:
            raise NetBenchError(f'shaping check of {host.name} failed: {message}')
        measured[host.name] = round(seconds, 3)
    return measured


def read_counters(hosts: list[Host], which: str) -> dict[str, int]:
    return {
        host.name: parse_counter(Path(f'/sys/class/net/{host.veth}/statistics/{which}').read_text()) for host in hosts
    }


# ---------------------------------------------------------------------------------------------------------
# ssh (options from hostctl)


def ssh_argv(*, fleet: Fleet, host: Host, remote: list[str]) -> list[str]:
    # ssh joins its arguments into one remote shell command: quote each.
    return ['ssh', *hostctl.ssh_args(key=fleet.key), f'{hostctl.DEPLOY_USER}@{host.address}', shlex.join(remote)]


def ssh_command_string(*, fleet: Fleet) -> str:
    """The -e argument of rsync: the same ssh options, no compression (rsync -a without -z)."""
    return shlex.join(['ssh', *hostctl.ssh_args(key=fleet.key)])


def on_hosts(
    *, fleet: Fleet, hosts: list[Host], remote: Callable[[Host], list[str]], stdin: bytes | None = None
) -> dict[str, str]:
    """Run a command on every host at once; stdout per host; any failure stops the bench."""

    def one(host: Host) -> tuple[str, str]:
        result = subprocess.run(
            ssh_argv(fleet=fleet, host=host, remote=remote(host)),
            input=stdin,
            capture_output=True,
            timeout=900,
            check=False,
        )
        if result.returncode != 0:
            raise NetBenchError(
                f'{host.name}: {shlex.join(remote(host))} exited {result.returncode}: '
                f'{result.stderr.decode(errors="replace").strip()[-1500:]}'
            )
        return host.name, result.stdout.decode(errors='replace')

    # no more than 16 ssh sessions at once: 64 would only queue on the 2 cores
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(16, len(hosts)))) as pool:
        return dict(pool.map(one, hosts))


def remote(*args: str) -> list[str]:
    return ['python3', '-c', REMOTE, *args]


# ---------------------------------------------------------------------------------------------------------
# controller CPU: every process a run starts, the daemonised ssh masters included


def become_subreaper() -> None:
    """Orphans (ssh's ControlPersist masters, Mitogen's children) are reparented to this process, so
    their CPU time reaches RUSAGE_CHILDREN once they are reaped."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise NetBenchError(f'prctl(PR_SET_CHILD_SUBREAPER) failed: errno {ctypes.get_errno()}')


def reap_orphans(timeout: float = 10.0) -> None:
    """Wait for every child left (runs are sequential: no other child of the bench is alive now)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                log('children still running after the run; their CPU time is not counted')
                return
            time.sleep(0.02)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------------------------------
# the bench


@dataclass
class NetEnv:
    work: Path
    venv: Path
    fleet: Fleet
    environ: dict[str, str]
    archives: dict[str, Path]
    trees: dict[str, Path]
    manifest: dict
    logs: Path
    inventories: Path
    deploy_playbook: str
    mitogen_strategies: str = ''
    run_counter: int = 0
    # 'cold': every run starts with an empty delta cache; 'warm': with the cache the round's v1 deploy left
    delta_cache: str = 'cold'
    warm_cache: Path | None = None

    @property
    def ansible_playbook(self) -> str:
        return str(self.venv / 'bin' / 'ansible-playbook')


def write_config(*, work: Path) -> Path:
    (work / 'ansible' / 'local').mkdir(parents=True, exist_ok=True)
    (work / 'tmp').mkdir(parents=True, exist_ok=True)
    config = work / 'ansible-net.cfg'
    config.write_text(
        '\n'.join(
            [
                '[defaults]',
                # every host of the largest count at once, as the figures assume
                f'forks = {FORKS}',
                'gathering = explicit',
                f'local_tmp = {work / "ansible" / "local"}',
                # on each host's tmpfs, like the deploy roots
                f'remote_tmp = {HOST_ROOT}/tmp/ansible',
                'host_key_checking = false',
                'retry_files_enabled = false',
                'deprecation_warnings = false',
                f'callback_plugins = {BENCH_DIR / "callback_plugins"}',
                'callbacks_enabled = bench_timer',
                '',
                '[connection]',
                'pipelining = true',
                '',
            ]
        )
    )
    return config


def inventory_document(*, env: NetEnv, hosts: dict[str, dict]) -> dict:
    return {'all': {'vars': hostctl.connection_vars(key=str(env.fleet.key)), 'hosts': hosts}}


def write_inventory(*, env: NetEnv, hosts: list[Host]) -> Path:
    document = inventory_document(env=env, hosts={host.name: {'ansible_host': host.address} for host in hosts})
    path = env.inventories / f'hosts-{len(hosts)}.yml'
    path.write_text(json.dumps(document, indent=2) + '\n')
    return path


def write_vars(*, env: NetEnv, name: str, values: dict) -> Path:
    path = env.inventories / f'{name}.vars.json'
    path.write_text(json.dumps(values, indent=2) + '\n')
    return path


def ours_vars(*, env: NetEnv, release: str, root: str, source: str = 'archive') -> dict:
    values = {
        'release_root': root,
        'release_id': release,
        'release_source': source,
        'release_shared_dirs': bench.SHARED_DIRS,
        'release_shared_files': bench.SHARED_FILES,
        'release_keep': bench.KEEP,
    }
    if source == 'archive':
        values['release_archive'] = str(env.archives[release])
    else:
        values['release_directory'] = str(env.trees[release])
    return values


def close_masters(control_dir: Path) -> None:
    """Stop the ControlPersist masters of one run, so no run reuses another's connection."""
    for sock in control_dir.iterdir() if control_dir.is_dir() else []:
        subprocess.run(
            ['ssh', '-o', f'ControlPath={sock}', '-O', 'exit', 'bench'], capture_output=True, timeout=30, check=False
        )
    shutil.rmtree(control_dir, ignore_errors=True)


def timed_run(
    *,
    env: NetEnv,
    hosts: list[Host],
    name: str,
    ansible: list[str] | None = None,
    shell: Callable | None = None,
    keep_cache: bool = False,
    extra_env: dict[str, str] | None = None,
    census: bool = True,
) -> dict:
    """Run one case on `hosts`: wall time, bytes per host on the veths, controller CPU, the play recap,
    the task timings, the switch, and (census) every transfer's bytes."""
    env.run_counter += 1
    control_dir = env.work / 'cp' / str(env.run_counter)
    control_dir.mkdir(parents=True)
    timer_out = env.logs / f'{name}.timer.json'
    wire_out = env.logs / f'{name}.wire.jsonl'
    # A cold controller-side delta cache (manifest, bundles) for every run, as a fresh CI job has:
    # with one shared cache, every run after the first would skip computing the manifest. Warm: a
    # copy of the cache the round's v1 deploy left, as on a controller that deployed v1 before.
    delta_cache = env.work / 'delta-cache' / str(env.run_counter)
    if env.warm_cache is not None:
        shutil.copytree(env.warm_cache, delta_cache, symlinks=True)
    environ = {
        **env.environ,
        'ANSIBLE_SSH_CONTROL_PATH_DIR': str(control_dir),
        'BENCH_TIMER_OUT': str(timer_out),
        'ATOMIC_DEPLOY_DELTA_CACHE': str(delta_cache),
        'BENCH_TIMER_IFACES': json.dumps({host.name: host.veth for host in hosts}),
        **(extra_env or {}),
    }
    if census:
        environ['BENCH_TIMER_WIRE'] = str(wire_out)
        environ['BENCH_TIMER_ADDRESSES'] = json.dumps({host.address: host.veth for host in hosts})
    reap_orphans()
    cpu_before = children_cpu()
    tx_before, rx_before = read_counters(hosts, 'tx_bytes'), read_counters(hosts, 'rx_bytes')
    log_path = env.logs / f'{name}.log'
    try:
        with log_path.open('w') as handle:
            process_start = time.time()
            started = time.perf_counter()
            if ansible is not None:
                result = subprocess.run(ansible, env=environ, stdout=handle, stderr=subprocess.STDOUT, check=False)
                codes = [result.returncode]
            else:
                assert shell is not None
                codes = shell(handle)
            wall = time.perf_counter() - started
            process_end = time.time()
        tx = counter_delta(before=tx_before, after=read_counters(hosts, 'tx_bytes'))
        rx = counter_delta(before=rx_before, after=read_counters(hosts, 'rx_bytes'))
    finally:
        close_masters(control_dir)
        reap_orphans()
        if not keep_cache:
            shutil.rmtree(delta_cache, ignore_errors=True)
    cpu = children_cpu() - cpu_before
    output = log_path.read_text(errors='replace')
    if any(codes):
        tail = '\n'.join(output.splitlines()[-40:])
        raise NetBenchError(f'{name} exited {codes}; log {log_path}:\n{tail}')
    breakdown = switch = wire = None
    if ansible is not None and timer_out.is_file():
        timer = json.loads(timer_out.read_text())
        breakdown = task_breakdown(timer=timer, process_start=process_start, process_end=process_end)
        switch = switch_metrics(timer)
        if census and wire_out.is_file():
            lines = [json.loads(line) for line in wire_out.read_text().splitlines() if line.strip()]
            wire = census_rows(lines=lines, timer=timer, addresses={host.address: host.name for host in hosts})
    return {
        'delta_cache': delta_cache,
        'wall': wall,
        'tx': tx,
        'rx': rx,
        'cpu': cpu,
        'changed': bench.recap_changed(output) if ansible is not None else -1,
        'breakdown': breakdown,
        'switch': switch,
        'wire': wire,
    }


def check_current(*, env: NetEnv, hosts: list[Host], root: str, release: str) -> None:
    """`current` on every host points at releases/<release> and holds exactly that artifact's content."""
    expected = env.manifest['archives'][f'{release}.tar.gz']['content']
    outputs = on_hosts(fleet=env.fleet, hosts=hosts, remote=lambda _host: remote('check', root))
    for host_name, out in outputs.items():
        found = json.loads(out)
        if found['link'] is None:
            raise NetBenchError(f'{host_name}: {root}/current is not a symlink')
        if found['link'].rstrip('/') not in (f'releases/{release}', f'{root}/releases/{release}'):
            raise NetBenchError(f'{host_name}: {root}/current points to {found["link"]}, expected releases/{release}')
        if found['digest'] != expected:
            raise NetBenchError(
                f'{host_name}: {root}/current has content digest {found["digest"]} ({found["files"]} files), '
                f"not the {release} artifact's {expected}"
            )


def prepare_hosts(*, env: NetEnv, hosts: list[Host], first_deploy_hosts: int) -> dict:
    """Tmpfs, templates: ours-v1 by our playbook on the first `first_deploy_hosts` (the first-deploy
    figure) and a plain v1 for the floors on every host."""
    fleet = env.fleet
    on_hosts(
        fleet=fleet,
        hosts=hosts,
        remote=lambda _host: [
            'sh',
            '-ec',
            f'sudo -n mkdir -p {HOST_ROOT}; '
            f'sudo -n mount -t tmpfs -o size={HOST_TMPFS_SIZE},mode=0755 tmpfs {HOST_ROOT}; '
            f'sudo -n chown deploy:deploy {HOST_ROOT}; mkdir -p {HOST_ROOT}/tpl {HOST_ROOT}/roots {HOST_ROOT}/tmp; '
            f'mkdir -p {HOST_ROOT}/tpl/ours/shared/storage; '
            f'printf "APP_ENV=bench\\n" > {HOST_ROOT}/tpl/ours/shared/.env; '
            f'mkdir -p {HOST_ROOT}/tpl/floor/releases/v1; ln -s releases/v1 {HOST_ROOT}/tpl/floor/current',
        ],
    )
    log(f'unpacking v1 for the floors on {len(hosts)} hosts')
    on_hosts(
        fleet=fleet,
        hosts=hosts,
        remote=lambda _host: ['tar', '-xzf', '-', '-C', f'{HOST_ROOT}/tpl/floor/releases/v1'],
        stdin=env.archives['v1'].read_bytes(),
    )
    check_current(env=env, hosts=hosts, root=f'{HOST_ROOT}/tpl/floor', release='v1')
    hosts = hosts[:first_deploy_hosts]
    log(f'first deploy: v1 with our playbook to {len(hosts)} hosts (the ours-v1 template)')
    inventory = write_inventory(env=env, hosts=hosts)
    extra = write_vars(env=env, name='first', values=ours_vars(env=env, release='v1', root=f'{HOST_ROOT}/tpl/ours'))
    run = timed_run(
        env=env,
        hosts=hosts,
        name='first-deploy',
        ansible=[env.ansible_playbook, '-i', str(inventory), '-e', f'@{extra}', env.deploy_playbook],
    )
    check_current(env=env, hosts=hosts, root=f'{HOST_ROOT}/tpl/ours', release='v1')
    on_hosts(fleet=fleet, hosts=hosts, remote=lambda _host: remote('remove', f'{HOST_ROOT}/tpl/ours'))
    return {
        'hosts': len(hosts),
        'wall': run['wall'],
        'tx_per_host': median(run['tx'].values()),
        'rx_per_host': median(run['rx'].values()),
        'cpu': run['cpu'],
        'tx': run['tx'],
        'changed': run['changed'],
        'census': merge_census([run['wire']]) if run['wire'] else [],
    }


@dataclass
class NetCase:
    key: str
    template: str
    release: str  # what current must hold afterwards
    subdirs: tuple[str, ...] = ()
    runs: dict[str, list[dict]] = field(default_factory=dict)


def case_root(key: str) -> str:
    return f'{HOST_ROOT}/roots/{key}'


def deploy_v1_roots(*, env: NetEnv, hosts: list[Host], keys: list[str], round_index: int) -> dict | None:
    """Our cases' roots as a real v1 deploy leaves them (untimed): one playbook run, one alias per root.

    Not a copy of a template: delta staging trusts an older release's file by its stat record (inode,
    ctime among it), and `cp -a` changes both, which would make every copied file look edited. Set-up
    only, so ssh does not compress (-C costs the controller ~1 CPU second per host for the archive).
    """
    if not keys:
        return None
    on_hosts(
        fleet=env.fleet,
        hosts=hosts,
        remote=lambda _host: remote('seed', *[case_root(key) for key in keys]),
    )
    document = inventory_document(
        env=env,
        hosts={
            f'{host.name}-{key}': {'ansible_host': host.address, 'release_root': case_root(key)}
            for host in hosts
            for key in keys
        },
    )
    path = env.inventories / f'v1-roots-{len(hosts)}.yml'
    path.write_text(json.dumps(document, indent=2) + '\n')
    values = ours_vars(env=env, release='v1', root='')
    del values['release_root']
    extra = write_vars(env=env, name='v1-roots', values=values)
    if env.warm_cache is not None:
        shutil.rmtree(env.warm_cache, ignore_errors=True)
        env.warm_cache = None
    run = timed_run(
        env=env,
        hosts=hosts,
        name=f'v1-roots-{len(hosts)}h-{round_index}',
        ansible=[env.ansible_playbook, '-i', str(path), '-e', f'@{extra}', env.deploy_playbook],
        keep_cache=env.delta_cache == 'warm',
        extra_env={'ANSIBLE_SSH_ARGS': '-o ControlMaster=auto -o ControlPersist=60s'},
        census=False,
    )
    if env.delta_cache == 'warm':
        # every run of this round starts from a copy: a controller that deployed v1 before
        env.warm_cache = run['delta_cache']
    for key in keys:
        check_current(env=env, hosts=hosts, root=case_root(key), release='v1')
    # a first deploy of len(keys) roots per host at once: bytes per root and host
    return {'wall': round(run['wall'], 3), 'roots': len(keys), 'tx_per_root': median(run['tx'].values()) / len(keys)}


def rsync_floor(*, env: NetEnv, hosts: list[Host], root: str) -> Callable:
    rsh = ssh_command_string(fleet=env.fleet)
    source = f'{env.trees["v2"]}/'

    def shell(handle) -> list[int]:
        # One rsync and one ssh per host, all hosts at once, as a parallel shell loop would.
        def one(host: Host) -> int:
            # An absolute --link-dest: a relative one makes rsync's delta against the link-dest basis
            # fail verification ("update discarded", RsyncProject/rsync#928) with this receiver.
            sync = subprocess.run(
                ['rsync', '-a', '-e', rsh, f'--link-dest={root}/releases/v1', source]
                + [f'{hostctl.DEPLOY_USER}@{host.address}:{root}/releases/v2/'],
                stdout=handle,
                stderr=subprocess.STDOUT,
                check=False,
            )
            if sync.returncode != 0:
                return sync.returncode
            switch = ['sh', '-ec', f'cd {root} && ln -s releases/v2 .current.tmp && mv -T .current.tmp current']
            return subprocess.run(
                ssh_argv(fleet=env.fleet, host=host, remote=switch),
                stdout=handle,
                stderr=subprocess.STDOUT,
                check=False,
            ).returncode

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            return list(pool.map(one, hosts))

    return shell


def run_case(*, env: NetEnv, case: NetCase, hosts: list[Host], round_index: int) -> dict:
    root = case_root(case.key)
    if case.template:
        on_hosts(
            fleet=env.fleet,
            hosts=hosts,
            remote=lambda _host: remote('link', f'{HOST_ROOT}/tpl/{case.template}', root, *case.subdirs),
        )
    inventory = env.inventories / f'hosts-{len(hosts)}.yml'
    name = f'{case.key}-{len(hosts)}h-{round_index}'
    if case.key == 'rsync_floor':
        run = timed_run(env=env, hosts=hosts, name=name, shell=rsync_floor(env=env, hosts=hosts, root=root))
    else:
        extra_env = {}
        if case.key == 'ansible_floor':
            values = {'bench_root': root, 'bench_release': 'v2', 'bench_archive': str(env.archives['v2'])}
            playbook = str(BENCH_DIR / 'playbooks' / 'ansible_floor.yml')
        elif case.key == 'ours_noop':
            values, playbook = ours_vars(env=env, release='v1', root=root), env.deploy_playbook
        else:
            source = 'directory' if case.key == 'ours_directory' else 'archive'
            values, playbook = ours_vars(env=env, release='v2', root=root, source=source), env.deploy_playbook
            if case.key == 'ours_mitogen':
                extra_env = {'ANSIBLE_STRATEGY_PLUGINS': env.mitogen_strategies, 'ANSIBLE_STRATEGY': 'mitogen_linear'}
        extra = write_vars(env=env, name=case.key, values=values)
        run = timed_run(
            env=env,
            hosts=hosts,
            name=name,
            ansible=[env.ansible_playbook, '-i', str(inventory), '-e', f'@{extra}', playbook],
            extra_env=extra_env,
        )
    check_current(env=env, hosts=hosts, root=root, release=case.release)
    if case.key == 'ours_noop' and run['changed'] != 0:
        raise NetBenchError(f'{name}: the no-op re-deploy reported changed={run["changed"]}')
    on_hosts(fleet=env.fleet, hosts=hosts, remote=lambda _host: remote('remove', root))
    return run


def make_cases() -> dict[str, NetCase]:
    return {
        'rsync_floor': NetCase(key='rsync_floor', template='floor', release='v2'),
        # unarchive needs its destination; creating it is not part of the floor being measured
        'ansible_floor': NetCase(key='ansible_floor', template='floor', release='v2', subdirs=('releases/v2',)),
        # ours: no template; deploy_v1_roots makes the roots with a real v1 deploy each round
        'ours_archive': NetCase(key='ours_archive', template='', release='v2'),
        'ours_mitogen': NetCase(key='ours_mitogen', template='', release='v2'),
        'ours_directory': NetCase(key='ours_directory', template='', release='v2'),
        'ours_noop': NetCase(key='ours_noop', template='', release='v1'),
    }


def cases_for(*, count: int, selected: list[str], scale_cases: list[str]) -> list[str]:
    keys = selected if count <= SCALE_ABOVE else [key for key in selected if key in scale_cases]
    return [key for key in CASE_ORDER if key in keys]


def summarise_count(
    *, results: dict, count: int, cases: dict[str, NetCase], order: list[str], detail: list[int]
) -> None:
    """The medians of one host count into `results`: after the count, or after an interruption
    (then of the runs it has)."""
    done = [key for key in order if cases[key].runs.get(str(count))]
    if not done:
        return
    results['hosts'][str(count)] = {key: case_summary(cases[key].runs[str(count)]) for key in done}
    results['raw'][str(count)] = {
        key: [
            {
                'wall': round(run['wall'], 3),
                'tx': run['tx'],
                'rx': run['rx'],
                'cpu': round(run['cpu'], 3),
                'changed': run['changed'],
                'switch': run['switch'],
            }
            for run in cases[key].runs[str(count)]
        ]
        for key in done
    }
    if count not in detail:
        return
    for key in done:
        runs = cases[key].runs[str(count)]
        breakdowns = [run['breakdown'] for run in runs if run['breakdown']]
        if breakdowns:
            results['breakdown'].setdefault(str(count), {})[key] = merge_breakdowns(breakdowns)
        wires = [run['wire'] for run in runs if run['wire']]
        if wires:
            results['census'].setdefault(str(count), {})[key] = merge_census(wires)
            results['census_seconds'].setdefault(str(count), {})[key] = census_seconds(wires)


def run_bench(
    *,
    env: NetEnv,
    counts: list[int],
    rounds: int,
    selected: list[str],
    scale_cases: list[str],
    detail: list[int],
    results: dict,
) -> None:
    """Every count's rounds; `results` holds every finished count at any time, and the runs of the
    count under way if the bench is interrupted."""
    for key in ('hosts', 'raw', 'breakdown', 'census', 'census_seconds', 'v1_roots'):
        results.setdefault(key, {})
    for count in counts:
        hosts = env.fleet.hosts[:count]
        write_inventory(env=env, hosts=hosts)
        cases = make_cases()
        order = cases_for(count=count, selected=selected, scale_cases=scale_cases)
        # the floors' roots are symlinks to the template, which exists already: only our roots are new
        check_memory(hosts=count, roots=len([key for key in order if key.startswith('ours')]))
        try:
            for round_index in range(1, rounds + 1):
                first = deploy_v1_roots(
                    env=env,
                    hosts=hosts,
                    keys=[key for key in order if not cases[key].template],
                    round_index=round_index,
                )
                if first:
                    results['v1_roots'].setdefault(str(count), []).append(first)
                # rotate the order each round, so no case always runs right after the same one
                shift = (round_index - 1) % len(order)
                for key in order[shift:] + order[:shift]:
                    run = run_case(env=env, case=cases[key], hosts=hosts, round_index=round_index)
                    cases[key].runs.setdefault(str(count), []).append(run)
                    log(
                        f'{count} hosts round {round_index}/{rounds} {key}: {run["wall"]:.2f} s, '
                        f'{fmt_bytes(median(run["tx"].values()))} -> / {fmt_bytes(median(run["rx"].values()))} <- '
                        f'per host, controller CPU {run["cpu"]:.2f} s'
                        + (
                            f', switch wait {run["switch"]["wait"]:.3f} s skew {run["switch"]["skew"] * 1000:.1f} ms'
                            if run['switch']
                            else ''
                        )
                    )
        finally:
            summarise_count(results=results, count=count, cases=cases, order=order, detail=detail)


def extract_trees(*, work: Path, archives: dict[str, Path]) -> dict[str, Path]:
    trees = {}
    for version, archive in archives.items():
        dest = work / 'trees' / version
        dest.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter='data')
        trees[version] = dest
    return trees


def ensure_rsync() -> None:
    if shutil.which('rsync') is None:
        log('rsync is missing on the controller: installing it with apt-get')
        for argv in (['apt-get', 'update', '-q'], ['apt-get', 'install', '-y', '-q', 'rsync']):
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=900)


def mitogen_strategies(venv: Path) -> str:
    """The directory of ansible_mitogen's strategy plugins in the bench venv."""
    out = subprocess.run(
        [
            str(venv / 'bin' / 'python'),
            '-c',
            'import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__))',
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    path = Path(out.stdout.strip()) / 'plugins' / 'strategy'
    if out.returncode != 0 or not (path / 'mitogen_linear.py').is_file():
        raise NetBenchError(f'no ansible_mitogen in {venv} (bench/requirements.txt has mitogen): {out.stderr.strip()}')
    return str(path)


def split_words(value: str) -> list[str]:
    return value.replace(',', ' ').split()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work', type=Path, required=True, help='scratch directory, normally a fresh tmpfs')
    parser.add_argument('--artifacts', type=Path, required=True, help='directory with v1.tar.gz, v2.tar.gz, manifest')
    parser.add_argument('--venv', type=Path, required=True)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument(
        '--hosts', default=DEFAULT_HOSTS, help=f'host counts, up to {hostctl.MAX_HOSTS} (e.g. 1,4,16,64)'
    )
    parser.add_argument('--cases', default=' '.join(DEFAULT_CASES), help=f'any of {" ".join(CASE_ORDER)}')
    parser.add_argument(
        '--scale-cases',
        default=' '.join(DEFAULT_SCALE_CASES),
        help=f'the cases that run at more than {SCALE_ABOVE} hosts (of --cases)',
    )
    parser.add_argument(
        '--detail-hosts',
        default=DEFAULT_BREAKDOWN_HOSTS,
        help='host counts with the task-by-task time and the payload of every module run',
    )
    parser.add_argument('--deploy-playbook', default=bench.DEFAULT_DEPLOY_PLAYBOOK)
    parser.add_argument('--results', type=Path, default=BENCH_DIR / 'results')
    parser.add_argument('--label', default='', help='what this run measures (e.g. "baseline", "flow")')
    parser.add_argument(
        '--delta-cache',
        choices=('cold', 'warm'),
        default='cold',
        help="cold: each run starts with an empty controller delta cache; warm: with the round's v1 deploy's",
    )
    parser.add_argument('--strict', action='store_true', help='exit 1 when a target is missed')
    return parser.parse_args(argv)


def interrupt(signum: int, _frame: object) -> None:
    raise Interrupted(f'signal {signal.Signals(signum).name}')


def load_artifacts(*, work: Path, artifacts: Path) -> tuple[dict, dict[str, Path], dict[str, Path]]:
    manifest = json.loads((artifacts / 'manifest.json').read_text())
    archives = {}
    (work / 'artifacts').mkdir(parents=True, exist_ok=True)
    for version in ('v1', 'v2'):
        archives[version] = work / 'artifacts' / f'{version}.tar.gz'
        shutil.copyfile(artifacts / f'{version}.tar.gz', archives[version])
    trees = extract_trees(work=work, archives=archives)
    for version, tree in trees.items():
        digest, _count = bench.tree_digest(tree)
        if digest != manifest['archives'][f'{version}.tar.gz']['content']:
            raise NetBenchError(f'{tree}: the unpacked {version} differs from the artifact')
    return manifest, archives, trees


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = sorted({int(value) for value in split_words(args.hosts)})
    selected = [key for key in CASE_ORDER if key in split_words(args.cases)]
    scale_cases = split_words(args.scale_cases)
    detail = [int(value) for value in split_words(args.detail_hosts)]
    if not counts or counts[0] < 1 or args.rounds < 1 or not selected:
        raise SystemExit('bench-net: --hosts, --rounds and --cases need at least one valid value each')
    if counts[-1] > hostctl.MAX_HOSTS:
        raise SystemExit(f'bench-net: --hosts goes up to {hostctl.MAX_HOSTS}')
    unknown = set(split_words(args.cases)) - set(CASE_ORDER)
    if unknown:
        raise SystemExit(f'bench-net: unknown case(s) {", ".join(sorted(unknown))}; known: {" ".join(CASE_ORDER)}')
    if os.geteuid() != 0:
        raise NetBenchError('the network bench needs root (hostctl, tc)')
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    ensure_rsync()
    work = args.work.resolve()
    manifest, archives, trees = load_artifacts(work=work, artifacts=args.artifacts)
    config = write_config(work=work)
    environ = bench.make_environ(work=work, venv=args.venv, collections=bench.collection_tree(work=work), config=config)
    environ.pop('ANSIBLE_REMOTE_TEMP', None)
    logs, inventories = work / 'logs', work / 'inventories'
    logs.mkdir(exist_ok=True)
    inventories.mkdir(exist_ok=True)
    fleet: Fleet | None = None
    first: dict | None = None
    shaping: dict[str, float] = {}
    measured: dict = {}
    stopped = ''
    started = time.time()
    load_before = bench.load_average()
    try:
        strategies = mitogen_strategies(args.venv) if 'ours_mitogen' in selected else ''
        # the floors' v1 template on every host
        check_memory(hosts=counts[-1], roots=1)
        fleet = bring_up(count=counts[-1], inventory=work / 'hostctl-inventory.yml')
        become_subreaper()
        shape(fleet=fleet, rate_bits=RATE_BITS)
        shaping = check_shaping(fleet=fleet, rate_bits=RATE_BITS)
        env = NetEnv(
            work=work,
            venv=args.venv,
            fleet=fleet,
            environ=environ,
            archives=archives,
            trees=trees,
            manifest=manifest,
            logs=logs,
            inventories=inventories,
            deploy_playbook=args.deploy_playbook,
            mitogen_strategies=strategies,
            delta_cache=args.delta_cache,
        )
        first = prepare_hosts(env=env, hosts=fleet.hosts, first_deploy_hosts=FIRST_DEPLOY_HOSTS)
        log(
            f'first deploy to {first["hosts"]} hosts: {first["wall"]:.2f} s, {fmt_bytes(first["tx_per_host"])} per host'
        )
        run_bench(
            env=env,
            counts=counts,
            rounds=args.rounds,
            selected=selected,
            scale_cases=scale_cases,
            detail=detail,
            results=measured,
        )
    except (Interrupted, NetBenchError) as exc:
        # what was measured until then is still written (marked), then the bench fails
        log(f'stopped ({exc}): tearing down')
        stopped = str(exc)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log(f'tearing down: qdiscs, hostctl down --name {NAME}')
        tear_down(fleet)
    if not measured.get('hosts'):
        raise NetBenchError(stopped or 'nothing was measured')
    artifact_bytes = manifest['archives']['v1.tar.gz']['bytes']
    results = {
        'label': args.label,
        'finished': dt.datetime.now(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'duration_s': round(time.time() - started, 1),
        'commit': subprocess.run(
            ['git', '-C', str(REPO_ROOT), 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, check=False
        ).stdout.strip(),
        'load_before': load_before,
        'load_after': bench.load_average(),
        'parameters': {
            'rounds': args.rounds,
            'hosts': counts,
            'cases': selected,
            'scale_cases': scale_cases,
            'scale_above': SCALE_ABOVE,
            'forks': FORKS,
            'rate_mbit': RATE_BITS // 1_000_000,
            'shaping': 'htb on the root-namespace veth (controller -> host); no delay (no netem)',
            'deploy_roots': f'tmpfs at {HOST_ROOT} inside each host',
            'delta_cache': args.delta_cache,
        },
        'shaping_check_s': shaping,
        'artifact_bytes': artifact_bytes,
        'artifact': {key: value for key, value in manifest.items() if key != 'cached'},
        'first_deploy': first,
        **measured,
    }
    if stopped:
        results['stopped'] = stopped
    results['targets'] = target_rows(by_hosts=results['hosts'], first_deploy=first, artifact_bytes=artifact_bytes)
    print(render_markdown(results))
    written = write_results(results=results, directory=args.results)
    log(f'wrote {", ".join(path.name for path in written)} in {args.results} ({results["duration_s"]} s)')
    if stopped:
        log(f'the run was stopped before its end ({stopped}): the results hold the runs until then')
        return 130 if stopped.startswith('signal') else 1
    missed = [row['label'] for row in results['targets'] if row['met'] is False]
    if missed:
        log(f'targets missed: {"; ".join(missed)}')
        if args.strict:
            return 1
    return 0


def compare_main(argv: list[str]) -> int:
    """`net.py compare [RESULTS_DIR]`: the labelled runs (net-LABEL.json) side by side, as Markdown."""
    runs = load_runs(Path(argv[0]) if argv else BENCH_DIR / 'results')
    if not runs:
        raise NetBenchError('no net-*.json results to compare')
    print(render_comparison(runs))
    return 0


if __name__ == '__main__':
    try:
        sys.exit(compare_main(sys.argv[2:]) if sys.argv[1:2] == ['compare'] else main())
    except bench.BenchError as exc:
        print(f'bench-net: error: {exc}', file=sys.stderr)
        sys.exit(1)
