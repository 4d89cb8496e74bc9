"""The figures of the network bench (bench/net.py): pure functions over what the runs recorded.

Counters, medians, the shaping check, per-case summaries (wall, bytes both ways, controller CPU, the
switch's wait and skew), issue 21's targets, the growth with the host count, where the time goes task
by task, the payload of every module run on the wire, and the Markdown of all of it. Tested by
tests/unit/test_bench_net.py; nothing here runs a command.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from pathlib import Path

import bench

# TCP/IPv4 with timestamps (52 bytes) and Ethernet (14 bytes) around each 1448-byte segment.
WIRE_OVERHEAD = 66 / 1448
SHAPING_TOLERANCE = 0.2
CASE_ORDER = ('rsync_floor', 'ansible_floor', 'ours_archive', 'ours_mitogen', 'ours_directory', 'ours_noop')
LABELS = {
    'rsync_floor': '`rsync -a --link-dest=ROOT/releases/v1 v2/ host:ROOT/releases/v2/`, then `ln -s` + `mv -T`',
    'ansible_floor': 'two-task play: `unarchive` (copy) + `file state=link`',
    'ours_archive': 'ours, `release_source=archive`',
    'ours_mitogen': 'ours, `release_source=archive`, strategy `mitogen_linear`',
    'ours_directory': 'ours, `release_source=directory`',
    'ours_noop': 'ours, no-op re-deploy of the live release',
    'first_deploy': 'ours, first deploy (v1 into an empty root)',
}
SHORT = {
    'rsync_floor': 'rsync floor',
    'ansible_floor': 'Ansible floor',
    'ours_archive': 'ours',
    'ours_mitogen': 'ours, Mitogen',
    'ours_directory': 'ours, directory',
    'ours_noop': 'ours, no-op',
}
ANSIBLE_CASES = ('ansible_floor', 'ours_archive', 'ours_mitogen', 'ours_directory', 'ours_noop')

# issue 21, "How it is measured"
WALL_LIMITS = {'4': 2.5, '16': 3.0}
BYTES_LIMIT = 1.3
MITOGEN_BYTES_LIMIT = 1.1
SWITCH_HOSTS = '16'
SWITCH_WAIT_LIMIT = 1.0
SKEW_LIMIT = 0.1
NOOP_LIMIT = 50_000
FIRST_DEPLOY_LIMIT = 1.05


class NetBenchError(bench.BenchError):
    """The bench cannot produce meaningful figures."""


# ---------------------------------------------------------------------------------------------------------
# counters, medians, the link


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


def median_or_none(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return median(present) if present else None


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


def htb_rates(text: str) -> list[int]:
    """The rates in bits per second of the htb classes in `tc class show dev IF` output (the JSON
    output of iproute2 6.1 leaves the htb options out)."""
    units = {'bit': 1, 'kbit': 1_000, 'mbit': 1_000_000, 'gbit': 1_000_000_000}
    rates = []
    for line in text.splitlines():
        words = line.split()
        if words[:2] != ['class', 'htb'] or 'rate' not in words:
            continue
        value = words[words.index('rate') + 1].lower()
        number = value.rstrip('abcdefghijklmnopqrstuvwxyz')
        unit = value[len(number) :]
        if number and unit in units:
            rates.append(int(float(number) * units[unit]))
    return rates


def ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


# ---------------------------------------------------------------------------------------------------------
# one run: the switch, the payload of each module run


def switch_metrics(timer: dict) -> dict | None:
    """The coordinated switch of one run, from the task whose results carry `switched_at`.

    wait: from the controller starting that task to the first rename (what the fleet waits for the
    agreed instant, the modules' dispatch included); skew: the spread of the renames; agreed: the
    agreed instant minus that start; late: the latest host's lateness; reported: the skew the
    product reports itself, when it does.
    """
    best = None
    for task in timer.get('tasks', []):
        switched = {name: host['switch'] for name, host in task['hosts'].items() if host.get('switch')}
        if switched and (best is None or len(switched) > len(best[1])):
            best = (task, switched)
    if best is None:
        return None
    task, switched = best
    instants = [switch['switched_at'] for switch in switched.values()]
    agreed = [switch['switch_at'] for switch in switched.values() if switch.get('switch_at') is not None]
    reported = [
        switch.get('switch_skew', switch.get('skew'))
        for switch in switched.values()
        if isinstance(switch.get('switch_skew', switch.get('skew')), (int, float))
    ]
    late = [switch['switch_late'] for switch in switched.values() if switch.get('switch_late') is not None]
    return {
        'task': task['name'],
        'hosts': len(instants),
        'wait': min(instants) - task['start'],
        'skew': max(instants) - min(instants),
        'agreed': (median(agreed) - task['start']) if agreed else None,
        'late': max(late) if late else None,
        'reported_skew': max(reported) if reported else None,
    }


def task_at(*, tasks: list[dict], instant: float) -> str | None:
    """The task that was running at `instant` (the linear strategy runs one task at a time)."""
    found = None
    for task in tasks:
        if task['start'] <= instant:
            found = task['name']
        else:
            break
    return found


def census_rows(*, lines: list[dict], timer: dict, addresses: dict[str, str]) -> list[dict]:
    """Each transfer of one run (bench_timer's wire census) with its task and host.

    `addresses` maps a host's address to its inventory name. The n-th call with the same label in
    the same task on the same host gets `nth`, so repeated module runs stay apart.
    """
    rows = []
    seen: dict[tuple, int] = {}
    for line in sorted(lines, key=lambda item: item['start']):
        host = addresses.get(line.get('address'))
        if host is None:
            continue
        task = task_at(tasks=timer.get('tasks', []), instant=line['start']) or '(before the first task)'
        key = (host, task, line['label'])
        seen[key] = seen.get(key, 0) + 1
        rows.append(
            {
                'host': host,
                'task': task,
                'label': line['label'],
                'kind': line['kind'],
                'nth': seen[key],
                'in': line.get('in'),
                'tx': line.get('tx'),
                'rx': line.get('rx'),
                'seconds': line['end'] - line['start'],
            }
        )
    return rows


def merge_census(runs: list[list[dict]]) -> list[dict]:
    """Per (task, label, nth) over every host of every run: medians of the payload and the wire bytes,
    in first-seen order."""
    order: list[tuple] = []
    values: dict[tuple, dict[str, list]] = {}
    for rows in runs:
        for row in rows:
            key = (row['task'], row['label'], row['nth'])
            if key not in values:
                order.append(key)
                values[key] = {'in': [], 'tx': [], 'rx': [], 'seconds': [], 'kind': row['kind']}
            for field in ('in', 'tx', 'rx', 'seconds'):
                if row.get(field) is not None:
                    values[key][field].append(row[field])
    merged = []
    for key in order:
        data = values[key]
        merged.append(
            {
                'task': key[0],
                'label': key[1],
                'nth': key[2],
                'kind': data['kind'],
                'in': median_or_none(data['in']),
                'tx': median_or_none(data['tx']),
                'rx': median_or_none(data['rx']),
                'seconds': median_or_none(data['seconds']),
                'samples': len(data['tx']),
            }
        )
    return merged


def census_seconds(runs: list[list[dict]]) -> dict[str, float]:
    """Per task: how long the median host spent in its ssh calls (the rest of the task's time on that
    host is the controller's work and waiting for it)."""
    per_host: dict[str, list[float]] = {}
    for index, rows in enumerate(runs):
        sums: dict[tuple[str, str], float] = {}
        for row in rows:
            key = (row['task'], f'{index}:{row["host"]}')
            sums[key] = sums.get(key, 0.0) + row['seconds']
        for (task, _host), seconds in sums.items():
            per_host.setdefault(task, []).append(seconds)
    return {task: median(values) for task, values in per_host.items()}


# ---------------------------------------------------------------------------------------------------------
# a case over its runs


def case_summary(runs: list[dict]) -> dict:
    """Medians over a case's runs: wall time; per host (the median host of each run) the bytes each
    way and both together; the controller's CPU seconds, in all and per host; the switch."""
    walls = [run['wall'] for run in runs]
    tx_host = [median(run['tx'].values()) for run in runs]
    rx_host = [median(run['rx'].values()) for run in runs]
    both_host = [median(run['tx'][name] + run['rx'].get(name, 0) for name in run['tx']) for run in runs]
    cpu = [run.get('cpu') for run in runs]
    cpu_host = [run['cpu'] / len(run['tx']) if run.get('cpu') is not None else None for run in runs]
    switches = [run.get('switch') for run in runs if run.get('switch')]
    summary = {
        'wall': median(walls),
        'wall_min': min(walls),
        'wall_max': max(walls),
        'tx_per_host': median(tx_host),
        'tx_per_host_max': max(max(run['tx'].values()) for run in runs),
        'rx_per_host': median(rx_host),
        'bytes_per_host': median(both_host),
        'cpu': median_or_none(cpu),
        'cpu_per_host': median_or_none(cpu_host),
        'runs': len(runs),
        'changed': sorted({run['changed'] for run in runs}),
    }
    if switches:
        summary['switch'] = {
            key: median_or_none(switch.get(key) for switch in switches)
            for key in ('wait', 'skew', 'agreed', 'late', 'reported_skew')
        }
        summary['switch']['skew_max'] = max(switch['skew'] for switch in switches)
    return summary


def ratio_rows(*, summaries: dict[str, dict], floor: str = 'rsync_floor') -> list[dict]:
    """One row per case: absolute medians and their ratios to the floor's."""
    base = summaries.get(floor, {})
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
                'rx_per_host': data.get('rx_per_host'),
                'bytes_per_host': data.get('bytes_per_host'),
                'cpu_per_host': data.get('cpu_per_host'),
                'wall_vs_floor': ratio(data['wall'], base.get('wall')),
                'tx_vs_floor': ratio(data['tx_per_host'], base.get('tx_per_host')),
                'bytes_vs_floor': ratio(data.get('bytes_per_host'), base.get('bytes_per_host')),
                'wall_vs_ansible_floor': ratio(data['wall'], summaries.get('ansible_floor', {}).get('wall')),
            }
        )
    return rows


def target_rows(*, by_hosts: dict[str, dict[str, dict]], first_deploy: dict | None, artifact_bytes: int) -> list[dict]:
    """Issue 21's targets, each with its value(s) per host count and whether it is met (None: not measured)."""
    rows: list[dict] = []

    def add(key: str, label: str, values: dict[str, float | None], limit: float, unit: str, strict=False) -> None:
        measured = {count: value for count, value in values.items() if value is not None}
        if not measured:
            met = None
        elif strict:
            met = all(value < limit for value in measured.values())
        else:
            met = all(value <= limit for value in measured.values())
        rows.append(
            {'key': key, 'label': label, 'values': measured, 'limit': limit, 'unit': unit, 'strict': strict, 'met': met}
        )

    def of(count: str, case: str, field: str) -> float | None:
        return by_hosts.get(count, {}).get(case, {}).get(field)

    for count, limit in WALL_LIMITS.items():
        add(
            f'wall_{count}',
            f'wall at {count} hosts, {LABELS["ours_archive"]} / rsync floor',
            {count: ratio(of(count, 'ours_archive', 'wall'), of(count, 'rsync_floor', 'wall'))},
            limit,
            'x',
        )
    for key, case, limit in (
        ('bytes', 'ours_archive', BYTES_LIMIT),
        ('bytes_mitogen', 'ours_mitogen', MITOGEN_BYTES_LIMIT),
    ):
        add(
            key,
            f'bytes per host, both directions, {LABELS[case]} / rsync floor',
            {
                count: ratio(of(count, case, 'bytes_per_host'), of(count, 'rsync_floor', 'bytes_per_host'))
                for count in by_hosts
            },
            limit,
            'x',
        )
    switch = by_hosts.get(SWITCH_HOSTS, {}).get('ours_archive', {}).get('switch') or {}
    add(
        'switch_wait',
        f'wait before the switch at {SWITCH_HOSTS} hosts (switch task start to the first rename), ours',
        {SWITCH_HOSTS: switch.get('wait')},
        SWITCH_WAIT_LIMIT,
        's',
    )
    add(
        'switch_skew',
        f'switch skew at {SWITCH_HOSTS} hosts (spread of the renames), ours',
        {SWITCH_HOSTS: switch.get('skew')},
        SKEW_LIMIT,
        's',
        strict=True,
    )
    add(
        'noop_bytes',
        'no-op re-deploy, bytes per host, both directions',
        {count: cases.get('ours_noop', {}).get('bytes_per_host') for count, cases in by_hosts.items()},
        NOOP_LIMIT,
        'B',
    )
    add(
        'first_deploy_bytes',
        'first deploy (v1), bytes to each host / v1.tar.gz',
        {str(first_deploy['hosts']): first_deploy['tx_per_host'] / artifact_bytes} if first_deploy else {},
        FIRST_DEPLOY_LIMIT,
        'x',
    )
    return rows


def scale_rows(*, by_hosts: dict[str, dict[str, dict]]) -> list[dict]:
    """Per host count and case: wall, bytes per host each way, controller CPU per host, and how much
    each grew from the previous count (wall: seconds per added host)."""
    rows = []
    previous: dict[str, tuple[int, dict]] = {}
    for count in sorted(by_hosts, key=int):
        for key in CASE_ORDER:
            data = by_hosts[count].get(key)
            if data is None:
                continue
            row = {
                'hosts': int(count),
                'case': key,
                'wall': data['wall'],
                'tx_per_host': data['tx_per_host'],
                'rx_per_host': data.get('rx_per_host'),
                'cpu_per_host': data.get('cpu_per_host'),
                'wall_per_added_host': None,
                'cpu_per_host_growth': None,
            }
            if key in previous:
                last_count, last = previous[key]
                row['wall_per_added_host'] = (data['wall'] - last['wall']) / (int(count) - last_count)
                row['cpu_per_host_growth'] = ratio(data.get('cpu_per_host'), last.get('cpu_per_host'))
            previous[key] = (int(count), data)
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------------------
# where the time goes


def task_breakdown(*, timer: dict, process_start: float, process_end: float) -> list[dict]:
    """Where one ansible-playbook run's wall time went: start-up, each task (slowest host), the end.

    `timer` is what bench/callback_plugins/bench_timer.py wrote; times are epoch seconds. Per task
    also when the first and the last host finished it, and the bytes to and from each host (median
    over hosts). (Not the controller's CPU per task: Ansible reaps its workers late, so their CPU
    would count in a later task; the bench measures it per run.)
    """
    tasks = timer['tasks']
    first = tasks[0]['start'] if tasks else timer['ended']
    rows = [{'name': '(ansible-playbook start-up, parsing, inventory)', 'seconds': first - process_start}]
    for index, task in enumerate(tasks):
        ends = [host['end'] for host in task['hosts'].values()]
        following = tasks[index + 1] if index + 1 < len(tasks) else None
        following_start = following['start'] if following else timer['ended']
        end = max(ends) if ends else following_start
        skipped = bool(ends) and all(host['status'] == 'skipped' for host in task['hosts'].values())
        row = {'name': task['name'], 'seconds': max(end, following_start) - task['start'], 'skipped': skipped}
        for field, start_field in (('tx', 'tx_start'), ('rx', 'rx_start')):
            sent = [
                host[field] - task[start_field][name]
                for name, host in task['hosts'].items()
                if host.get(field) is not None and task.get(start_field, {}).get(name) is not None
            ]
            if sent:
                row[f'{field}_per_host'] = median(sent)
        if ends:
            row['first_host'], row['last_host'] = min(ends) - task['start'], max(ends) - task['start']
        rows.append(row)
    rows.append({'name': '(recap, exit)', 'seconds': process_end - timer['ended']})
    return rows


def merge_breakdowns(breakdowns: list[list[dict]]) -> list[dict]:
    """Median seconds (and the first and last host, bytes per host, where known) per row name over
    several runs of the same playbook, rows in first-seen order."""
    order: list[str] = []
    values: dict[str, dict[str, list[float]]] = {}
    fields = ('seconds', 'first_host', 'last_host', 'tx_per_host', 'rx_per_host')
    for rows in breakdowns:
        seen: dict[str, dict[str, float]] = {}
        for row in rows:
            into = seen.setdefault(row['name'], {})
            for field in fields:
                if field in row:
                    into[field] = into.get(field, 0.0) + row[field]
        for name, sums in seen.items():
            if name not in values:
                order.append(name)
                values[name] = {field: [] for field in fields}
            for field, value in sums.items():
                values[name][field].append(value)
    merged = []
    for name in order:
        row = {'name': name}
        for field in fields:
            if values[name][field]:
                row[field] = median(values[name][field])
        merged.append(row)
    return merged


# ---------------------------------------------------------------------------------------------------------
# Markdown


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return '-'
    if value >= 1e6:
        return f'{value / 1e6:.2f} MB'
    return f'{value / 1e3:.1f} kB'


def fmt_ratio(value: float | None) -> str:
    return 'n/a' if value is None else f'{value:.2f}x'


def fmt_seconds(value: float | None, digits: int = 2) -> str:
    return '-' if value is None else f'{value:.{digits}f} s'


def fmt_number(value: float | None) -> str:
    return '' if value is None else f'{value:.2f}'


def fmt_value(value: float, unit: str) -> str:
    if unit == 'B':
        return fmt_bytes(value)
    if unit == 's':
        return f'{value * 1000:.0f} ms' if value < 1 else f'{value:.2f} s'
    return f'{value:.2f}x'


def plural(count: str | int) -> str:
    return f'{count} host{"s" if str(count) != "1" else ""}'


def render_tables(results: dict) -> str:
    """Markdown: one table per host count (absolute medians and ratios)."""
    lines: list[str] = []
    for count, cases in results['hosts'].items():
        rows = ratio_rows(summaries=cases)
        lines += [
            f'**{plural(count)}** (medians of {results["parameters"]["rounds"]} rounds)',
            '',
            '| run | wall | wall / rsync | bytes -> each host | bytes <- each host | both / rsync '
            '| controller CPU per host | switch: wait, skew |',
            '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
        ]
        for row in rows:
            switch = cases[row['case']].get('switch')
            shown = f'{fmt_value(switch["wait"], "s")}, {fmt_value(switch["skew"], "s")}' if switch else ''
            lines.append(
                f'| {LABELS[row["case"]]} | {row["wall"]:.2f} s | {fmt_ratio(row["wall_vs_floor"])} | '
                f'{fmt_bytes(row["tx_per_host"])} | {fmt_bytes(row["rx_per_host"])} | '
                f'{fmt_ratio(row["bytes_vs_floor"])} | {fmt_seconds(row["cpu_per_host"])} | {shown} |'
            )
        lines.append('')
    return '\n'.join(lines).rstrip()


def render_targets(results: dict) -> str:
    """Markdown: the first deploy, then the targets with a pass/miss each."""
    lines: list[str] = []
    first = results.get('first_deploy')
    if first:
        lines += [
            f'First deploy (v1, ours, archive) to {plural(first["hosts"])}: {first["wall"]:.2f} s, '
            f'{fmt_bytes(first["tx_per_host"])} to each host (v1.tar.gz is {fmt_bytes(results["artifact_bytes"])}).',
            '',
        ]
    lines += ['| target | measured | limit | met |', '| --- | --- | ---: | :---: |']
    for row in results['targets']:
        shown = ', '.join(f'{fmt_value(value, row["unit"])} ({count} h)' for count, value in row['values'].items())
        limit = ('< ' if row.get('strict') else '<= ') + fmt_value(row['limit'], row['unit'])
        met = {True: 'pass', False: 'MISS', None: 'not measured'}[row['met']]
        lines.append(f'| {row["label"]} | {shown or "-"} | {limit} | {met} |')
    return '\n'.join(lines)


def render_scale(results: dict) -> str:
    """Markdown: how wall, bytes and controller CPU per host grow with the host count."""
    rows = scale_rows(by_hosts=results['hosts'])
    if len({row['hosts'] for row in rows}) < 2:
        return ''
    lines = [
        '| case | hosts | wall | wall per added host | bytes -> each host | bytes <- each host '
        '| controller CPU per host | CPU per host vs the previous count |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ]
    for key in CASE_ORDER:
        for row in (row for row in rows if row['case'] == key):
            added = row['wall_per_added_host']
            lines.append(
                f'| {SHORT[key]} | {row["hosts"]} | {row["wall"]:.2f} s | '
                f'{"" if added is None else f"{added:+.3f} s"} | {fmt_bytes(row["tx_per_host"])} | '
                f'{fmt_bytes(row["rx_per_host"])} | {fmt_seconds(row["cpu_per_host"], 3)} | '
                f'{fmt_ratio(row["cpu_per_host_growth"]) if row["cpu_per_host_growth"] else ""} |'
            )
    return '\n'.join(lines)


def render_breakdown(results: dict) -> str:
    """Per host count and Ansible case: median seconds of each step (slowest host), bytes, CPU."""
    blocks = []
    rate = results['parameters']['rate_mbit'] * 1_000_000
    for count, cases in results.get('breakdown', {}).items():
        for key, rows in cases.items():
            total = sum(row['seconds'] for row in rows)
            lines = [f'{LABELS.get(key, key)}, {plural(count)} (medians per step; total {total:.2f} s):', '']
            in_ssh = results.get('census_seconds', {}).get(count, {}).get(key, {})
            lines += [
                '| step | seconds | first host done | last host done | in ssh calls (median host) '
                '| bytes -> each host | bytes <- each host |',
                '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
            ]
            lines += [
                f'| {row["name"]} | {row["seconds"]:.2f} | '
                f'{fmt_number(row.get("first_host"))} | {fmt_number(row.get("last_host"))} | '
                f'{fmt_number(in_ssh.get(row["name"]))} | '
                f'{fmt_bytes(row["tx_per_host"]) if row.get("tx_per_host") else ""} | '
                f'{fmt_bytes(row["rx_per_host"]) if row.get("rx_per_host") else ""} |'
                for row in rows
                if row['seconds'] >= 0.005 or row.get('tx_per_host')
            ]
            sent = results['hosts'].get(count, {}).get(key, {}).get('tx_per_host')
            if sent is not None:
                lines.append(
                    f"| (included above: the whole run's bytes on each host's own {rate / 1e6:.0f} Mbit/s link, "
                    f'at least) | {sent * 8 / rate:.2f} | | | | {fmt_bytes(sent)} | |'
                )
            blocks.append('\n'.join(lines))
    return '\n\n'.join(blocks)


def render_census(results: dict) -> str:
    """Per Ansible case: every module run and transfer to one host, its payload and its wire bytes."""
    blocks = []
    sections = list(results.get('census', {}).items())
    first = results.get('first_deploy') or {}
    if first.get('census'):
        sections.append((str(first['hosts']), {'first_deploy': first['census']}))
    for count, cases in sections:
        for key, rows in cases.items():
            if not rows:
                continue
            lines = [
                f'{LABELS.get(key, key)}, {plural(count)} (medians over hosts and runs):',
                '',
                '| task | module run or transfer | handed to ssh | -> host on the wire | <- host on the wire '
                '| seconds |',
                '| --- | --- | ---: | ---: | ---: | ---: |',
            ]
            for row in rows:
                label = row['label'] if row['nth'] == 1 else f'{row["label"]} (#{row["nth"]})'
                lines.append(
                    f'| {row["task"]} | {label} | {fmt_bytes(row["in"])} | {fmt_bytes(row["tx"])} | '
                    f'{fmt_bytes(row["rx"])} | {fmt_number(row.get("seconds"))} |'
                )
            blocks.append('\n'.join(lines))
    return '\n\n'.join(blocks)


def render_header(results: dict) -> str:
    artifact = results['artifact']
    shaping = results['shaping_check_s']
    return (
        f'Run {results["finished"]} (commit {results["commit"]}{", " + results["label"] if results["label"] else ""}), '
        f'{results["duration_s"]:.0f} s; load average {results["load_before"]} before, {results["load_after"]} after. '
        f'{artifact["files"]} files, {artifact["bytes"] / 1e6:.1f} MB, '
        f'v1.tar.gz {results["artifact_bytes"] / 1e6:.1f} MB; '
        f'v2 changes {artifact["changed_files"]} files ({artifact["changed_bytes"] / 1e6:.2f} MB). Links shaped to '
        f'{results["parameters"]["rate_mbit"]} Mbit/s, checked with 20 MB over TCP on {len(shaping)} hosts: '
        f'{", ".join(f"{value:.2f} s" for value in shaping.values())}. Bytes are counted on each '
        f"host's veth (Ethernet frames) and are the firm figure; wall times on this shared 2-core "
        f'machine are CPU-bound (ssh, Ansible) and noisy. Controller CPU: user + system seconds of every '
        f'process the run started (ansible-playbook, its workers, ssh and its masters; rsync and ssh for the floor).'
    )


def render_markdown(results: dict) -> str:
    """The whole run as Markdown (bench/results/net-LABEL.md)."""
    parts = [
        f'# make bench-net{": " + results["label"] if results["label"] else ""}',
        render_header(results),
        render_tables(results),
        render_targets(results),
    ]
    scale = render_scale(results)
    if scale:
        parts += ['## How it grows with the host count', scale]
    breakdown = render_breakdown(results)
    if breakdown:
        parts += ['## Where the time goes, task by task', breakdown]
    census = render_census(results)
    if census:
        parts += ['## The payload of every module run, on the wire', census]
    return '\n\n'.join(parts) + '\n'


SUMMARY_TITLE = '# make bench-net: the newest run in short (written by bench/net.py; in full: net.md beside it)'


def render_summary(results: dict) -> str:
    """The newest run in short (bench/results/net-summary.md): the figures per host count, the
    targets, the growth with the host count."""
    parts = [SUMMARY_TITLE, render_header(results), render_tables(results), render_targets(results)]
    scale = render_scale(results)
    if scale:
        parts += ['How it grows with the host count:', scale]
    return '\n\n'.join(parts) + '\n'


def write_results(*, results: dict, directory: Path) -> list[Path]:
    """net.json and net.md (the newest run), net-LABEL.json and .md for a labelled run, and
    net-summary.md, all in `directory` (bench/results): the bench writes no README."""
    directory.mkdir(parents=True, exist_ok=True)
    document = json.dumps(results, indent=2) + '\n'
    markdown = render_markdown(results)
    files = {'net.json': document, 'net.md': markdown, 'net-summary.md': render_summary(results)}
    if results.get('label'):
        files[f'net-{results["label"]}.json'] = document
        files[f'net-{results["label"]}.md'] = markdown
    written = []
    for name, text in files.items():
        path = directory / name
        temp = path.with_name(f'.{name}.tmp')
        temp.write_text(text)
        temp.replace(path)
        written.append(path)
    return written


def render_comparison(runs: list[dict]) -> str:
    """One table per host count: every case's wall time and bytes per host in each run, side by side."""
    names = [run.get('label') or run['finished'] for run in runs]
    lines: list[str] = []
    for count in sorted({count for run in runs for count in run['hosts']}, key=int):
        head = ['run']
        for name in names:
            head += [f'wall, {name}', f'bytes -> each host, {name}', f'bytes / rsync, {name}']
        lines += [f'**{plural(count)}**', '', '| ' + ' | '.join(head) + ' |']
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
    # runs of the older format (issue 11's bench) have no bytes both ways: compare what they have
    runs = [run for run in runs if 'hosts' in run]
    return sorted(runs, key=lambda run: run['finished'])
