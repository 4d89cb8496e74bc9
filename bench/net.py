"""Network benchmark for atomic.deploy: deploys to real SSH hosts over links shaped to 100 Mbit/s.

bench/run.sh prepares the bench venv, the artifacts and a tmpfs and runs this for `make bench-net`
(`bash bench/run.sh net`); see the network section of bench/README.md. In short:

- N SSH test hosts from tests/hosts/hostctl.py (name `benchnet`, a rootfs with rsync), each with a
  tmpfs at /srv/bench for the deploy roots and Ansible's remote temp files;
- an htb qdisc on every host's root-namespace veth shapes controller -> host to 100 Mbit/s, checked
  with 20 MB over plain TCP to a listener in the host's namespace before anything is measured;
- per host count, rounds of every case interleaved: the rsync floor, the two-task Ansible floor,
  ours (archive, directory) and our no-op; wall time, and the bytes each host's veth sent (tx_bytes
  of the root-side end, i.e. controller -> host) around every run; every run's `current` checked on
  every host (a digest of the tree, compared with the artifact's) before it counts.

Everything it starts is torn down at exit, also on an error, SIGINT or SIGTERM (qdiscs, ssh masters,
hostctl down).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import importlib.util
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import bench

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
HOSTCTL = REPO_ROOT / 'tests' / 'hosts' / 'hostctl.py'
NAME = 'benchnet'
HOST_ROOT = '/srv/bench'
HOST_TMPFS_SIZE = '3g'
RATE_BITS = 100_000_000
SHAPING_BYTES = 20_000_000
SHAPING_PORT = 5209
# TCP/IPv4 with timestamps (52 bytes) and Ethernet (14 bytes) around each 1448-byte segment.
WIRE_OVERHEAD = 66 / 1448
SHAPING_TOLERANCE = 0.2
NOOP_LIMIT = 50_000
FIRST_DEPLOY_LIMIT = 1.05
BYTES_LIMIT = 2.0
WALL_LIMIT = 0.5
WALL_TARGET_HOSTS = 4
README_START = '<!-- bench:net:start -->'
README_END = '<!-- bench:net:end -->'
# The newest network run in short; README.md links to it (the bench never writes README.md).
SUMMARY = BENCH_DIR / 'results' / 'net-summary.md'
SUMMARY_TITLE = '# make bench-net: the newest run in short (written by bench/net.py; every run: bench/README.md)'
CASE_ORDER = ('rsync_floor', 'ansible_floor', 'ours_archive', 'ours_directory', 'ours_noop')
LABELS = {
    'rsync_floor': '`rsync -a --link-dest=ROOT/releases/v1 v2/ host:ROOT/releases/v2/`, then `ln -s` + `mv -T`',
    'ansible_floor': 'two-task play: `unarchive` (copy) + `file state=link`',
    'ours_archive': 'ours, `release_source=archive`',
    'ours_directory': 'ours, `release_source=directory`',
    'ours_noop': 'ours, no-op re-deploy of the live release',
}

# Runs on a host (python3 - COMMAND ARGS...): resets a case's root from a template, or reports what
# ROOT/current points to and the generator's content digest of that tree (bench.tree_digest: regular
# files, top-level dotfiles and symlinks skipped). Kept in one script so each step is one ssh call.
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
if command == 'reset':
    template, root, subdirs = args[0], args[1], args[2:]
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run(['cp', '-a', '--', template, root], check=True)
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


class NetBenchError(bench.BenchError):
    """The bench cannot produce meaningful figures."""


class Interrupted(Exception):
    """SIGINT or SIGTERM: stop and tear down."""


def log(message: str) -> None:
    print(f'bench-net: {message}', file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------
# pure logic (tests/unit/bench/test_net.py)


def parse_counter(text: str) -> int:
    """The value of a /sys/class/net/<if>/statistics/* file."""
    value = text.strip()
    if not value.isdigit():
        raise NetBenchError(f'not an interface counter: {text!r}')
    return int(value)


def counter_delta(*, before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Bytes per interface between two readings; a counter that went down means the link was recreated."""
    delta = {}
    for name, start in before.items():
        end = after[name]
        if end < start:
            raise NetBenchError(f'counter of {name} went down from {start} to {end}: was the link recreated?')
        delta[name] = end - start
    return delta


def median(values: Iterable[float]) -> float:
    values = list(values)
    if not values:
        raise NetBenchError('median of no values')
    return float(statistics.median(values))


def expected_transfer_seconds(*, payload: int, rate_bits: int, overhead: float = WIRE_OVERHEAD) -> float:
    """How long `payload` bytes of one TCP stream take on a link shaped to `rate_bits` per second."""
    return payload * (1 + overhead) * 8 / rate_bits


def shaping_verdict(
    *, seconds: float, payload: int, rate_bits: int, tolerance: float = SHAPING_TOLERANCE
) -> tuple[bool, float, str]:
    """(ok, expected seconds, message) for a measured transfer of `payload` bytes."""
    expected = expected_transfer_seconds(payload=payload, rate_bits=rate_bits)
    low, high = expected * (1 - tolerance), expected * (1 + tolerance)
    ok = low <= seconds <= high
    message = (
        f'{payload / 1e6:.0f} MB took {seconds:.2f} s, expected {expected:.2f} s at {rate_bits / 1e6:.0f} Mbit/s '
        f'(accepted {low:.2f} - {high:.2f} s)'
    )
    if not ok:
        message += ': the link is not shaped' if seconds < low else ': the link is slower than shaped'
    return ok, expected, message


def ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def case_summary(runs: list[dict]) -> dict:
    """Medians over a case's runs: wall time, and per host the bytes sent to it (median over hosts)."""
    walls = [run['wall'] for run in runs]
    per_host = [median(run['tx'].values()) for run in runs]
    rx_host = [median(run['rx'].values()) for run in runs]
    return {
        'wall': median(walls),
        'wall_min': min(walls),
        'wall_max': max(walls),
        'tx_per_host': median(per_host),
        'tx_per_host_max': max(max(run['tx'].values()) for run in runs),
        'rx_per_host': median(rx_host),
        'runs': len(runs),
        'changed': sorted({run['changed'] for run in runs}),
    }


def ratio_rows(*, summaries: dict[str, dict], floor: str = 'rsync_floor') -> list[dict]:
    """One row per case: absolute medians and their ratios to the floor's."""
    base = summaries.get(floor)
    rows = []
    for key in CASE_ORDER:
        data = summaries.get(key)
        if data is None:
            continue
        rows.append(
            {
                'case': key,
                'wall': data['wall'],
                'tx_per_host': data['tx_per_host'],
                'wall_vs_floor': ratio(data['wall'], base['wall'] if base else None),
                'tx_vs_floor': ratio(data['tx_per_host'], base['tx_per_host'] if base else None),
                'wall_vs_ansible_floor': ratio(data['wall'], summaries.get('ansible_floor', {}).get('wall')),
            }
        )
    return rows


def target_rows(*, by_hosts: dict[str, dict[str, dict]], first_deploy: dict | None, artifact_bytes: int) -> list[dict]:
    """The targets of the network benchmark, each with its value(s) and whether it is met (None: not measured)."""
    rows: list[dict] = []

    def add(key: str, label: str, values: dict[str, float | None], limit: float, unit: str) -> None:
        measured = {count: value for count, value in values.items() if value is not None}
        met = all(value <= limit for value in measured.values()) if measured else None
        rows.append({'key': key, 'label': label, 'values': measured, 'limit': limit, 'unit': unit, 'met': met})

    for case in ('ours_archive', 'ours_directory'):
        add(
            f'{case}_bytes',
            f'bytes per host, {LABELS[case]} / rsync floor',
            {
                count: ratio(cases.get(case, {}).get('tx_per_host'), cases.get('rsync_floor', {}).get('tx_per_host'))
                for count, cases in by_hosts.items()
            },
            BYTES_LIMIT,
            'x',
        )
    for case in ('ours_archive', 'ours_directory'):
        cases = by_hosts.get(str(WALL_TARGET_HOSTS), {})
        add(
            f'{case}_wall',
            f'wall at {WALL_TARGET_HOSTS} hosts, {LABELS[case]} / two-task Ansible floor',
            {str(WALL_TARGET_HOSTS): ratio(cases.get(case, {}).get('wall'), cases.get('ansible_floor', {}).get('wall'))}
            if cases
            else {},
            WALL_LIMIT,
            'x',
        )
    add(
        'noop_bytes',
        'no-op re-deploy, bytes per host',
        {count: cases.get('ours_noop', {}).get('tx_per_host') for count, cases in by_hosts.items()},
        NOOP_LIMIT,
        'B',
    )
    add(
        'first_deploy_bytes',
        'first deploy (v1), bytes per host / v1.tar.gz',
        {first_deploy['hosts']: first_deploy['tx_per_host'] / artifact_bytes} if first_deploy else {},
        FIRST_DEPLOY_LIMIT,
        'x',
    )
    return rows


def task_breakdown(*, timer: dict, process_start: float, process_end: float) -> list[dict]:
    """Where one ansible-playbook run's wall time went: start-up, each task (slowest host), the end.

    `timer` is what bench/callback_plugins/bench_timer.py wrote; times are epoch seconds.
    """
    tasks = timer['tasks']
    first = tasks[0]['start'] if tasks else timer['ended']
    rows = [{'name': '(ansible-playbook start-up, parsing, inventory)', 'seconds': first - process_start}]
    for index, task in enumerate(tasks):
        ends = [host['end'] for host in task['hosts'].values()]
        following = tasks[index + 1]['start'] if index + 1 < len(tasks) else timer['ended']
        end = max(ends) if ends else following
        skipped = bool(ends) and all(host['status'] == 'skipped' for host in task['hosts'].values())
        row = {'name': task['name'], 'seconds': max(end, following) - task['start'], 'skipped': skipped}
        # bytes sent to each host from the task's start until that host finished it (median over hosts)
        sent = [
            host['tx'] - task['tx_start'][name]
            for name, host in task['hosts'].items()
            if host.get('tx') is not None and task.get('tx_start', {}).get(name) is not None
        ]
        if sent:
            row['tx_per_host'] = median(sent)
        rows.append(row)
    rows.append({'name': '(recap, exit)', 'seconds': process_end - timer['ended']})
    return rows


def merge_breakdowns(breakdowns: list[list[dict]]) -> list[dict]:
    """Median seconds (and bytes per host, where known) per row name over several runs of the same
    playbook, rows in first-seen order."""
    order: list[str] = []
    values: dict[str, list[float]] = {}
    sent: dict[str, list[float]] = {}
    for rows in breakdowns:
        seen: dict[str, float] = {}
        seen_tx: dict[str, float] = {}
        for row in rows:
            seen[row['name']] = seen.get(row['name'], 0.0) + row['seconds']
            if 'tx_per_host' in row:
                seen_tx[row['name']] = seen_tx.get(row['name'], 0.0) + row['tx_per_host']
        for name, seconds in seen.items():
            if name not in values:
                order.append(name)
                values[name] = []
            values[name].append(seconds)
        for name, value in seen_tx.items():
            sent.setdefault(name, []).append(value)
    merged = []
    for name in order:
        row = {'name': name, 'seconds': median(values[name])}
        if name in sent:
            row['tx_per_host'] = median(sent[name])
        merged.append(row)
    return merged


def fmt_bytes(value: float) -> str:
    if value >= 1e6:
        return f'{value / 1e6:.2f} MB'
    return f'{value / 1e3:.1f} kB'


def fmt_ratio(value: float | None) -> str:
    return 'n/a' if value is None else f'{value:.2f}x'


def render_tables(results: dict) -> str:
    """Markdown: one table per host count (absolute medians and ratios), then the targets."""
    lines: list[str] = []
    for count, cases in results['hosts'].items():
        rows = ratio_rows(summaries=cases)
        lines += [
            f'**{count} host{"s" if count != "1" else ""}** (medians of {results["parameters"]["rounds"]} rounds)',
            '',
            '| run | wall | wall / rsync | wall / Ansible floor | bytes -> each host | bytes / rsync |',
            '| --- | ---: | ---: | ---: | ---: | ---: |',
        ]
        for row in rows:
            lines.append(
                f'| {LABELS[row["case"]]} | {row["wall"]:.2f} s | {fmt_ratio(row["wall_vs_floor"])} | '
                f'{fmt_ratio(row["wall_vs_ansible_floor"])} | {fmt_bytes(row["tx_per_host"])} | '
                f'{fmt_ratio(row["tx_vs_floor"])} |'
            )
        lines.append('')
    return '\n'.join(lines + [render_targets(results)])


def render_targets(results: dict) -> str:
    """Markdown: the first deploy, then the targets table."""
    lines: list[str] = []
    first = results.get('first_deploy')
    if first:
        lines += [
            f'First deploy (v1, ours, archive) to {first["hosts"]} hosts: {first["wall"]:.2f} s, '
            f'{fmt_bytes(first["tx_per_host"])} per host (v1.tar.gz is {fmt_bytes(results["artifact_bytes"])}).',
            '',
        ]
    lines += ['| target | measured | limit | met |', '| --- | --- | ---: | :---: |']
    for row in results['targets']:
        if row['unit'] == 'B':
            shown = ', '.join(f'{fmt_bytes(value)} ({count} h)' for count, value in row['values'].items())
            limit = fmt_bytes(row['limit'])
        else:
            shown = ', '.join(f'{value:.2f}x ({count} h)' for count, value in row['values'].items())
            limit = f'{row["limit"]:.2f}x'
        met = {True: 'yes', False: 'NO', None: 'not measured'}[row['met']]
        lines.append(f'| {row["label"]} | {shown or "-"} | <= {limit} | {met} |')
    return '\n'.join(lines)


def render_breakdown(results: dict) -> str:
    """Per Ansible case: median seconds of each step (slowest host), and the wire time of its bytes."""
    blocks = []
    count = str(results.get('breakdown_hosts'))
    rate = results['parameters']['rate_mbit'] * 1_000_000
    for key, rows in results.get('breakdown', {}).items():
        total = sum(row['seconds'] for row in rows)
        lines = [f'{LABELS.get(key, key)}, {count} hosts (medians per step; total {total:.2f} s):', '']
        lines += ['| step | seconds | bytes -> each host |', '| --- | ---: | ---: |']
        lines += [
            f'| {row["name"]} | {row["seconds"]:.2f} | '
            f'{fmt_bytes(row["tx_per_host"]) if row.get("tx_per_host") else ""} |'
            for row in rows
            if row['seconds'] >= 0.005 or row.get('tx_per_host')
        ]
        sent = results['hosts'].get(count, {}).get(key, {}).get('tx_per_host')
        if sent is not None:
            lines.append(
                f"| (included above: the whole run's bytes on each host's own {rate / 1e6:.0f} Mbit/s link, "
                f'at least) | {sent * 8 / rate:.2f} | {fmt_bytes(sent)} |'
            )
        blocks.append('\n'.join(lines))
    return '\n\n'.join(blocks)


def replace_between(*, text: str, start: str, end: str, body: str) -> str:
    first = text.find(start)
    last = text.find(end)
    if first < 0 or last < first:
        raise NetBenchError(f'markers {start} / {end} not found')
    return text[: first + len(start)] + '\n' + body + '\n' + text[last:]


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


def hostctl(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ['python3', str(HOSTCTL), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def hostctl_state() -> dict:
    spec = importlib.util.spec_from_file_location('hostctl', HOSTCTL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return json.loads((module.state_root() / NAME / 'state.json').read_text())


def bring_up(*, count: int, inventory: Path) -> Fleet:
    log(f'bringing up {count} hosts (hostctl up --name {NAME} --packages rsync)')
    result = hostctl('up', '--name', NAME, '--count', str(count), '--inventory', str(inventory), '--packages', 'rsync')
    if result.returncode != 0:
        raise NetBenchError(f'hostctl up failed: {result.stderr.strip()[-2000:]}')
    state = hostctl_state()
    hosts = [Host(name=h['name'], address=h['address'], veth=h['veth'], netns=h['netns']) for h in state['hosts']]
    return Fleet(hosts=hosts, key=Path(state['private_key']), up=True)


def tear_down(fleet: Fleet | None) -> None:
    if fleet is None:
        hostctl('down', '--name', NAME, timeout=120)
        return
    for veth in list(fleet.shaped):
        subprocess.run(['tc', 'qdisc', 'del', 'dev', veth, 'root'], capture_output=True, check=False)
        fleet.shaped.remove(veth)
    result = hostctl('down', '--name', NAME, timeout=120)
    if result.returncode != 0:
        log(f'hostctl down --name {NAME} failed: {result.stderr.strip()}')
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
    measured = {}
    for host in fleet.hosts:
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
# ssh


def ssh_argv(*, fleet: Fleet, host: Host, remote: list[str]) -> list[str]:
    # ssh joins its arguments into one remote shell command: quote each.
    return [
        'ssh',
        '-i',
        str(fleet.key),
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
        'ConnectTimeout=10',
        f'deploy@{host.address}',
        shlex.join(remote),
    ]


def ssh_command_string(*, fleet: Fleet) -> str:
    """The -e argument of rsync: the same ssh options, no compression (rsync -a without -z)."""
    return shlex.join(ssh_argv(fleet=fleet, host=Host('', '', '', ''), remote=[])[:-2])


def on_hosts(
    *, fleet: Fleet, hosts: list[Host], remote: Callable[[Host], list[str]], stdin: bytes | None = None
) -> dict[str, str]:
    """Run a command on every host at once; stdout per host; any failure stops the bench."""

    def one(host: Host) -> tuple[str, str]:
        result = subprocess.run(
            ssh_argv(fleet=fleet, host=host, remote=remote(host)),
            input=stdin,
            capture_output=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise NetBenchError(
                f'{host.name}: {shlex.join(remote(host))} exited {result.returncode}: '
                f'{result.stderr.decode(errors="replace").strip()[-1500:]}'
            )
        return host.name, result.stdout.decode(errors='replace')

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        return dict(pool.map(one, hosts))


def remote(*args: str) -> list[str]:
    return ['python3', '-c', REMOTE, *args]


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
                'forks = 32',
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


def write_inventory(*, env: NetEnv, hosts: list[Host]) -> Path:
    common = '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes'
    inventory = {
        'all': {
            'vars': {
                'ansible_user': 'deploy',
                'ansible_ssh_private_key_file': str(env.fleet.key),
                'ansible_ssh_common_args': common,
                'ansible_python_interpreter': '/usr/bin/python3',
            },
            'hosts': {host.name: {'ansible_host': host.address} for host in hosts},
        }
    }
    path = env.inventories / f'hosts-{len(hosts)}.yml'
    path.write_text(json.dumps(inventory, indent=2) + '\n')
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
) -> dict:
    """Run one case on `hosts`: wall time, bytes per host on the veths, the play recap, the task timings."""
    env.run_counter += 1
    control_dir = env.work / 'cp' / str(env.run_counter)
    control_dir.mkdir(parents=True)
    timer_out = env.logs / f'{name}.timer.json'
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
    }
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
        if not keep_cache:
            shutil.rmtree(delta_cache, ignore_errors=True)
    output = log_path.read_text(errors='replace')
    if any(codes):
        tail = '\n'.join(output.splitlines()[-40:])
        raise NetBenchError(f'{name} exited {codes}; log {log_path}:\n{tail}')
    breakdown = None
    if ansible is not None and timer_out.is_file():
        breakdown = task_breakdown(
            timer=json.loads(timer_out.read_text()), process_start=process_start, process_end=process_end
        )
    return {
        'delta_cache': delta_cache,
        'wall': wall,
        'tx': tx,
        'rx': rx,
        'changed': bench.recap_changed(output) if ansible is not None else -1,
        'breakdown': breakdown,
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


def prepare_hosts(*, env: NetEnv, hosts: list[Host]) -> dict:
    """Tmpfs, templates: ours-v1 by our playbook (the first-deploy figure) and a plain v1 for the floors."""
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
        'tx': run['tx'],
        'changed': run['changed'],
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
    ctime among it), and `cp -a` changes both, which would make every copied file look edited.
    """
    if not keys:
        return None
    on_hosts(
        fleet=env.fleet,
        hosts=hosts,
        remote=lambda _host: remote('seed', *[case_root(key) for key in keys]),
    )
    common = '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes'
    inventory = {
        'all': {
            'vars': {
                'ansible_user': 'deploy',
                'ansible_ssh_private_key_file': str(env.fleet.key),
                'ansible_ssh_common_args': common,
                'ansible_python_interpreter': '/usr/bin/python3',
            },
            'hosts': {
                f'{host.name}-{key}': {'ansible_host': host.address, 'release_root': case_root(key)}
                for host in hosts
                for key in keys
            },
        }
    }
    path = env.inventories / f'v1-roots-{len(hosts)}.yml'
    path.write_text(json.dumps(inventory, indent=2) + '\n')
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
    )
    if env.delta_cache == 'warm':
        # every run of this round starts from a copy: a controller that deployed v1 before
        env.warm_cache = run['delta_cache']
    for key in keys:
        check_current(env=env, hosts=hosts, root=case_root(key), release='v1')
    # a first deploy of len(keys) roots per host at once: bytes per root and host
    return {'wall': round(run['wall'], 3), 'roots': len(keys), 'tx_per_root': median(run['tx'].values()) / len(keys)}


def run_case(*, env: NetEnv, case: NetCase, hosts: list[Host], round_index: int) -> dict:
    root = case_root(case.key)
    if case.template:
        on_hosts(
            fleet=env.fleet,
            hosts=hosts,
            remote=lambda _host: remote('reset', f'{HOST_ROOT}/tpl/{case.template}', root, *case.subdirs),
        )
    inventory = env.inventories / f'hosts-{len(hosts)}.yml'
    name = f'{case.key}-{len(hosts)}h-{round_index}'
    if case.key == 'rsync_floor':
        rsh = ssh_command_string(fleet=env.fleet)
        source = f'{env.trees["v2"]}/'

        def shell(handle) -> list[int]:
            # One rsync and one ssh per host, all hosts at once, as a parallel shell loop would.
            def one(host: Host) -> int:
                # An absolute --link-dest: a relative one makes rsync's delta against the link-dest basis
                # fail verification ("update discarded", RsyncProject/rsync#928) with this receiver.
                sync = subprocess.run(
                    ['rsync', '-a', '-e', rsh, f'--link-dest={root}/releases/v1', source]
                    + [f'deploy@{host.address}:{root}/releases/v2/'],
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
                if sync.returncode != 0:
                    return sync.returncode
                switch = [
                    'sh',
                    '-ec',
                    f'cd {root} && ln -s releases/v2 .current.tmp && mv -T .current.tmp current',
                ]
                return subprocess.run(
                    ssh_argv(fleet=env.fleet, host=host, remote=switch),
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    check=False,
                ).returncode

            with concurrent.futures.ThreadPoolExecutor(max_workers=len(hosts)) as pool:
                return list(pool.map(one, hosts))

        run = timed_run(env=env, hosts=hosts, name=name, shell=shell)
    else:
        if case.key == 'ansible_floor':
            values = {'bench_root': root, 'bench_release': 'v2', 'bench_archive': str(env.archives['v2'])}
            playbook = str(BENCH_DIR / 'playbooks' / 'ansible_floor.yml')
        elif case.key == 'ours_noop':
            values, playbook = ours_vars(env=env, release='v1', root=root), env.deploy_playbook
        else:
            source = 'directory' if case.key == 'ours_directory' else 'archive'
            values, playbook = ours_vars(env=env, release='v2', root=root, source=source), env.deploy_playbook
        extra = write_vars(env=env, name=case.key, values=values)
        run = timed_run(
            env=env,
            hosts=hosts,
            name=name,
            ansible=[env.ansible_playbook, '-i', str(inventory), '-e', f'@{extra}', playbook],
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
        'ours_directory': NetCase(key='ours_directory', template='', release='v2'),
        'ours_noop': NetCase(key='ours_noop', template='', release='v1'),
    }


def run_bench(*, env: NetEnv, counts: list[int], rounds: int, selected: list[str]) -> dict:
    results: dict = {'hosts': {}, 'raw': {}, 'breakdown': {}, 'v1_roots': {}}
    for count in counts:
        hosts = env.fleet.hosts[:count]
        write_inventory(env=env, hosts=hosts)
        cases = make_cases()
        order = [key for key in CASE_ORDER if key in selected]
        for round_index in range(1, rounds + 1):
            first = deploy_v1_roots(
                env=env, hosts=hosts, keys=[key for key in order if not cases[key].template], round_index=round_index
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
                    f'{fmt_bytes(median(run["tx"].values()))} per host'
                )
        results['hosts'][str(count)] = {key: case_summary(cases[key].runs[str(count)]) for key in order}
        results['raw'][str(count)] = {
            key: [
                {'wall': round(run['wall'], 3), 'tx': run['tx'], 'rx': run['rx'], 'changed': run['changed']}
                for run in cases[key].runs[str(count)]
            ]
            for key in order
        }
        if count == WALL_TARGET_HOSTS or (WALL_TARGET_HOSTS not in counts and count == counts[-1]):
            results['breakdown_hosts'] = count
            for key in order:
                breakdowns = [run['breakdown'] for run in cases[key].runs[str(count)] if run['breakdown']]
                if breakdowns:
                    results['breakdown'][key] = merge_breakdowns(breakdowns)
    return results


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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work', type=Path, required=True, help='scratch directory, normally a fresh tmpfs')
    parser.add_argument('--artifacts', type=Path, required=True, help='directory with v1.tar.gz, v2.tar.gz, manifest')
    parser.add_argument('--venv', type=Path, required=True)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--hosts', default='1 4 8', help='host counts')
    parser.add_argument('--cases', default=' '.join(CASE_ORDER))
    parser.add_argument('--deploy-playbook', default=bench.DEFAULT_DEPLOY_PLAYBOOK)
    parser.add_argument('--results', type=Path, default=BENCH_DIR / 'results')
    parser.add_argument('--label', default='', help='what this run measures (e.g. "baseline", "delta")')
    parser.add_argument(
        '--delta-cache',
        choices=('cold', 'warm'),
        default='cold',
        help="cold: each run starts with an empty controller delta cache; warm: with the round's v1 deploy's",
    )
    parser.add_argument('--readme', action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument('--strict', action='store_true', help='exit 1 when a target is missed')
    return parser.parse_args(argv)


def interrupt(signum: int, _frame: object) -> None:
    raise Interrupted(f'signal {signal.Signals(signum).name}')


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = sorted({int(value) for value in args.hosts.replace(',', ' ').split()})
    selected = [key for key in CASE_ORDER if key in args.cases.replace(',', ' ').split()]
    if not counts or counts[0] < 1 or args.rounds < 1 or not selected:
        raise SystemExit('bench-net: --hosts, --rounds and --cases need at least one valid value each')
    if os.geteuid() != 0:
        raise NetBenchError('the network bench needs root (hostctl, tc)')
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    ensure_rsync()
    work = args.work.resolve()
    manifest = json.loads((args.artifacts / 'manifest.json').read_text())
    archives = {}
    (work / 'artifacts').mkdir(parents=True, exist_ok=True)
    for version in ('v1', 'v2'):
        archives[version] = work / 'artifacts' / f'{version}.tar.gz'
        shutil.copyfile(args.artifacts / f'{version}.tar.gz', archives[version])
    trees = extract_trees(work=work, archives=archives)
    for version, tree in trees.items():
        digest, _count = bench.tree_digest(tree)
        if digest != manifest['archives'][f'{version}.tar.gz']['content']:
            raise NetBenchError(f'{tree}: the unpacked {version} differs from the artifact')
    config = write_config(work=work)
    environ = bench.make_environ(work=work, venv=args.venv, collections=bench.collection_tree(work=work), config=config)
    environ.pop('ANSIBLE_REMOTE_TEMP', None)
    logs, inventories = work / 'logs', work / 'inventories'
    logs.mkdir(exist_ok=True)
    inventories.mkdir(exist_ok=True)
    fleet: Fleet | None = None
    started = time.time()
    load_before = bench.load_average()
    try:
        fleet = bring_up(count=counts[-1], inventory=work / 'hostctl-inventory.yml')
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
            delta_cache=args.delta_cache,
        )
        first = prepare_hosts(env=env, hosts=fleet.hosts)
        log(
            f'first deploy to {first["hosts"]} hosts: {first["wall"]:.2f} s, {fmt_bytes(first["tx_per_host"])} per host'
        )
        measured = run_bench(env=env, counts=counts, rounds=args.rounds, selected=selected)
    except Interrupted as exc:
        log(f'interrupted ({exc}): tearing down')
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log(f'tearing down: qdiscs, hostctl down --name {NAME}')
        tear_down(fleet)
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
    results['targets'] = target_rows(by_hosts=results['hosts'], first_deploy=first, artifact_bytes=artifact_bytes)
    tables = render_tables(results)
    breakdown = render_breakdown(results)
    print(tables)
    print()
    print(breakdown)
    args.results.mkdir(parents=True, exist_ok=True)
    name = f'net{"-" + args.label if args.label else ""}.json'
    for path in (args.results / name, args.results / 'net.json'):
        temp = path.with_name(f'.{path.name}.tmp')
        temp.write_text(json.dumps(results, indent=2) + '\n')
        os.replace(temp, path)
    log(f'wrote {args.results / name} ({results["duration_s"]} s)')
    if args.readme:
        update_readmes(runs=load_runs(args.results) if args.label else [results])
    missed = [row['label'] for row in results['targets'] if row['met'] is False]
    if missed:
        log(f'targets missed: {"; ".join(missed)}')
        if args.strict:
            return 1
    return 0


def render_header(results: dict) -> str:
    artifact = results['artifact']
    return (
        f'Run {results["finished"]} (commit {results["commit"]}{", " + results["label"] if results["label"] else ""}), '
        f'{results["duration_s"]:.0f} s; load average {results["load_before"]} before, {results["load_after"]} after. '
        f'{artifact["files"]} files, {artifact["bytes"] / 1e6:.1f} MB, '
        f'v1.tar.gz {results["artifact_bytes"] / 1e6:.1f} MB; '
        f'v2 changes {artifact["changed_files"]} files ({artifact["changed_bytes"] / 1e6:.2f} MB). Links shaped to '
        f'{results["parameters"]["rate_mbit"]} Mbit/s, checked with 20 MB over TCP per host: '
        f'{", ".join(f"{value:.2f} s" for value in results["shaping_check_s"].values())}. Bytes are counted on each '
        f"host's veth (controller -> host, Ethernet frames) and are the firm figure; wall times on this shared 2-core "
        f'machine are CPU-bound (ssh, Ansible) and noisy.'
    )


def render_comparison(runs: list[dict]) -> str:
    """One table per host count: every case's wall time and bytes per host in each run, side by side."""
    names = [run.get('label') or run['finished'] for run in runs]
    lines: list[str] = []
    for count in sorted({count for run in runs for count in run['hosts']}, key=int):
        head = ['run']
        for name in names:
            head += [f'wall, {name}', f'bytes -> each host, {name}', f'bytes / rsync, {name}']
        lines += [f'**{count} host{"s" if count != "1" else ""}**', '', '| ' + ' | '.join(head) + ' |']
        lines.append('| --- |' + ' ---: |' * (len(head) - 1))
        for key in CASE_ORDER:
            cells = [LABELS[key]]
            for run in runs:
                cases = run['hosts'].get(count, {})
                data = cases.get(key)
                if data is None:
                    cells += ['-', '-', '-']
                    continue
                floor = cases.get('rsync_floor', {}).get('tx_per_host')
                cells += [
                    f'{data["wall"]:.2f} s',
                    fmt_bytes(data['tx_per_host']),
                    fmt_ratio(ratio(data['tx_per_host'], floor)),
                ]
            if any(cell != '-' for cell in cells[1:]):
                lines.append('| ' + ' | '.join(cells) + ' |')
        lines.append('')
    return '\n'.join(lines).rstrip()


def load_runs(results_dir: Path) -> list[dict]:
    """The labelled runs (net-LABEL.json) in results_dir, oldest first."""
    runs = [json.loads(path.read_text()) for path in sorted(results_dir.glob('net-*.json'))]
    return sorted(runs, key=lambda run: run['finished'])


def update_readmes(*, runs: list[dict]) -> None:
    """bench/README.md: the comparison, then each run in full (newest first); bench/results/net-summary.md
    (which README.md links to): the comparison and the newest run's targets. README.md is never written."""
    # the README's targets: of the runs with a cold delta cache, the one with the most host counts (the newest
    # of those)
    cold_runs = [run for run in runs if run['parameters'].get('delta_cache', 'cold') == 'cold'] or runs
    latest = max(cold_runs, key=lambda run: (len(run['hosts']), run['finished']))
    comparison = render_comparison(runs) if len(runs) > 1 else ''
    full = []
    for run in reversed(runs):
        title = f'#### {run.get("label") or "run"}'
        full.append(
            f'{title}\n\n{render_header(run)}\n\n{render_tables(run)}\n\nWhere the time goes:\n\n'
            f'{render_breakdown(run)}'
        )
    bench_body = '\n\n'.join(([f'#### Side by side\n\n{comparison}'] if comparison else []) + full)
    # the summary: the oldest cold run (the baseline) next to the one that gives the targets, so the table
    # stays readable; bench/README.md has every run
    pair = [run for run in cold_runs if run is cold_runs[0] or run is latest]
    readme_comparison = render_comparison(pair) if len(pair) > 1 else ''
    readme_body = (
        f'{render_header(latest)}\n\n{readme_comparison}\n\n{render_targets(latest)}'
        if readme_comparison
        else f'{render_header(latest)}\n\n{render_tables(latest)}'
    )
    readme = BENCH_DIR / 'README.md'
    text = readme.read_text()
    if README_START in text:
        readme.write_text(replace_between(text=text, start=README_START, end=README_END, body=bench_body))
        log(f'updated {readme}')
    else:
        log(f'{readme} has no {README_START} marker; not updated')
    SUMMARY.write_text(f'{SUMMARY_TITLE}\n\n{readme_body}\n')
    log(f'wrote {SUMMARY}')


def render_main(argv: list[str]) -> int:
    """`net.py render [RESULTS_DIR]`: rewrite the README sections from the saved runs."""
    runs = load_runs(Path(argv[0]) if argv else BENCH_DIR / 'results')
    if not runs:
        raise NetBenchError('no net-*.json results to render')
    update_readmes(runs=runs)
    return 0


if __name__ == '__main__':
    try:
        sys.exit(render_main(sys.argv[2:]) if sys.argv[1:2] == ['render'] else main())
    except bench.BenchError as exc:
        print(f'bench-net: error: {exc}', file=sys.stderr)
        sys.exit(1)
