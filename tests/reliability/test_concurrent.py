# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Concurrent deploys: two real deploy playbooks against the same root, released at the same instant.

Both runs are held by the marker callback at the start of their first task (so ansible's start-up time,
which varies by a second or more, does not decide the race), then let go together by one file. Required:
exactly one proceeds; the other fails fast (well before the winner finishes) with the lock holder in its
message (user@controller, playbook, the winner's release id); afterwards the layout is consistent and
nothing is lost (earlier releases and shared data byte for byte, history complete, no lock, no leftovers).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _harness import (
    DEPLOY_PLAYBOOK,
    Ansible,
    build_archive,
    current_id,
    leftovers,
    lock_record,
    metadata,
    read_history,
    release_manifest,
    snapshot,
    wait_all,
)

ROUNDS = int(os.environ.get('RELIABILITY_CONCURRENT_ROUNDS', '4'))


def variables(root: Path, archive: Path, release_id: str) -> dict:
    return {
        'release_root': str(root),
        'release_id': release_id,
        'release_source': 'archive',
        'release_archive': str(archive),
        'release_shared_dirs': ['storage'],
        'release_shared_files': ['.env'],
        'release_keep': 3,
    }


@pytest.fixture(scope='module')
def setup(ansible: Ansible, tmp_path_factory: pytest.TempPathFactory, deploy_playbook: Path) -> dict:
    base = tmp_path_factory.mktemp('concurrent')
    root = base / 'root'
    (root / 'shared' / 'storage').mkdir(parents=True)
    (root / 'shared' / 'storage' / 'keep.bin').write_bytes(os.urandom(32 * 1024))
    (root / 'shared' / '.env').write_text('APP_KEY=concurrent-secret\n', encoding='utf-8')
    archives = {}
    for release_id in ['c000'] + [f'a{i}' for i in range(ROUNDS)] + [f'b{i}' for i in range(ROUNDS)]:
        # The a/b archives are big enough that the winner is still working when the loser asks for the lock.
        archives[release_id] = build_archive(
            dest=base / f'{release_id}.tar.gz', version=release_id, filler_files=0 if release_id == 'c000' else 3000
        )
    first = ansible.deploy(**variables(root, archives['c000'].path, 'c000'))
    assert first.rc == 0, first.describe()
    return {'base': base, 'root': root, 'archives': archives}


def test_two_deploys_at_the_same_instant(setup: dict, ansible: Ansible, figures) -> None:
    root: Path = setup['root']
    archives = setup['archives']
    winners: list[str] = []
    loser_seconds: list[float] = []
    winner_seconds: list[float] = []
    for round_no in range(ROUNDS):
        go = setup['base'] / f'go-{round_no}'
        ids = (f'a{round_no}', f'b{round_no}')
        complete_before = {
            rid: release_manifest(root / 'releases' / rid)
            for rid in os.listdir(root / 'releases')
            if (metadata(root, rid) or {}).get('state') == 'complete'
        }
        shared_before = snapshot(root / 'shared')
        history_before, _torn = read_history(root)
        runs = [
            ansible.start(
                playbook=DEPLOY_PLAYBOOK, extra_vars=variables(root, archives[rid].path, rid), pause_at=1, go=go
            )
            for rid in ids
        ]
        for running in runs:
            assert running.wait_for_task(1, timeout=120) is not None, 'a deploy ended before its first task'
        released = time.monotonic()
        go.touch()
        results = wait_all(runs, timeout=180)
        ok = [i for i, run in enumerate(results) if run.rc == 0]
        assert len(ok) == 1, f'round {round_no}: {len(ok)} deploys succeeded:\n' + '\n\n'.join(
            r.describe() for r in results
        )
        win, lose = ok[0], 1 - ok[0]
        winner, loser = ids[win], ids[lose]
        winners.append(winner)
        message = '\n'.join(results[lose].failure_messages)
        assert f'deploy lock {root}/.deploy/lock is held by' in message, message
        assert f'release {winner}' in message and 'playbook deploy.yml' in message and '@' in message, (
            f"round {round_no}: the loser's message does not name the holder ({winner}):\n{message}"
        )
        # fail fast: the loser ends while the winner is still deploying
        lose_time = runs[lose].ended - released
        win_time = runs[win].ended - released
        loser_seconds.append(lose_time)
        winner_seconds.append(win_time)
        assert lose_time < win_time, f'round {round_no}: the loser took {lose_time:.1f}s, the winner {win_time:.1f}s'
        # consistent layout, nothing lost
        assert current_id(root) == winner
        assert metadata(root, winner)['state'] == 'complete'
        assert release_manifest(root / 'releases' / winner) == archives[winner].manifest
        assert not (root / 'releases' / loser).exists(), f'round {round_no}: the loser created releases/{loser}'
        for rid, manifest in complete_before.items():
            if (root / 'releases' / rid).exists():
                assert release_manifest(root / 'releases' / rid) == manifest, f'release {rid} changed'
        kept = [rid for rid in complete_before if (root / 'releases' / rid).exists()]
        assert len(kept) >= min(len(complete_before), 2), f'round {round_no}: releases lost: {complete_before} {kept}'
        assert snapshot(root / 'shared') == shared_before, f'round {round_no}: shared/ changed'
        assert lock_record(root) is None, f'round {round_no}: lock left: {lock_record(root)}'
        assert leftovers(root) == []
        entries, torn = read_history(root)
        assert not torn and entries[: len(history_before)] == history_before
        events = [(e['event'], e['id']) for e in entries[len(history_before) :]]
        assert events == [('deploy', winner)], f'round {round_no}: history got {events}'
    figures(
        rounds=ROUNDS,
        one_winner_each_round=True,
        winners=','.join(winners),
        loser_max_s=round(max(loser_seconds), 2),
        winner_min_s=round(min(winner_seconds), 2),
    )
