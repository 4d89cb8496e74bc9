"""Pure logic of the network bench (bench/netreport.py, bench/net.py): counters, medians, the shaping
check, the ratio and target tables, the growth with the host count, the switch's wait and skew, the
payload census, the task breakdown, the bench's timer callback, and the script that checks a host's tree
(run here on a temporary tree). The bench itself needs root and SSH hosts: `make bench-net`.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / 'bench'
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))
bench = importlib.import_module('bench')
net = importlib.import_module('net')
report = importlib.import_module('netreport')


def test_counters_parse_and_subtract() -> None:
    assert report.parse_counter('123456\n') == 123456
    assert report.counter_delta(before={'a': 10, 'b': 5}, after={'a': 25, 'b': 5}) == {'a': 15, 'b': 0}


@pytest.mark.parametrize('text', ['', 'n/a\n', '-1', '12 34'])
def test_bad_counter_is_refused(text: str) -> None:
    with pytest.raises(report.NetBenchError, match='not an interface counter'):
        report.parse_counter(text)


def test_counter_that_went_down_is_refused() -> None:
    with pytest.raises(report.NetBenchError, match='went down'):
        report.counter_delta(before={'veth1': 100}, after={'veth1': 3})


def test_median() -> None:
    assert report.median([3.0, 1.0, 2.0]) == 2.0
    assert report.median([4, 1, 2, 3]) == 2.5
    with pytest.raises(report.NetBenchError):
        report.median([])


def test_twenty_megabytes_at_100_mbit_take_about_1_7_s() -> None:
    assert report.expected_transfer_seconds(payload=20_000_000, rate_bits=100_000_000) == pytest.approx(1.67, abs=0.01)


@pytest.mark.parametrize(
    ('seconds', 'ok', 'why'),
    [
        (1.70, True, ''),
        (1.45, True, ''),
        (0.08, False, 'not shaped'),
        (1.2, False, 'not shaped'),
        (2.6, False, 'slower'),
    ],
)
def test_shaping_verdict(seconds: float, ok: bool, why: str) -> None:
    verdict, expected, message = report.shaping_verdict(seconds=seconds, payload=20_000_000, rate_bits=100_000_000)
    assert verdict is ok
    assert expected == pytest.approx(1.67, abs=0.01)
    assert f'took {seconds:.2f} s' in message
    assert why in message


def run(wall: float, tx: dict[str, int], changed: int = 2, cpu: float | None = None) -> dict:
    return {'wall': wall, 'tx': tx, 'rx': dict.fromkeys(tx, 1000), 'changed': changed, 'cpu': cpu}


def test_case_summary_takes_medians_over_runs_and_hosts() -> None:
    runs = [
        run(2.0, {'h1': 100, 'h2': 300, 'h3': 200}, cpu=3.0),
        run(9.0, {'h1': 400, 'h2': 400, 'h3': 400}, cpu=9.0),
        run(3.0, {'h1': 100, 'h2': 100, 'h3': 900}, cpu=6.0),
    ]
    summary = report.case_summary(runs)
    assert summary['wall'] == 3.0
    assert summary['wall_min'] == 2.0 and summary['wall_max'] == 9.0
    # per run the median host (200, 400, 100), then the median run
    assert summary['tx_per_host'] == 200
    assert summary['tx_per_host_max'] == 900
    assert summary['rx_per_host'] == 1000
    assert summary['bytes_per_host'] == 1200
    # controller CPU: the median run, and per host the median of each run's CPU / its hosts
    assert summary['cpu'] == 6.0
    assert summary['cpu_per_host'] == pytest.approx(2.0)
    assert summary['changed'] == [2]
    assert 'switch' not in summary


def test_case_summary_without_cpu_or_switch() -> None:
    summary = report.case_summary([run(1.0, {'h1': 10})])
    assert summary['cpu'] is None and summary['cpu_per_host'] is None


def test_case_summary_takes_the_switch_medians() -> None:
    runs = [run(1.0, {'h': 1}), run(1.0, {'h': 1}), run(1.0, {'h': 1})]
    for item, (wait, skew) in zip(runs, ((0.5, 0.010), (0.9, 0.030), (0.7, 0.020)), strict=True):
        item['switch'] = {'wait': wait, 'skew': skew, 'agreed': None, 'late': 0.0, 'reported_skew': None}
    switch = report.case_summary(runs)['switch']
    assert switch['wait'] == 0.7 and switch['skew'] == 0.02 and switch['skew_max'] == 0.03
    assert switch['agreed'] is None and switch['late'] == 0.0


def summaries() -> dict[str, dict]:
    return {
        'rsync_floor': {'wall': 1.0, 'tx_per_host': 500_000, 'rx_per_host': 30_000, 'bytes_per_host': 530_000},
        'ansible_floor': {'wall': 10.0, 'tx_per_host': 27_000_000},
        'ours_archive': {
            'wall': 2.0,
            'tx_per_host': 600_000,
            'rx_per_host': 40_000,
            'bytes_per_host': 640_000,
            'cpu_per_host': 0.5,
            'switch': {'wait': 0.8, 'skew': 0.02},
        },
        'ours_mitogen': {'wall': 2.5, 'tx_per_host': 520_000, 'rx_per_host': 40_000, 'bytes_per_host': 560_000},
        'ours_noop': {'wall': 1.5, 'tx_per_host': 14_000, 'rx_per_host': 6_000, 'bytes_per_host': 20_000},
    }


def test_ratio_rows_are_relative_to_the_rsync_floor() -> None:
    rows = {row['case']: row for row in report.ratio_rows(summaries=summaries())}
    assert list(rows) == ['rsync_floor', 'ansible_floor', 'ours_archive', 'ours_mitogen', 'ours_noop']
    assert rows['rsync_floor']['wall_vs_floor'] == 1.0
    assert rows['ours_archive']['tx_vs_floor'] == pytest.approx(1.2)
    assert rows['ours_archive']['bytes_vs_floor'] == pytest.approx(640 / 530)
    assert rows['ours_archive']['wall_vs_floor'] == pytest.approx(2.0)
    assert rows['ours_archive']['wall_vs_ansible_floor'] == pytest.approx(0.2)
    assert rows['ansible_floor']['bytes_vs_floor'] is None


def test_ratio_rows_without_a_floor_have_no_ratios() -> None:
    rows = report.ratio_rows(summaries={'ours_archive': {'wall': 4.0, 'tx_per_host': 1}})
    assert rows[0]['wall_vs_floor'] is None and rows[0]['tx_vs_floor'] is None


def targets(by_hosts: dict, first_deploy: dict | None = None, artifact_bytes: int = 27_000_000) -> dict[str, dict]:
    return {
        row['key']: row
        for row in report.target_rows(by_hosts=by_hosts, first_deploy=first_deploy, artifact_bytes=artifact_bytes)
    }


def test_targets_of_issue_21_met() -> None:
    rows = targets({'4': summaries(), '16': summaries()}, first_deploy={'hosts': 64, 'tx_per_host': 27_500_000})
    assert rows['wall_4']['values'] == {'4': pytest.approx(2.0)} and rows['wall_4']['met'] is True
    assert rows['wall_16']['limit'] == 3.0 and rows['wall_16']['met'] is True
    # both directions together
    assert rows['bytes']['values'] == {'4': pytest.approx(640 / 530), '16': pytest.approx(640 / 530)}
    assert rows['bytes']['met'] is True
    assert rows['bytes_mitogen']['values']['4'] == pytest.approx(560 / 530)
    assert rows['bytes_mitogen']['met'] is True
    assert rows['switch_wait']['values'] == {'16': 0.8} and rows['switch_wait']['met'] is True
    assert rows['switch_skew']['values'] == {'16': 0.02} and rows['switch_skew']['met'] is True
    assert rows['noop_bytes']['values'] == {'4': 20_000, '16': 20_000} and rows['noop_bytes']['met'] is True
    assert rows['first_deploy_bytes']['values'] == {'64': pytest.approx(27.5 / 27)}
    assert rows['first_deploy_bytes']['met'] is True


def test_targets_of_issue_21_missed_and_not_measured() -> None:
    slow = summaries()
    slow['ours_archive'] = dict(
        slow['ours_archive'], wall=3.5, bytes_per_host=1_300_000, switch={'wait': 5.3, 'skew': 0.1}
    )
    slow['ours_noop'] = dict(slow['ours_noop'], bytes_per_host=50_001)
    rows = targets({'4': slow, '16': slow})
    assert rows['wall_4']['met'] is False
    assert rows['wall_16']['met'] is False
    assert rows['bytes']['met'] is False
    assert rows['switch_wait']['met'] is False
    # the skew must stay under 100 ms: exactly 100 ms misses
    assert rows['switch_skew']['met'] is False
    assert rows['noop_bytes']['met'] is False
    assert rows['first_deploy_bytes']['met'] is None
    only_one = targets({'1': summaries()})
    assert only_one['wall_4']['met'] is None and only_one['switch_wait']['met'] is None
    assert only_one['bytes']['met'] is True


def test_scale_rows_show_the_growth_per_added_host() -> None:
    by_hosts = {
        '1': {'ours_archive': {'wall': 4.0, 'tx_per_host': 1, 'cpu_per_host': 2.0}},
        '4': {'ours_archive': {'wall': 7.0, 'tx_per_host': 1, 'cpu_per_host': 1.0}},
        '16': {
            'ours_archive': {'wall': 19.0, 'tx_per_host': 1, 'cpu_per_host': 1.5},
            'rsync_floor': {'wall': 2.0, 'tx_per_host': 1},
        },
    }
    rows = [(row['hosts'], row['case']) for row in report.scale_rows(by_hosts=by_hosts)]
    assert rows == [(1, 'ours_archive'), (4, 'ours_archive'), (16, 'rsync_floor'), (16, 'ours_archive')]
    ours = [row for row in report.scale_rows(by_hosts=by_hosts) if row['case'] == 'ours_archive']
    assert ours[0]['wall_per_added_host'] is None
    assert ours[1]['wall_per_added_host'] == pytest.approx(1.0)
    assert ours[2]['wall_per_added_host'] == pytest.approx(1.0)
    assert ours[2]['cpu_per_host_growth'] == pytest.approx(1.5)


def test_switch_metrics_from_the_task_with_the_renames() -> None:
    timer = {
        'tasks': [
            {'name': 'stage', 'start': 90.0, 'hosts': {'a': {'end': 95.0}, 'b': {'end': 96.0}}},
            {
                'name': 'switch',
                'start': 100.0,
                'hosts': {
                    'a': {'end': 101.0, 'switch': {'switched_at': 100.60, 'switch_at': 100.6, 'switch_late': 0.0}},
                    'b': {'end': 101.2, 'switch': {'switched_at': 100.65, 'switch_at': 100.6, 'switch_late': 0.05}},
                    'c': {'end': 101.1, 'switch': {'switched_at': 100.61, 'switch_at': 100.6, 'switch_late': 0.01}},
                },
            },
        ]
    }
    found = report.switch_metrics(timer)
    assert found['task'] == 'switch' and found['hosts'] == 3
    assert found['wait'] == pytest.approx(0.6)
    assert found['skew'] == pytest.approx(0.05)
    assert found['agreed'] == pytest.approx(0.6)
    assert found['late'] == 0.05
    assert found['reported_skew'] is None
    timer['tasks'][1]['hosts']['a']['switch']['switch_skew'] = 0.049
    assert report.switch_metrics(timer)['reported_skew'] == 0.049
    assert report.switch_metrics({'tasks': timer['tasks'][:1]}) is None


def test_census_puts_each_transfer_in_its_task_and_keeps_repeats_apart() -> None:
    timer = {'tasks': [{'name': 'plan', 'start': 10.0}, {'name': 'stage', 'start': 11.0}]}
    lines = [
        {
            'kind': 'exec',
            'address': '10.0.0.2',
            'label': 'python program',
            'start': 11.1,
            'end': 11.2,
            'in': 8000,
            'tx': 9000,
            'rx': 2000,
        },
        {
            'kind': 'exec',
            'address': '10.0.0.2',
            'label': 'atomic.deploy.release',
            'start': 11.3,
            'end': 11.6,
            'in': 150_000,
            'tx': 160_000,
            'rx': 4000,
        },
        {
            'kind': 'put_file',
            'address': '10.0.0.2',
            'label': 'put_file bundle',
            'start': 11.7,
            'end': 11.8,
            'in': 600_000,
            'tx': 620_000,
            'rx': 3000,
        },
        {
            'kind': 'exec',
            'address': '10.0.0.2',
            'label': 'atomic.deploy.release',
            'start': 11.9,
            'end': 12.0,
            'in': 150_000,
            'tx': 158_000,
            'rx': 4000,
        },
        {
            'kind': 'exec',
            'address': '10.0.0.3',
            'label': 'atomic.deploy.release',
            'start': 11.35,
            'end': 11.5,
            'in': 150_000,
            'tx': 162_000,
            'rx': 4000,
        },
        {
            'kind': 'exec',
            'address': '10.0.0.9',
            'label': 'not ours',
            'start': 11.4,
            'end': 11.5,
            'in': 1,
            'tx': 1,
            'rx': 1,
        },
        {
            'kind': 'exec',
            'address': '10.0.0.2',
            'label': 'find the home dir',
            'start': 9.0,
            'end': 9.1,
            'in': 0,
            'tx': 400,
            'rx': 300,
        },
    ]
    rows = report.census_rows(lines=lines, timer=timer, addresses={'10.0.0.2': 'h1', '10.0.0.3': 'h2'})
    assert [(row['host'], row['task'], row['label'], row['nth']) for row in rows] == [
        ('h1', '(before the first task)', 'find the home dir', 1),
        ('h1', 'stage', 'python program', 1),
        ('h1', 'stage', 'atomic.deploy.release', 1),
        ('h2', 'stage', 'atomic.deploy.release', 1),
        ('h1', 'stage', 'put_file bundle', 1),
        ('h1', 'stage', 'atomic.deploy.release', 2),
    ]
    merged = report.merge_census([rows, rows])
    release = [row for row in merged if row['label'] == 'atomic.deploy.release']
    # the first run of the module: the median of h1 and h2 over two runs
    assert release[0]['nth'] == 1 and release[0]['tx'] == 161_000 and release[0]['samples'] == 4
    assert release[1]['nth'] == 2 and release[1]['tx'] == 158_000
    assert [row['label'] for row in merged][:2] == ['find the home dir', 'python program']


def test_task_breakdown_uses_the_slowest_host_and_accounts_for_every_second() -> None:
    timer = {
        'started': 100.5,
        'ended': 104.0,
        'tasks': [
            {
                'name': 'stage',
                'start': 100.6,
                'hosts': {'a': {'end': 102.0, 'status': 'ok'}, 'b': {'end': 103.0, 'status': 'ok'}},
            },
            {'name': 'switch', 'start': 103.1, 'hosts': {'a': {'end': 103.5, 'status': 'ok'}}},
            {'name': 'hook', 'start': 103.6, 'hosts': {'a': {'end': 103.7, 'status': 'skipped'}}},
        ],
    }
    rows = report.task_breakdown(timer=timer, process_start=100.0, process_end=104.2)
    by_name = {row['name']: row for row in rows}
    assert by_name['stage']['seconds'] == pytest.approx(2.5)  # until the next task started
    # when the first and the last host finished, from the task's start
    assert by_name['stage']['first_host'] == pytest.approx(1.4)
    assert by_name['stage']['last_host'] == pytest.approx(2.4)
    assert by_name['switch']['seconds'] == pytest.approx(0.5)
    assert by_name['hook']['skipped'] is True
    assert rows[0]['seconds'] == pytest.approx(0.6)
    assert rows[-1]['seconds'] == pytest.approx(0.2)
    assert sum(row['seconds'] for row in rows) == pytest.approx(4.2)


def test_merge_breakdowns_takes_medians_per_step() -> None:
    runs = [[{'name': 'a', 'seconds': s}, {'name': 'b', 'seconds': 1.0}] for s in (1.0, 5.0, 2.0)]
    assert report.merge_breakdowns(runs) == [{'name': 'a', 'seconds': 2.0}, {'name': 'b', 'seconds': 1.0}]


def test_census_seconds_is_the_median_hosts_time_in_ssh_calls_per_task() -> None:
    def row(host: str, task: str, seconds: float) -> dict:
        return {'host': host, 'task': task, 'seconds': seconds}

    first = [row('h1', 'stage', 0.5), row('h1', 'stage', 0.25), row('h2', 'stage', 2.0), row('h1', 'switch', 0.1)]
    second = [row('h1', 'stage', 1.0)]
    # stage: h1 0.75 and h2 2.0 in the first run, h1 1.0 in the second
    assert report.census_seconds([first, second]) == {'stage': 1.0, 'switch': 0.1}


def render_results() -> dict:
    results = {
        'parameters': {'rounds': 3, 'rate_mbit': 100},
        'hosts': {'4': summaries(), '16': summaries()},
        'first_deploy': {'hosts': 16, 'wall': 9.0, 'tx_per_host': 27_500_000},
        'artifact_bytes': 27_000_000,
        'breakdown': {
            '4': {
                'ours_archive': [
                    {
                        'name': 'Stage release v2',
                        'seconds': 3.0,
                        'first_host': 2.5,
                        'last_host': 2.9,
                        'tx_per_host': 1e6,
                    }
                ]
            }
        },
        'census_seconds': {'4': {'ours_archive': {'Stage release v2': 1.2}}},
        'census': {
            '4': {
                'ours_archive': [
                    {'task': 'Stage', 'label': 'atomic.deploy.release', 'nth': 2, 'in': 150e3, 'tx': 160e3, 'rx': 4e3}
                ]
            }
        },
    }
    results['targets'] = report.target_rows(
        by_hosts=results['hosts'], first_deploy=results['first_deploy'], artifact_bytes=27_000_000
    )
    return results


def test_render_tables_shows_absolute_figures_ratios_cpu_and_the_switch() -> None:
    text = report.render_tables(render_results())
    assert '**4 hosts** (medians of 3 rounds)' in text
    assert (
        '| ours, `release_source=archive` | 2.00 s | 2.00x | 600.0 kB | 40.0 kB | 1.21x | 0.50 s | 800 ms, 20 ms |'
        in text
    )


def test_render_targets_says_pass_or_miss_for_each() -> None:
    text = report.render_targets(render_results())
    assert (
        '| no-op re-deploy, bytes per host, both directions | 20.0 kB (4 h), 20.0 kB (16 h) | <= 50.0 kB | pass |'
        in text
    )
    assert '| switch skew at 16 hosts (spread of the renames), ours | 20 ms (16 h) | < 100 ms | pass |' in text
    assert 'First deploy (v1, ours, archive) to 16 hosts: 9.00 s, 27.50 MB to each host' in text
    missed = render_results()
    missed['targets'][0]['met'] = False
    assert '| MISS |' in report.render_targets(missed)


def test_render_markdown_has_every_section() -> None:
    results = full_results()
    text = report.render_markdown(results)
    for heading in (
        '# make bench-net: t',
        '## How it grows with the host count',
        '## Where the time goes, task by task',
        '## The payload of every module run, on the wire',
    ):
        assert heading in text
    assert '| Stage | atomic.deploy.release (#2) | 150.0 kB | 160.0 kB | 4.0 kB |  |' in text
    assert '| Stage release v2 | 3.00 | 2.50 | 2.90 | 1.20 | 1.00 MB |  |' in text


def test_htb_rates_from_tc_class_show() -> None:
    text = (
        'class htb 1:10 root prio 0 rate 100Mbit ceil 100Mbit burst 65512b cburst 65512b \n'
        'class htb 1:20 parent 1: prio 0 rate 1500Kbit ceil 2Mbit burst 1600b cburst 1600b \n'
        'class fq_codel 8001:1 parent 8001: \n'
    )
    assert report.htb_rates(text) == [100_000_000, 1_500_000]
    assert report.htb_rates('') == []


def make_tree(root: Path) -> None:
    (root / 'releases' / 'v2' / 'app' / 'sub').mkdir(parents=True)
    (root / 'releases' / 'v2' / 'app' / 'a.py').write_text('print(1)\n')
    (root / 'releases' / 'v2' / 'app' / 'sub' / 'b.bin').write_bytes(bytes(range(256)))
    # what the generator's digest leaves out: top-level dotfiles and dirs, symlinks
    (root / 'releases' / 'v2' / '.release.json').write_text('{}')
    (root / 'releases' / 'v2' / '.git').mkdir()
    (root / 'releases' / 'v2' / '.git' / 'HEAD').write_text('x')
    (root / 'releases' / 'v2' / 'storage').symlink_to('../../shared/storage')
    (root / 'current').symlink_to('releases/v2')


def remote(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, '-c', net.REMOTE, *args], capture_output=True, text=True, check=False)


def test_remote_check_digest_is_the_generators(tmp_path: Path) -> None:
    make_tree(tmp_path)
    result = remote('check', str(tmp_path))
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    expected, count = bench.tree_digest(tmp_path / 'releases' / 'v2')
    assert found == {'link': 'releases/v2', 'digest': expected, 'files': 2}
    assert count == 2
    (tmp_path / 'releases' / 'v2' / 'app' / 'a.py').write_text('print(2)\n')
    assert json.loads(remote('check', str(tmp_path)).stdout)['digest'] != expected


def test_remote_check_without_current(tmp_path: Path) -> None:
    assert json.loads(remote('check', str(tmp_path)).stdout) == {'link': None, 'digest': None, 'files': 0}


def test_remote_link_makes_a_floor_root_over_the_template_without_copying(tmp_path: Path) -> None:
    template = tmp_path / 'tpl'
    (template / 'releases' / 'v1').mkdir(parents=True)
    (template / 'releases' / 'v1' / 'a.py').write_text('print(1)\n')
    root = tmp_path / 'roots' / 'case'
    root.mkdir(parents=True)
    (root / 'stale').write_text('from the last run')
    result = remote('link', str(template), str(root), 'releases/v2')
    assert result.returncode == 0, result.stderr
    assert not (root / 'stale').exists()
    assert os.readlink(root / 'current') == 'releases/v1'
    assert os.readlink(root / 'releases' / 'v1') == str(template / 'releases' / 'v1')
    assert (root / 'current' / 'a.py').read_text() == 'print(1)\n'
    assert (root / 'releases' / 'v2').is_dir()
    assert remote('remove', str(root)).returncode == 0
    assert not root.exists()
    # the template is not removed through the symlink
    assert (template / 'releases' / 'v1' / 'a.py').is_file()


def test_remote_seed_makes_fresh_roots_with_the_shared_dir_and_file(tmp_path: Path) -> None:
    roots = [tmp_path / 'a', tmp_path / 'b']
    roots[0].mkdir()
    (roots[0] / 'old').write_text('x')
    assert remote('seed', *map(str, roots)).returncode == 0
    for root in roots:
        assert sorted(path.name for path in root.iterdir()) == ['shared']
        assert (root / 'shared' / 'storage').is_dir()
        assert (root / 'shared' / '.env').read_text() == 'APP_ENV=bench\n'


def test_task_breakdown_counts_the_bytes_each_task_sent_to_each_host() -> None:
    timer = {
        'started': 0.0,
        'ended': 3.0,
        'tasks': [
            {
                'name': 'stage',
                'start': 0.1,
                'tx_start': {'a': 1000, 'b': 5000, 'c': 0},
                'hosts': {
                    'a': {'end': 1.0, 'status': 'ok', 'tx': 201_000},
                    'b': {'end': 1.5, 'status': 'ok', 'tx': 305_000},
                    'c': {'end': 1.2, 'status': 'ok', 'tx': 250_000},
                },
            },
            {'name': 'plan', 'start': 1.6, 'hosts': {'a': {'end': 1.7, 'status': 'ok', 'tx': None}}},
        ],
    }
    rows = {row['name']: row for row in report.task_breakdown(timer=timer, process_start=0.0, process_end=3.1)}
    assert rows['stage']['tx_per_host'] == 250_000
    assert 'tx_per_host' not in rows['plan']
    merged = report.merge_breakdowns([list(rows.values()), list(rows.values())])
    assert merged[1] == {
        'name': 'stage',
        'seconds': pytest.approx(1.5),
        'first_host': pytest.approx(0.9),
        'last_host': pytest.approx(1.4),
        'tx_per_host': 250_000,
    }


def test_render_comparison_puts_runs_side_by_side() -> None:
    baseline = {'label': 'baseline', 'finished': '1', 'hosts': {'4': summaries()}}
    faster = dict(summaries(), ours_archive={'wall': 2.0, 'tx_per_host': 800_000})
    delta = {'label': 'delta', 'finished': '2', 'hosts': {'4': faster}}
    text = report.render_comparison([baseline, delta])
    assert '| run | wall, baseline | bytes -> each host, baseline | bytes / rsync, baseline | wall, delta |' in text
    assert '| ours, `release_source=archive` | 2.00 s | 600.0 kB | 1.20x | 2.00 s | 800.0 kB | 1.60x |' in text
    # a case measured in neither run has no row
    assert 'directory' not in text


def test_load_runs_oldest_first(tmp_path: Path) -> None:
    for label, finished in (('delta', '2026-12-01T19:00:00Z'), ('baseline', '2026-12-01T18:00:00Z')):
        (tmp_path / f'net-{label}.json').write_text(json.dumps({'label': label, 'finished': finished, 'hosts': {}}))
    (tmp_path / 'net.json').write_text(json.dumps({'label': 'latest copy', 'finished': '2026-12-01T19:00:00Z'}))
    # a file of another shape (the summary's JSON-free sibling is .md; this one has no hosts) is left out
    (tmp_path / 'net-other.json').write_text(json.dumps({'label': 'other', 'finished': '2026-12-01T17:00:00Z'}))
    assert [run['label'] for run in report.load_runs(tmp_path)] == ['baseline', 'delta']


def load_timer_callback():
    pytest.importorskip('ansible')
    spec = importlib.util.spec_from_file_location('bench_timer', BENCH_DIR / 'callback_plugins' / 'bench_timer.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def full_results() -> dict:
    results = render_results()
    results.update(
        label='t',
        finished='2026-12-04T15:00:00Z',
        commit='abc1234',
        duration_s=60,
        load_before='1',
        load_after='2',
        shaping_check_s={'h1': 1.67},
        artifact={'files': 5000, 'bytes': 52.5e6, 'changed_files': 50, 'changed_bytes': 0.52e6},
    )
    return results


def test_write_results_writes_only_the_results_directory(tmp_path: Path) -> None:
    directory = tmp_path / 'bench' / 'results'
    written = report.write_results(results=full_results(), directory=directory)
    assert sorted(path.name for path in written) == [
        'net-summary.md',
        'net-t.json',
        'net-t.md',
        'net.json',
        'net.md',
    ]
    assert sorted(path.name for path in tmp_path.rglob('*') if path.is_file()) == sorted(p.name for p in written)
    summary = (directory / 'net-summary.md').read_text()
    assert summary.startswith(report.SUMMARY_TITLE)
    assert '| target | measured | limit | met |' in summary and 'issue' not in summary
    assert json.loads((directory / 'net-t.json').read_text())['commit'] == 'abc1234'


@pytest.mark.parametrize(
    ('cmd', 'label'),
    [
        ('/bin/sh -c \'( umask 77 && mkdir -p "` echo /srv/tmp `" )\'', 'make the remote temp dir'),
        ("/bin/sh -c 'rm -f -r /srv/tmp/ansible-tmp-1/ > /dev/null 2>&1 && sleep 0'", 'remove the remote temp dir'),
        ("/bin/sh -c 'chmod u+rx /srv/tmp/x && sleep 0'", 'chmod'),
        ("/bin/sh -c '/usr/bin/python3 && sleep 0'", 'python program'),
        (b"/bin/sh -c 'echo ~deploy && sleep 0'", 'find the home dir'),
    ],
)
def test_timer_callback_names_the_commands(cmd: str | bytes, label: str) -> None:
    assert load_timer_callback().command_label(cmd) == label


def test_timer_callback_records_every_ssh_transfer_with_its_module_and_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    callback = load_timer_callback()
    from ansible.plugins.action import ActionBase
    from ansible.plugins.loader import connection_loader

    ssh = connection_loader.get('ssh', class_only=True)
    calls = []

    def exec_command(self, cmd, in_data=None, sudoable=True):
        calls.append(cmd)
        return 0, b'', b''

    def execute_module(self, module_name=None, module_args=None, **kwargs):
        return ssh.exec_command(self._connection, '/bin/sh -c "/usr/bin/python3"', in_data=b'x' * 1000)

    # the test's own stand-ins, put back by monkeypatch with the real methods afterwards
    monkeypatch.setattr(ssh, 'exec_command', exec_command)
    monkeypatch.setattr(ssh, 'put_file', lambda self, in_path, out_path: None)
    monkeypatch.setattr(ssh, 'fetch_file', ssh.fetch_file)
    monkeypatch.setattr(ActionBase, '_execute_module', execute_module)
    wire = tmp_path / 'wire.jsonl'
    callback.install_wire_census(path=str(wire), ifaces={'10.0.0.2': 'lo'})

    class Connection:
        _play_context = None

        def get_option(self, name):
            return '10.0.0.2'

    class Action:
        _connection = Connection()

    connection = Action._connection
    bundle = tmp_path / '0123456789abcdef0123456789abcdef.bundle.tar.gz'
    bundle.write_bytes(b'b' * 300)
    ActionBase._execute_module(Action(), module_name='atomic.deploy.release')
    ssh.exec_command(connection, "/bin/sh -c 'rm -f -r /tmp/x'")
    ssh.put_file(connection, str(bundle), '/tmp/bundle')
    lines = [json.loads(line) for line in wire.read_text().splitlines()]
    assert [(line['kind'], line['label'], line['module'], line['in']) for line in lines] == [
        ('exec', 'atomic.deploy.release', 'atomic.deploy.release', 1000),
        ('exec', 'remove the remote temp dir', None, 0),
        ('put_file', 'put_file *.bundle.tar.gz', None, 300),
    ]
    assert all(line['address'] == '10.0.0.2' and line['tx'] >= 0 and line['rx'] >= 0 for line in lines)
    assert len(calls) == 2
