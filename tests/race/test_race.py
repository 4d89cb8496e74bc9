# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Readers never see a missing ``current`` while it is switched with _fs.swap_symlink.

A reader process opens ``current/version`` in a tight loop while this process flips ``current``
between two releases at full speed. With the temp link + rename(2) swap the reader must record
zero ENOENT in 100,000 swaps. The same harness with an unlink + symlink swap (what ``ln -sfn``
does in busybox, BSD and older coreutils) must record errors, which proves the harness can fail.

Run with pytest (``pytest tests/race``) or as a script (``python tests/race/test_race.py``),
which prints both counts.
"""

from __future__ import annotations

import atexit
import errno
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SWAPS = 100_000
CONTROL_SWAPS = 5_000
BUSYBOX_SWAPS = 500
# The reader must have run this many batches of 64 opens while the swaps went on, or the harness keeps
# swapping (in pairs, up to MAX_EXTRA_SECONDS): a reader the scheduler left waiting proves nothing.
MIN_READER_BATCHES = 8
MAX_EXTRA_SECONDS = 20.0


def _import_fs():
    """The collection's _fs module, from the collection tree pytest set up or a throwaway one."""
    try:
        from ansible_collections.atomic.deploy.plugins.module_utils import _fs
    except ImportError:
        repo = Path(__file__).resolve().parents[2]
        tree = Path(tempfile.mkdtemp(prefix='atomic-deploy-race-'))
        (tree / 'ansible_collections' / 'atomic').mkdir(parents=True)
        (tree / 'ansible_collections' / 'atomic' / 'deploy').symlink_to(repo)
        atexit.register(shutil.rmtree, tree, True)
        sys.path.insert(0, str(tree))
        from ansible_collections.atomic.deploy.plugins.module_utils import _fs
    return _fs


_fs = _import_fs()


def _reader(path: str, ready, stop, results, progress) -> None:
    """Open ``path`` until told to stop; report (reads, enoent, other errors, wrong content).

    ``progress`` counts the batches done, so the harness can tell the reader really ran.
    """
    reads = enoent = other = wrong = 0
    ready.set()
    while True:
        for _batch in range(64):
            try:
                with open(path, 'rb') as handle:
                    data = handle.read()
            except FileNotFoundError:
                enoent += 1
                continue
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    enoent += 1
                else:
                    other += 1
                continue
            reads += 1
            if data not in (b'a\n', b'b\n'):
                wrong += 1
        progress.value += 1
        if stop.is_set():
            break
    results.put({'reads': reads, 'enoent': enoent, 'other': other, 'wrong': wrong})


def make_site(base: str) -> str:
    for name in ('a', 'b'):
        os.makedirs(os.path.join(base, 'releases', name))
        with open(os.path.join(base, 'releases', name, 'version'), 'w') as handle:
            handle.write(f'{name}\n')
    os.symlink('releases/a', os.path.join(base, 'current'))
    return os.path.join(base, 'current')


def run_harness(*, swap: Callable[[str, str], None], swaps: int, base: str) -> dict:
    """Flip ``current`` ``swaps`` times with ``swap(link, target)`` while a reader process reads."""
    link = make_site(base)
    ctx = multiprocessing.get_context('fork')
    ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    progress = ctx.Value('q', 0, lock=False)
    reader = ctx.Process(target=_reader, args=(os.path.join(link, 'version'), ready, stop, results, progress))
    reader.start()
    try:
        if not ready.wait(timeout=30):
            raise RuntimeError('the reader process did not start')
        started = time.monotonic()
        at_start = progress.value
        targets = ('releases/b', 'releases/a')
        done = 0
        while done < swaps or (
            progress.value - at_start < MIN_READER_BATCHES and time.monotonic() - started < MAX_EXTRA_SECONDS
        ):
            swap(link, targets[0])
            swap(link, targets[1])
            done += 2
        elapsed = time.monotonic() - started
    finally:
        stop.set()
    counts = results.get(timeout=30)
    reader.join(timeout=30)
    counts.update(swaps=done, seconds=round(elapsed, 2), final=os.readlink(link))
    return counts


def summary(name: str, counts: dict) -> str:
    total = counts['reads'] + counts['enoent'] + counts['other']
    return f'{name}: {counts["enoent"]} errors in {total} reads / {counts["swaps"]} swaps ({counts["seconds"]} s)'


def atomic_swap(link: str, target: str) -> None:
    # fsync is about durability, not atomicity: leave it out to swap at full speed
    _fs.swap_symlink(path=link, target=target, fsync=False)


def unlink_symlink_swap(link: str, target: str) -> None:
    os.unlink(link)
    os.symlink(target, link)


def busybox_swap(link: str, target: str) -> None:
    subprocess.run(['busybox', 'ln', '-sfn', target, link], check=True)


def test_atomic_swap_never_loses_current(tmp_path):
    counts = run_harness(swap=atomic_swap, swaps=SWAPS, base=str(tmp_path))
    print(summary('atomic', counts))
    assert counts['reads'] > 0
    assert counts['enoent'] == 0
    assert counts['other'] == 0 and counts['wrong'] == 0
    assert counts['final'] == 'releases/a'
    assert [n for n in os.listdir(tmp_path) if n.startswith('.current')] == []


def test_unlink_symlink_swap_is_caught(tmp_path):
    counts = run_harness(swap=unlink_symlink_swap, swaps=CONTROL_SWAPS, base=str(tmp_path))
    print(summary('unlink+symlink', counts))
    assert counts['enoent'] > 0, counts


def test_busybox_ln_sfn_is_caught(tmp_path):
    import pytest

    if shutil.which('busybox') is None:
        pytest.skip('busybox is not installed (apt-get install busybox)')
    counts = run_harness(swap=busybox_swap, swaps=BUSYBOX_SWAPS, base=str(tmp_path))
    print(summary('busybox ln -sfn', counts))
    assert counts['enoent'] > 0, counts


def main() -> int:
    failed = False
    runs = [('atomic', atomic_swap, SWAPS), ('unlink+symlink', unlink_symlink_swap, CONTROL_SWAPS)]
    if shutil.which('busybox'):
        runs.append(('busybox ln -sfn', busybox_swap, BUSYBOX_SWAPS))
    for name, swap, swaps in runs:
        base = tempfile.mkdtemp(prefix='atomic-deploy-race-')
        try:
            counts = run_harness(swap=swap, swaps=swaps, base=base)
        finally:
            shutil.rmtree(base)
        print(summary(name, counts))
        ok = counts['enoent'] == 0 if name == 'atomic' else counts['enoent'] > 0
        failed = failed or not ok
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
