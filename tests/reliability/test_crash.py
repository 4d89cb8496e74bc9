# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Crash at any step: the real deploy playbook is killed (SIGKILL of its process group, and SIGINT as a ^C
would send it) at every task boundary of the deploy flow, and at random instants inside the long step
(extracting an 8,000-file archive). A callback (callback_plugins/reliability_marker.py) holds the playbook at
the start of task N, so a boundary kill lands exactly between task N-1 and task N.

After every kill:
- ``current`` resolves to a complete release (the old one or the new one, never a partial one): its
  .release.json says complete and its files match the archive it came from, file by file;
- shared/ is untouched (full snapshot: names, modes, content hashes, mtimes);
- history.jsonl parses (a torn last line is allowed, nothing else);
and the next deploy succeeds without manual cleanup: a stale lock is taken over once expired
(release_lock_timeout 2 s) or with release_lock_steal, and reported; an abandoned unfinished release is marked
failed, and pruned once older than current; no temp, trash or temp-link leftovers survive it.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import time
from pathlib import Path

import pytest
from _harness import (
    DEPLOY_PLAYBOOK,
    Ansible,
    Archive,
    Run,
    build_archive,
    current_id,
    kill_run,
    leftovers,
    lock_record,
    metadata,
    read_history,
    release_manifest,
    snapshot,
    snapshot_diff,
)

SHARED_DIRS = ['storage']
SHARED_FILES = ['.env']
SEED = int(os.environ.get('RELIABILITY_SEED', '20261122'))
RANDOM_KILLS = int(os.environ.get('RELIABILITY_RANDOM_KILLS', '6'))
BIG_FILES = 8_000
SIGNALS = {signal.SIGKILL: 'SIGKILL', signal.SIGINT: 'SIGINT'}


@dataclasses.dataclass
class Stats:
    kill_points: int = 0
    boundary_kills: int = 0
    random_kills: int = 0
    recoveries: int = 0
    lock_left: int = 0
    expired_takeovers: int = 0
    steals: int = 0
    abandoned_marked: int = 0
    switched_before_kill: int = 0
    outcomes: dict = dataclasses.field(default_factory=dict)  # what the kill left: release state -> count


class Crash:
    """One deploy root under repeated kills, with the bookkeeping to verify it after each."""

    def __init__(self, *, ansible: Ansible, base: Path) -> None:
        self.ansible = ansible
        self.base = base
        self.root = base / 'root'
        self.files = base / 'files'
        self.files.mkdir()
        self.archives: dict[str, Archive] = {}
        self.stats = Stats()
        self.seq = 0
        self.abandoned: set[str] = set()
        self._big: Archive | None = None
        self.stage_task = 0
        (self.root / 'shared' / 'storage').mkdir(parents=True)
        (self.root / 'shared' / 'storage' / 'upload.bin').write_bytes(os.urandom(64 * 1024))
        (self.root / 'shared' / '.env').write_text('APP_KEY=crash-suite-secret\n', encoding='utf-8')

    def archive(self, release_id: str, *, big: bool = False) -> Archive:
        if big:
            # One big archive serves every big release: its content need not name the release.
            if self._big is None:
                self._big = build_archive(
                    dest=self.files / 'big.tar.gz', version='big', filler_files=BIG_FILES, filler_size=200
                )
            self.archives[release_id] = self._big
        else:
            self.archives[release_id] = build_archive(dest=self.files / f'{release_id}.tar.gz', version=release_id)
        return self.archives[release_id]

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f'{prefix}{self.seq:03d}'

    def variables(self, release_id: str, *, lock_timeout: int = 3600, steal: bool = False, big: bool = False) -> dict:
        return {
            'release_root': str(self.root),
            'release_id': release_id,
            'release_source': 'archive',
            'release_archive': str(self.archive(release_id, big=big).path),
            'release_shared_dirs': SHARED_DIRS,
            'release_shared_files': SHARED_FILES,
            'release_keep': 2,
            'release_lock_timeout': lock_timeout,
            'release_lock_steal': steal,
        }

    def deploy(self, release_id: str, **kwargs) -> Run:
        return self.ansible.playbook(playbook=DEPLOY_PLAYBOOK, extra_vars=self.variables(release_id, **kwargs))

    # --- checks -------------------------------------------------------------------------------------

    def check_current(self, where: str) -> str:
        live = current_id(self.root)
        assert live is not None, f'{where}: current does not point at a release ({os.readlink(self.root / "current")})'
        meta = metadata(self.root, live)
        assert meta is not None and meta.get('state') == 'complete', f'{where}: current -> {live}, which is {meta}'
        expected = self.archives[live].manifest
        actual = release_manifest(self.root / 'releases' / live)
        assert actual == expected, f'{where}: current -> {live}, whose files differ from its archive ' + str(
            sorted(set(actual.items()) ^ set(expected.items()))[:5]
        )
        return live

    def check_history(self, where: str) -> list[dict]:
        entries, _torn = read_history(self.root)  # raises on any damage but a torn last line
        assert entries, f'{where}: history is empty'
        return entries

    # --- one kill and its recovery ---------------------------------------------------------------

    def kill_and_recover(
        self,
        *,
        sig: int,
        task: int | None,
        delay: float,
        lock_mode: str,
        big: bool = False,
        label: str,
        trigger: str | None = None,
    ) -> str:
        """Kill one deploy, check the root, recover with the next deploy, check again. Returns what happened."""
        killed = self.next_id('k')
        shared_before = snapshot(self.root / 'shared')
        live_before = current_id(self.root)
        timeout = 2 if lock_mode == 'expire' else 3600
        running = self.ansible.start(
            playbook=DEPLOY_PLAYBOOK,
            extra_vars=self.variables(killed, lock_timeout=timeout, big=big),
            pause_at=None if trigger else task,
        )
        run = kill_run(
            running,
            sig=sig,
            task=task,
            delay=delay,
            when_exists=self.root / 'releases' / killed / trigger if trigger else None,
        )
        where = f'{label} ({SIGNALS[sig]} at {run.killed_at_task or "the end"})'
        if run.killed_by is None:
            return f'{where}: the run ended before the kill point'
        self.stats.kill_points += 1
        # -- state right after the kill
        live = self.check_current(where)
        assert live in (live_before, killed), f'{where}: current -> {live}, neither {live_before} nor {killed}'
        if live == killed:
            self.stats.switched_before_kill += 1
        assert snapshot(self.root / 'shared') == shared_before, f'{where}: shared/ changed:\n' + '\n'.join(
            snapshot_diff(shared_before, snapshot(self.root / 'shared'))
        )
        self.check_history(where)
        meta = metadata(self.root, killed)
        left = 'absent' if meta is None else meta.get('state')
        if (self.root / 'releases' / killed).is_dir() and meta is None:
            left = 'no-metadata'
        assert left != 'no-metadata', f'{where}: releases/{killed} exists without its marker'
        self.stats.outcomes[left] = self.stats.outcomes.get(left, 0) + 1
        lock = lock_record(self.root)
        # -- recovery
        recovery = self.next_id('r')
        steal = False
        if lock is not None:
            self.stats.lock_left += 1
            if lock_mode == 'expire':
                wait = lock['expires_at'] - time.time() + 0.1
                if wait > 0:
                    time.sleep(wait)
            else:
                steal = True
        history_len = len(self.check_history(where))
        result = self.deploy(recovery, steal=steal)
        self.stats.recoveries += 1
        assert result.rc == 0, f'{where}: the next deploy {recovery} failed:\n{result.describe()}'
        if lock is not None:
            said = 'took over the expired deploy lock' if lock_mode == 'expire' else 'stole the deploy lock'
            assert said in result.text, f'{where}: the recovery did not report the stale lock ({said}):\n{result.text}'
            if lock_mode == 'expire':
                self.stats.expired_takeovers += 1
            else:
                self.stats.steals += 1
        self.check_current(f'{where}, after recovery {recovery}')
        assert current_id(self.root) == recovery
        assert lock_record(self.root) is None, f'{where}: the recovery left the lock'
        assert leftovers(self.root) == [], f'{where}: leftovers after recovery: {leftovers(self.root)}'
        assert snapshot(self.root / 'shared') == shared_before, f'{where}: shared/ changed during recovery'
        entries = self.check_history(f'{where}, after recovery')
        new = entries[history_len:]
        if left == 'in_progress' and lock is not None and lock.get('release_id') == killed:
            marked = [e for e in new if e.get('event') == 'failed' and e.get('id') == killed]
            assert marked and 'abandoned' in str(marked[0].get('reason')), (
                f'{where}: abandoned release {killed} was not marked failed by the takeover: {new}'
            )
            self.stats.abandoned_marked += 1
        after = metadata(self.root, killed)
        if left in ('in_progress', 'failed'):
            self.abandoned.add(killed)
            # Older than the new current release, so the recovery's prune removes it.
            assert after is None, f'{where}: abandoned release {killed} was not pruned: {after}'
        assert after is None or after.get('state') == 'complete', f'{where}: {killed} is {after}'
        return f'{where}: left {left}, lock {"yes" if lock else "no"}'


@pytest.fixture(scope='module')
def crash(ansible: Ansible, tmp_path_factory: pytest.TempPathFactory, deploy_playbook: Path) -> Crash:
    state = Crash(ansible=ansible, base=tmp_path_factory.mktemp('crash'))
    first = state.deploy('b000')
    assert first.rc == 0, first.describe()
    staging = [t['n'] for t in first.tasks if t['action'].endswith('.release') and ' Stage ' in f' {t["name"]} ']
    assert len(staging) == 1, f'cannot tell the staging task among {[t["name"] for t in first.tasks]}'
    state.stage_task = staging[0]
    return state


def test_kill_at_every_task_boundary(crash: Crash, figures) -> None:
    probe = crash.deploy(crash.next_id('p'))
    assert probe.rc == 0, probe.describe()
    tasks = probe.tasks
    assert len(tasks) >= 5, f'the deploy flow has only {len(tasks)} tasks? {tasks}'
    started = time.monotonic()
    lines = []
    for index, task in enumerate(tasks, start=1):
        for turn, sig in enumerate((signal.SIGKILL, signal.SIGINT)):
            mode = 'expire' if (index + turn) % 2 else 'steal'
            lines.append(
                crash.kill_and_recover(
                    sig=sig,
                    task=index,
                    delay=0.0,
                    lock_mode=mode,
                    label=f'boundary before task {index} {task["name"]!r}',
                )
            )
            crash.stats.boundary_kills += 1
    for line in lines:
        print(f'  {line}')
    figures(
        tasks_in_flow=len(tasks),
        boundary_kills=crash.stats.boundary_kills,
        recoveries=crash.stats.recoveries,
        locks_left=crash.stats.lock_left,
        expired_takeovers=crash.stats.expired_takeovers,
        steals=crash.stats.steals,
        abandoned_marked=crash.stats.abandoned_marked,
        switched_before_kill=crash.stats.switched_before_kill,
        outcomes=crash.stats.outcomes,
        seconds=round(time.monotonic() - started, 1),
    )


def test_kill_at_random_points_inside_extraction(crash: Crash, figures) -> None:
    """Random points by progress: the archive's files go to public/assets/000 ... 039 in order, so the kill
    waits for a randomly chosen one of those directories to appear (plus up to 50 ms), which lands inside the
    extraction whatever the disk speed."""
    rng = random.Random(SEED)
    stage = crash.stage_task
    started = time.monotonic()
    lines = []
    for _kill in range(RANDOM_KILLS):
        index = rng.randrange(BIG_FILES)
        trigger = f'public/assets/{index // 500:03d}'
        delay = rng.uniform(0.0, 0.05)
        sig = rng.choice([signal.SIGKILL, signal.SIGINT])
        mode = rng.choice(['expire', 'steal'])
        label = f'{trigger} (file {index // 500 * 500} of {BIG_FILES}) +{delay:.3f}s'
        lines.append(
            crash.kill_and_recover(
                sig=sig, task=stage, delay=delay, lock_mode=mode, big=True, trigger=trigger, label=label
            )
        )
        crash.stats.random_kills += 1
    for line in lines:
        print(f'  {line}')
    inside = sum(1 for line in lines if 'left in_progress' in line or 'left failed' in line)
    figures(
        seed=SEED,
        big_archive_files=BIG_FILES,
        random_kills=crash.stats.random_kills,
        landed_inside=inside,
        outcomes=crash.stats.outcomes,
        seconds=round(time.monotonic() - started, 1),
    )
    assert inside == RANDOM_KILLS, 'some kills did not land inside the extraction:\n' + '\n'.join(lines)


def test_abandoned_releases_are_gone(crash: Crash, figures) -> None:
    """A last deploy after all the kills: nothing abandoned, unfinished or left over remains."""
    final = crash.deploy(crash.next_id('f'))
    assert final.rc == 0, final.describe()
    crash.check_current('final deploy')
    states = {rid: (metadata(crash.root, rid) or {}).get('state') for rid in os.listdir(crash.root / 'releases')}
    assert not [rid for rid in crash.abandoned if rid in states], f'abandoned releases still present: {states}'
    assert all(state == 'complete' for state in states.values()), states
    assert len(states) <= 2, f'release_keep=2 but {len(states)} releases remain: {states}'
    assert leftovers(crash.root) == []
    entries = crash.check_history('final')
    figures(
        kill_points=crash.stats.kill_points,
        abandoned=len(crash.abandoned),
        releases_left=len(states),
        history_lines=len(entries),
    )
