"""Pure logic of the network bench (bench/net.py): counters, medians, the shaping check, the ratio
and target tables, the task breakdown, and the script that checks a host's tree (run here on a
temporary tree). The bench itself needs root and SSH hosts: `make bench-net`.
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


def test_counters_parse_and_subtract() -> None:
    assert net.parse_counter('123456\n') == 123456
    assert net.counter_delta(before={'a': 10, 'b': 5}, after={'a': 25, 'b': 5}) == {'a': 15, 'b': 0}


@pytest.mark.parametrize('text', ['', 'n/a\n', '-1', '12 34'])
def test_bad_counter_is_refused(text: str) -> None:
    with pytest.raises(net.NetBenchError, match='not an interface counter'):
        net.parse_counter(text)


def test_counter_that_went_down_is_refused() -> None:
    with pytest.raises(net.NetBenchError, match='went down'):
        net.counter_delta(before={'veth1': 100}, after={'veth1': 3})


def test_median() -> None:
    assert net.median([3.0, 1.0, 2.0]) == 2.0
    assert net.median([4, 1, 2, 3]) == 2.5
    with pytest.raises(net.NetBenchError):
        net.median([])


def test_twenty_megabytes_at_100_mbit_take_about_1_7_s() -> None:
    assert net.expected_transfer_seconds(payload=20_000_000, rate_bits=100_000_000) == pytest.approx(1.67, abs=0.01)


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
    verdict, expected, message = net.shaping_verdict(seconds=seconds, payload=20_000_000, rate_bits=100_000_000)
    assert verdict is ok
    assert expected == pytest.approx(1.67, abs=0.01)
    assert f'took {seconds:.2f} s' in message
    assert why in message


def run(wall: float, tx: dict[str, int], changed: int = 2) -> dict:
    return {'wall': wall, 'tx': tx, 'rx': dict.fromkeys(tx, 1000), 'changed': changed}


def test_case_summary_takes_medians_over_runs_and_hosts() -> None:
    runs = [
        run(2.0, {'h1': 100, 'h2': 300, 'h3': 200}),
        run(9.0, {'h1': 400, 'h2': 400, 'h3': 400}),
        run(3.0, {'h1': 100, 'h2': 100, 'h3': 900}),
    ]
    summary = net.case_summary(runs)
    assert summary['wall'] == 3.0
    assert summary['wall_min'] == 2.0 and summary['wall_max'] == 9.0
    # per run the median host (200, 400, 100), then the median run
    assert summary['tx_per_host'] == 200
    assert summary['tx_per_host_max'] == 900
    assert summary['changed'] == [2]


def summaries() -> dict[str, dict]:
    return {
        'rsync_floor': {'wall': 1.0, 'tx_per_host': 500_000},
        'ansible_floor': {'wall': 10.0, 'tx_per_host': 27_000_000},
        'ours_archive': {'wall': 4.0, 'tx_per_host': 900_000},
        'ours_noop': {'wall': 3.0, 'tx_per_host': 40_000},
    }


def test_ratio_rows_are_relative_to_the_rsync_floor() -> None:
    rows = {row['case']: row for row in net.ratio_rows(summaries=summaries())}
    assert list(rows) == ['rsync_floor', 'ansible_floor', 'ours_archive', 'ours_noop']
    assert rows['rsync_floor']['wall_vs_floor'] == 1.0
    assert rows['ours_archive']['tx_vs_floor'] == pytest.approx(1.8)
    assert rows['ours_archive']['wall_vs_floor'] == pytest.approx(4.0)
    assert rows['ours_archive']['wall_vs_ansible_floor'] == pytest.approx(0.4)


def test_ratio_rows_without_a_floor_have_no_ratios() -> None:
    rows = net.ratio_rows(summaries={'ours_archive': {'wall': 4.0, 'tx_per_host': 1}})
    assert rows[0]['wall_vs_floor'] is None and rows[0]['tx_vs_floor'] is None


def test_targets_met_missed_and_not_measured() -> None:
    missed = dict(summaries(), ours_archive={'wall': 6.0, 'tx_per_host': 27_000_000})
    rows = {
        row['key']: row
        for row in net.target_rows(
            by_hosts={'1': summaries(), '4': missed},
            first_deploy={'hosts': 8, 'tx_per_host': 27_500_000},
            artifact_bytes=27_000_000,
        )
    }
    assert rows['ours_archive_bytes']['values'] == {'1': pytest.approx(1.8), '4': pytest.approx(54.0)}
    assert rows['ours_archive_bytes']['met'] is False
    assert rows['ours_archive_wall']['values'] == {'4': pytest.approx(0.6)}
    assert rows['ours_archive_wall']['met'] is False
    assert rows['ours_directory_bytes']['met'] is None
    assert rows['noop_bytes']['met'] is True
    assert rows['first_deploy_bytes']['values'] == {8: pytest.approx(27.5 / 27)}
    assert rows['first_deploy_bytes']['met'] is True


def test_targets_met_at_every_host_count() -> None:
    rows = {
        row['key']: row
        for row in net.target_rows(by_hosts={'1': summaries(), '4': summaries()}, first_deploy=None, artifact_bytes=1)
    }
    assert rows['ours_archive_bytes']['met'] is True
    assert rows['ours_archive_wall']['met'] is True
    assert rows['first_deploy_bytes']['met'] is None


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
    rows = net.task_breakdown(timer=timer, process_start=100.0, process_end=104.2)
    by_name = {row['name']: row for row in rows}
    assert by_name['stage']['seconds'] == pytest.approx(2.5)  # until the next task started
    assert by_name['switch']['seconds'] == pytest.approx(0.5)
    assert by_name['hook']['skipped'] is True
    assert rows[0]['seconds'] == pytest.approx(0.6)
    assert rows[-1]['seconds'] == pytest.approx(0.2)
    assert sum(row['seconds'] for row in rows) == pytest.approx(4.2)


def test_merge_breakdowns_takes_medians_per_step() -> None:
    runs = [[{'name': 'a', 'seconds': s}, {'name': 'b', 'seconds': 1.0}] for s in (1.0, 5.0, 2.0)]
    assert net.merge_breakdowns(runs) == [{'name': 'a', 'seconds': 2.0}, {'name': 'b', 'seconds': 1.0}]


def test_replace_between_markers() -> None:
    text = f'head\n{net.README_START}\nold\n{net.README_END}\ntail\n'
    assert net.replace_between(text=text, start=net.README_START, end=net.README_END, body='new') == (
        f'head\n{net.README_START}\nnew\n{net.README_END}\ntail\n'
    )
    with pytest.raises(net.NetBenchError, match='markers'):
        net.replace_between(text='no markers', start=net.README_START, end=net.README_END, body='x')


def test_render_tables_shows_absolute_figures_ratios_and_targets() -> None:
    results = {
        'parameters': {'rounds': 3, 'rate_mbit': 100},
        'hosts': {'4': summaries()},
        'first_deploy': {'hosts': 8, 'wall': 9.0, 'tx_per_host': 27_500_000},
        'artifact_bytes': 27_000_000,
    }
    results['targets'] = net.target_rows(
        by_hosts=results['hosts'], first_deploy=results['first_deploy'], artifact_bytes=27_000_000
    )
    text = net.render_tables(results)
    assert '**4 hosts** (medians of 3 rounds)' in text
    assert '| ours, `release_source=archive` | 4.00 s | 4.00x | 0.40x | 900.0 kB | 1.80x |' in text
    assert '| no-op re-deploy, bytes per host | 40.0 kB (4 h) | <= 50.0 kB | yes |' in text
    assert 'not measured' in text


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


def test_remote_reset_copies_the_template_with_hard_links_and_remove_deletes(tmp_path: Path) -> None:
    template = tmp_path / 'tpl'
    make_tree(template)
    os.link(template / 'releases' / 'v2' / 'app' / 'a.py', template / 'releases' / 'v2' / 'app' / 'a2.py')
    root = tmp_path / 'roots' / 'case'
    root.mkdir(parents=True)
    (root / 'stale').write_text('from the last run')
    result = remote('reset', str(template), str(root), 'releases/v3')
    assert result.returncode == 0, result.stderr
    assert not (root / 'stale').exists()
    assert os.readlink(root / 'current') == 'releases/v2'
    assert (root / 'releases' / 'v3').is_dir()
    assert (root / 'releases' / 'v2' / 'app' / 'a.py').stat().st_ino == (
        root / 'releases' / 'v2' / 'app' / 'a2.py'
    ).stat().st_ino
    assert remote('remove', str(root)).returncode == 0
    assert not root.exists()


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
    rows = {row['name']: row for row in net.task_breakdown(timer=timer, process_start=0.0, process_end=3.1)}
    assert rows['stage']['tx_per_host'] == 250_000
    assert 'tx_per_host' not in rows['plan']
    merged = net.merge_breakdowns([list(rows.values()), list(rows.values())])
    assert merged[1] == {'name': 'stage', 'seconds': pytest.approx(1.5), 'tx_per_host': 250_000}


def test_render_comparison_puts_runs_side_by_side() -> None:
    baseline = {'label': 'baseline', 'finished': '1', 'hosts': {'4': summaries()}}
    faster = dict(summaries(), ours_archive={'wall': 2.0, 'tx_per_host': 800_000})
    delta = {'label': 'delta', 'finished': '2', 'hosts': {'4': faster}}
    text = net.render_comparison([baseline, delta])
    assert '| run | wall, baseline | bytes -> each host, baseline | bytes / rsync, baseline | wall, delta |' in text
    assert '| ours, `release_source=archive` | 4.00 s | 900.0 kB | 1.80x | 2.00 s | 800.0 kB | 1.60x |' in text
    # a case measured in neither run has no row
    assert 'directory' not in text


def test_load_runs_oldest_first(tmp_path: Path) -> None:
    (tmp_path / 'net-delta.json').write_text(json.dumps({'label': 'delta', 'finished': '2026-12-01T19:00:00Z'}))
    (tmp_path / 'net-baseline.json').write_text(json.dumps({'label': 'baseline', 'finished': '2026-12-01T18:00:00Z'}))
    (tmp_path / 'net.json').write_text(json.dumps({'label': 'latest copy', 'finished': '2026-12-01T19:00:00Z'}))
    assert [run['label'] for run in net.load_runs(tmp_path)] == ['baseline', 'delta']


def test_update_readmes_writes_the_summary_and_never_the_top_readme(tmp_path: Path, monkeypatch) -> None:
    """The bench writes bench/README.md and its own summary file, which README.md links to."""
    bench_dir = tmp_path / 'bench'
    (bench_dir / 'results').mkdir(parents=True)
    (bench_dir / 'README.md').write_text(f'head\n{net.README_START}\nOLD-BODY\n{net.README_END}\n')
    top = tmp_path / 'README.md'
    top.write_text(f'top\n{net.README_START}\nOLD-BODY\n{net.README_END}\n')
    monkeypatch.setattr(net, 'BENCH_DIR', bench_dir)
    monkeypatch.setattr(net, 'REPO_ROOT', tmp_path)
    monkeypatch.setattr(net, 'SUMMARY', bench_dir / 'results' / 'net-summary.md')
    net.update_readmes(runs=net.load_runs(BENCH_DIR / 'results'))
    assert top.read_text() == f'top\n{net.README_START}\nOLD-BODY\n{net.README_END}\n'
    assert 'OLD-BODY' not in (bench_dir / 'README.md').read_text()
    summary = (bench_dir / 'results' / 'net-summary.md').read_text()
    assert summary.startswith(net.SUMMARY_TITLE)
    assert '| target | measured | limit | met |' in summary and 'issue' not in summary
