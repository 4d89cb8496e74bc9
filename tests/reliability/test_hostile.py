# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile and bad input, table driven, through the real playbooks (module calls where a playbook cannot
express the input).

Every case runs against a fresh copy of one baseline root (two complete releases, shared data) and asserts:
- the run fails with a message that names the input (the offending value or variable);
- the disk is unchanged: the whole root is snapshotted before and after (names, types, modes, owners,
  sizes, mtimes, link targets, content hashes). Two traces are allowed, and only where stated:
  * ``lock``: the directory ROOT/.deploy may get a new mtime (a lock file was created and removed);
  * ``failed_release``: the input could only be judged while fetching (archive members, a download's
    checksum), so ROOT/releases/<id>/ exists holding nothing but its .release.json marked failed, and
    history.jsonl got exactly one more line, a ``failed`` event for that id;
- no lock is left behind, and nothing outside the root was written.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import http.server
import io
import json
import os
import re
import shutil
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from _harness import (
    DEPLOY_PLAYBOOK,
    ROLLBACK_PLAYBOOK,
    Ansible,
    Archive,
    Run,
    Snapshot,
    build_archive,
    can_mount,
    copy_root,
    current_id,
    lock_record,
    metadata,
    read_history,
    release_manifest,
    snapshot,
    snapshot_diff,
    tmpfs,
)

SHARED_DIRS = ['storage', 'public/uploads']
SHARED_FILES = ['.env']
SECRET = 'APP_KEY=base64:hostile-suite-secret-value'
PARALLEL = 2  # cases run two at a time, each on its own copy of the baseline


@dataclasses.dataclass
class World:
    """What a case may use: the baseline's archives, a web server for downloads, an outside dir."""

    base: Path
    archives: dict[str, Archive]
    url: str
    outside: Path


@dataclasses.dataclass
class Case:
    name: str
    expect: tuple[str, ...]  # regexes; each must match the failure messages of the run
    vars: dict = dataclasses.field(default_factory=dict)
    playbook: str = 'deploy'  # deploy | rollback
    trace: str = 'none'  # none | lock | failed_release
    setup: Callable[[Path, World], None] | None = None
    allow: tuple[str, ...] = ()  # further paths (relative to the root) a failed_release run may add, empty
    module: str | None = None  # a module-level case: ansible -m atomic.deploy.<module> -a <vars + root>


def deploy_vars(root: Path, world: World, **overrides) -> dict:
    values = {
        'release_root': str(root),
        'release_id': 'hostile1',
        'release_source': 'archive',
        'release_archive': str(world.archives['good'].path),
        'release_shared_dirs': SHARED_DIRS,
        'release_shared_files': SHARED_FILES,
        'release_keep': 3,
        'release_lock_timeout': 120,
    }
    values.update(overrides)
    return values


# ------------------------------------------------------------------------------------------------------------
# Hostile archives and setups
# ------------------------------------------------------------------------------------------------------------


def hostile_archive(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, 'w:gz') as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(data))
    return path


def symlink_member(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def replace_with_link(path: Path, target: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    os.symlink(target, path)


def current_as_directory(root: Path, world: World) -> None:
    live = root / 'releases' / (current_id(root) or '')
    (root / 'current').unlink()
    shutil.copytree(live, root / 'current', symlinks=True)


def mark_failed_by_hand(release_id: str) -> Callable[[Path, World], None]:
    def setup(root: Path, world: World) -> None:
        path = root / 'releases' / release_id / '.release.json'
        meta = json.loads(path.read_text(encoding='utf-8'))
        meta.update(state='failed', failed_at='2026-01-01T00:00:00.000000Z', reason='broken on purpose')
        path.write_text(json.dumps(meta), encoding='utf-8')

    return setup


# ------------------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------------------

ZERO = 'sha256:' + '0' * 64

CASES = [
    Case('release id with ../', (r'\.\./evil',), vars={'release_id': '../evil'}),
    Case('release id with /', (r'a/b',), vars={'release_id': 'a/b'}),
    Case('release id ..', (r"'\.\.'|\"\.\.\"|release_id",), vars={'release_id': '..'}),
    # The role documents release_id "" as "generate a UTC timestamp id", so an empty id can only be
    # given to the module.
    Case('module: release id empty', (r'\bid must not be empty',), module='release', vars={'id': ''}),
    # The NUL byte must be visible in the message (a raw NUL is dropped by terminals and log viewers).
    Case('release id with nul byte', (r'release_id', r'nul|\\x00|\\u0000'), vars={'release_id': 'a\x00b'}),
    Case('module: release id with nul byte', (r'\bid\b', r'nul byte'), module='release', vars={'id': 'a\x00b'}),
    Case('release id option-like', (r'-rf',), vars={'release_id': '-rf'}),
    Case('shared dir absolute', (r'/etc',), vars={'release_shared_dirs': ['/etc']}),
    Case('shared dir with ..', (r'\.\./outside',), vars={'release_shared_dirs': ['storage', '../outside']}),
    Case('shared file absolute', (r'/etc/passwd',), vars={'release_shared_files': ['/etc/passwd']}),
    Case('shared file with ..', (r'config/\.\./\.\./x',), vars={'release_shared_files': ['config/../../x']}),
    Case('keep 0', (r'keep', r'\b0\b'), vars={'release_keep': 0}),
    Case('keep negative', (r'keep', r'-1'), vars={'release_keep': -1}),
    Case('module: prune keep 0', (r'keep', r'\b0\b'), module='release_prune', vars={'keep': 0}),
    Case('module: prune keep negative', (r'keep', r'-3'), module='release_prune', vars={'keep': -3}),
    Case('module: rollback to ../base1', (r'\.\./base1',), module='release_rollback', vars={'to': '../base1'}),
    Case('module: lock timeout 0', (r'timeout', r'\b0\b'), module='deploy_lock', vars={'timeout': 0}),
    Case(
        'archive member with ../',
        (r'\.\./\.\./\.\./escape\.txt',),
        vars={'release_archive': '{dotdot}'},
        trace='failed_release',
    ),
    Case(
        'archive member absolute',
        (r'/tmp/atomic-reliability-absolute\.txt',),
        vars={'release_archive': '{absolute}'},
        trace='failed_release',
    ),
    Case(
        'archive symlink member leading out',
        (r'public/escape',),
        vars={'release_archive': '{symlink}'},
        trace='failed_release',
    ),
    Case(
        'url without checksum',
        (r'checksum',),
        vars={'release_source': 'url', 'release_url': '{url}/good.tar.gz', 'release_archive': None},
    ),
    Case(
        'url with wrong checksum',
        (r'checksum', r'good\.tar\.gz'),
        vars={
            'release_source': 'url',
            'release_url': '{url}/good.tar.gz',
            'release_checksum': ZERO,
            'release_archive': None,
        },
        trace='failed_release',
        # The download work dir of the documented layout; the partial download itself must be gone.
        allow=('.deploy/tmp',),
    ),
    Case('missing archive', (r'/nonexistent/app\.tar\.gz',), vars={'release_archive': '/nonexistent/app.tar.gz'}),
    Case(
        'url that does not exist',
        (r'missing\.tar\.gz',),
        vars={
            'release_source': 'url',
            'release_url': '{url}/missing.tar.gz',
            'release_checksum': ZERO,
            'release_archive': None,
        },
        trace='failed_release',
        allow=('.deploy/tmp',),
    ),
    Case(
        'missing source directory',
        (r'/nonexistent/app-dir',),
        vars={'release_source': 'directory', 'release_directory': '/nonexistent/app-dir', 'release_archive': None},
    ),
    Case('unknown source type', (r'release_source', r'ftp'), vars={'release_source': 'ftp'}),
    Case(
        'current is a real directory',
        (r'current',),
        setup=current_as_directory,
    ),
    Case(
        'rollback target missing',
        (r'nope',),
        playbook='rollback',
        vars={'release_rollback_to': 'nope'},
        # The target is judged under the deploy lock (so no deploy can change releases/ meanwhile): the
        # lock file is created and removed, which only moves the mtime of ROOT/.deploy.
        trace='lock',
    ),
    Case(
        'rollback target failed',
        (r'base1', r'failed'),
        playbook='rollback',
        vars={'release_rollback_to': 'base1'},
        setup=mark_failed_by_hand('base1'),
        trace='lock',
    ),
    Case(
        'symlink planted in shared/ leading out',
        (r'shared/storage',),
        setup=lambda root, world: replace_with_link(root / 'shared' / 'storage', world.outside),
    ),
    Case(
        'symlink planted as shared/.env leading out',
        (r'shared/\.env',),
        setup=lambda root, world: replace_with_link(root / 'shared' / '.env', world.outside / 'secret.txt'),
    ),
    Case(
        'releases/ is a symlink leading out',
        (r'releases',),
        setup=lambda root, world: (
            shutil.copytree(root / 'releases', world.outside / 'releases-copy', symlinks=True),
            replace_with_link(root / 'releases', world.outside / 'releases-copy'),
        ),
    ),
    Case(
        'symlink planted at releases/<new id> leading out',
        (r'releases/hostile1',),
        setup=lambda root, world: os.symlink(world.outside, root / 'releases' / 'hostile1'),
    ),
    Case(
        '.deploy is a symlink leading out',
        (r'\.deploy',),
        setup=lambda root, world: (
            shutil.copytree(root / '.deploy', world.outside / 'deploy-copy'),
            replace_with_link(root / '.deploy', world.outside / 'deploy-copy'),
        ),
    ),
]


# ------------------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope='module')
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp('hostile-world')
    files = base / 'files'
    files.mkdir()
    archives = {name: build_archive(dest=files / f'{name}.tar.gz', version=name) for name in ('good', 'base1', 'base2')}
    archives['dotdot'] = Archive(
        path=hostile_archive(files / 'dotdot.tar.gz', [('public/ok.txt', b'ok\n'), ('../../../escape.txt', b'x\n')]),
        version='dotdot',
        manifest={},
    )
    archives['absolute'] = Archive(
        path=hostile_archive(
            files / 'absolute.tar.gz',
            [('public/ok.txt', b'ok\n'), ('/tmp/atomic-reliability-absolute.txt', b'x\n')],
        ),
        version='absolute',
        manifest={},
    )
    archives['symlink'] = Archive(
        path=hostile_archive(
            files / 'symlink.tar.gz',
            [('public/ok.txt', b'ok\n'), symlink_member('public/escape', '../../../../../../../../etc')],
        ),
        version='symlink',
        manifest={},
    )
    handler = functools.partial(_QuietHandler, directory=str(files))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    outside = base / 'outside'
    outside.mkdir()
    (outside / 'secret.txt').write_text('outside data\n', encoding='utf-8')
    yield World(base=base, archives=archives, url=f'http://127.0.0.1:{server.server_address[1]}', outside=outside)
    server.shutdown()


@pytest.fixture(scope='module')
def baseline(world: World, ansible: Ansible, deploy_playbook: Path) -> Path:
    """A root with two complete releases (base1, base2 live), shared data and a history."""
    root = world.base / 'baseline'
    (root / 'shared' / 'storage').mkdir(parents=True)
    (root / 'shared' / 'storage' / 'data.bin').write_bytes(os.urandom(4096))
    (root / 'shared' / '.env').write_text(SECRET + '\n', encoding='utf-8')
    for release_id in ('base1', 'base2'):
        run = ansible.deploy(
            **deploy_vars(root, world, release_id=release_id, release_archive=str(world.archives[release_id].path))
        )
        assert run.rc == 0, run.describe()
    assert current_id(root) == 'base2'
    assert lock_record(root) is None
    return root


def fill(value, world: World):
    if isinstance(value, str):
        for key in ('dotdot', 'absolute', 'symlink'):
            value = value.replace('{' + key + '}', str(world.archives[key].path))
        return value.replace('{url}', world.url)
    return value


# ------------------------------------------------------------------------------------------------------------
# Assertions
# ------------------------------------------------------------------------------------------------------------


def assert_trace(
    *, case: Case, before: Snapshot, after: Snapshot, root: Path, release_id: str, history_before: list[dict]
) -> None:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    mtime_only = {
        p
        for p in changed
        if before[p].kind == after[p].kind == 'd'
        and dataclasses.replace(before[p], mtime_ns=0) == dataclasses.replace(after[p], mtime_ns=0)
    }
    detail = '\n'.join(snapshot_diff(before, after))
    if case.trace == 'none':
        assert added == removed == changed == [], f'{case.name}: the disk changed:\n{detail}'
        return
    if case.trace == 'lock':
        assert added == removed == [] and set(changed) <= {'.deploy'} and set(changed) <= mtime_only, (
            f"{case.name}: more than the lock's transient trace:\n{detail}"
        )
        return
    release = f'releases/{release_id}'
    allowed_added = {release, f'{release}/.release.json', *case.allow}
    assert removed == [], f'{case.name}: removed entries:\n{detail}'
    assert set(added) <= allowed_added and {release, f'{release}/.release.json'} <= set(added), (
        f'{case.name}: expected only a failed marker for {release}:\n{detail}'
    )
    for extra in case.allow:
        if extra in after:
            assert after[extra].kind == 'd' and not any(p.startswith(extra + '/') for p in after), (
                f'{case.name}: {extra} is not empty:\n{detail}'
            )
    assert set(changed) - mtime_only <= {'.deploy/history.jsonl'}, f'{case.name}: unexpected changes:\n{detail}'
    assert set(mtime_only) <= {'.', 'releases', '.deploy'}, f'{case.name}: unexpected dir changes:\n{detail}'
    meta = metadata(root, release_id)
    assert meta is not None and meta['state'] == 'failed', f'{case.name}: {release} is not marked failed: {meta}'
    entries, torn = read_history(root)
    assert not torn
    new = entries[len(history_before) :]
    assert entries[: len(history_before)] == history_before, f'{case.name}: earlier history lines were rewritten'
    assert [(e.get('event'), e.get('id')) for e in new] == [('failed', release_id)], (
        f'{case.name}: expected one failed history line, got {new}'
    )


# ------------------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    case: Case
    root: Path
    release_id: str
    before: Snapshot
    after: Snapshot
    outside_before: Snapshot
    outside_after: Snapshot
    history_before: list[dict]
    run: Run | None = None
    result: dict = dataclasses.field(default_factory=dict)
    error: BaseException | None = None

    @property
    def messages(self) -> str:
        if self.case.module is not None:
            return str(self.result.get('msg') or (self.run.text if self.run else ''))
        return '\n'.join(self.run.failure_messages) if self.run else ''


def run_case(case: Case, *, world: World, baseline: Path, ansible: Ansible, work: Path) -> Outcome:
    root = work / f'{CASES.index(case):02d}-{re.sub(r"[^A-Za-z0-9]+", "-", case.name).strip("-")}' / 'root'
    root.parent.mkdir(parents=True)
    copy_root(baseline, root)
    # Each case has its own outside dir: cases run in parallel and some setups put copies there.
    outside = root.parent / 'outside'
    shutil.copytree(world.outside, outside)
    world = dataclasses.replace(world, outside=outside)
    if case.setup is not None:
        case.setup(root, world)
    extra = {key: fill(value, world) for key, value in case.vars.items()}
    history_before, _torn = read_history(root)
    outcome = Outcome(
        case=case,
        root=root,
        release_id='',
        before=snapshot(root),
        after={},
        outside_before=snapshot(world.outside),
        outside_after={},
        history_before=history_before,
    )
    if case.module is not None:
        outcome.run, outcome.result = ansible.module(case.module, {'root': str(root), **extra})
        outcome.release_id = str(extra.get('id', ''))
    else:
        if case.playbook == 'deploy':
            variables = {k: v for k, v in deploy_vars(root, world, **extra).items() if v is not None}
            playbook = DEPLOY_PLAYBOOK
        else:
            variables = {'release_root': str(root), **extra}
            playbook = ROLLBACK_PLAYBOOK
        outcome.release_id = str(variables.get('release_id', ''))
        outcome.run = ansible.playbook(playbook=playbook, extra_vars=variables)
    outcome.after = snapshot(root)
    outcome.outside_after = snapshot(world.outside)
    return outcome


@pytest.fixture(scope='module')
def outcomes(world: World, baseline: Path, ansible: Ansible, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every case, run two at a time (each on its own copy of the baseline): the runs are what takes time."""
    work = tmp_path_factory.mktemp('hostile-cases')
    results: dict[str, Outcome] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = {
            pool.submit(run_case, case, world=world, baseline=baseline, ansible=ansible, work=work): case
            for case in CASES
        }
        for future in concurrent.futures.as_completed(futures):
            case = futures[future]
            try:
                results[case.name] = future.result()
            except BaseException as exc:
                results[case.name] = exc
    return results


@pytest.mark.parametrize('case', CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, outcomes: dict) -> None:
    outcome = outcomes[case.name]
    if isinstance(outcome, BaseException):
        raise outcome
    run = outcome.run
    messages = outcome.messages
    first = messages.strip().splitlines()[0][:220] if messages.strip() else '(no message)'
    print(f'\n[case] {case.name}: rc={run.rc} {first!r}')
    assert run.rc != 0, f'{case.name}: the run succeeded\n{run.describe()}'
    if case.module is None:
        assert run.failures, f'{case.name}: no task failed (the playbook itself did not run?)\n{run.describe()}'
    else:
        assert outcome.result.get('_status', '').startswith('FAILED'), (
            f'{case.name}: the module did not fail: {outcome.result}\n{run.describe()}'
        )
    for pattern in case.expect:
        assert re.search(pattern, messages), (
            f'{case.name}: the error does not name the input ({pattern}):\n{messages!r}'
        )
    root = outcome.root
    assert lock_record(root) is None, f'{case.name}: a lock was left behind: {lock_record(root)}'
    assert outcome.outside_after == outcome.outside_before, f'{case.name}: something outside the root changed'
    assert not Path('/tmp/atomic-reliability-absolute.txt').exists()
    assert not (root.parent / 'escape.txt').exists() and not (root.parents[1] / 'escape.txt').exists()
    assert_trace(
        case=case,
        before=outcome.before,
        after=outcome.after,
        root=root,
        release_id=outcome.release_id,
        history_before=outcome.history_before,
    )


def test_hostile_summary(outcomes: dict, figures) -> None:
    failed_runs = sum(1 for o in outcomes.values() if not isinstance(o, BaseException) and o.run and o.run.rc != 0)
    playbook = sum(1 for c in CASES if c.module is None)
    figures(cases=len(CASES), playbook_cases=playbook, module_cases=len(CASES) - playbook, runs_that_failed=failed_runs)


# ------------------------------------------------------------------------------------------------------------
# Filesystems: releases/ on its own mount, and a disk that fills during extraction
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not can_mount(), reason='needs root to mount tmpfs')
def test_releases_on_a_separate_filesystem(
    world: World, baseline: Path, ansible: Ansible, tmp_path: Path, figures
) -> None:
    """releases/ is its own tmpfs: the deploy works, because nothing is ever renamed across directories.

    A release is built as releases/.tmp-<id>-<r> and renamed to releases/<id> (same directory), pruning
    renames releases/<id> to releases/.trash-... (same directory), and the switch renames ROOT/.current.*
    over ROOT/current (same directory). So EXDEV cannot happen whatever is mounted where.
    """
    root = tmp_path / 'root'
    copy_root(baseline, root)
    saved = tmp_path / 'saved-releases'
    shutil.move(root / 'releases', saved)
    with tmpfs(root / 'releases', size='64m'):
        for entry in saved.iterdir():
            shutil.copytree(entry, root / 'releases' / entry.name, symlinks=True, copy_function=shutil.copy2)
        assert os.stat(root / 'releases').st_dev != os.stat(root).st_dev, 'releases/ is not a separate filesystem'
        shared_before = snapshot(root / 'shared')
        runs = []
        for release_id in ('sep1', 'sep2', 'sep3', 'sep4'):
            run = ansible.deploy(**deploy_vars(root, world, release_id=release_id, release_keep=2))
            runs.append(run)
            assert run.rc == 0, f'deploy {release_id} with releases/ on its own filesystem failed:\n{run.describe()}'
        rollback = ansible.rollback(release_root=str(root))
        assert rollback.rc == 0, rollback.describe()
        assert current_id(root) == 'sep3'
        assert os.stat(root / 'releases' / 'sep3').st_dev == os.stat(root / 'releases').st_dev
        assert release_manifest(root / 'releases' / 'sep3') == world.archives['good'].manifest
        kept = sorted(e.name for e in os.scandir(root / 'releases'))
        assert 'base1' not in kept and 'base2' not in kept, f'pruning did not work across the mount: {kept}'
        assert not [k for k in kept if k.startswith('.')], f'temp or trash dirs left: {kept}'
        assert snapshot(root / 'shared') == shared_before
        assert lock_record(root) is None
    figures(
        deploys=len(runs),
        rollbacks=1,
        releases_kept=len(kept),
        outcome='works: every rename stays inside one directory',
    )


@pytest.mark.skipif(not can_mount(), reason='needs root to mount tmpfs')
def test_disk_fills_during_extraction(world: World, ansible: Ansible, tmp_path: Path, figures) -> None:
    """A 2 MiB root and a 3 MiB incompressible archive: the deploy fails naming the disk problem, current stays
    on the old release, the partial release is emptied and marked failed, one failed history line, no lock."""
    big = build_archive(dest=tmp_path / 'big.tar.gz', version='big', random_bytes=3 * 1024 * 1024)
    small = world.archives['base1']
    mount = tmp_path / 'disk'
    with tmpfs(mount, size='2m'):
        root = mount / 'root'
        first = ansible.deploy(**deploy_vars(root, world, release_id='small', release_archive=str(small.path)))
        assert first.rc == 0, first.describe()
        shared_before = snapshot(root / 'shared')
        before = snapshot(root)
        history_before, _torn = read_history(root)
        run = ansible.deploy(**deploy_vars(root, world, release_id='big', release_archive=str(big.path)))
        after = snapshot(root)
        messages = '\n'.join(run.failure_messages)
        print(f'\n[case] disk full: rc={run.rc} {messages.splitlines()[0][:220] if messages else ""!r}')
        assert run.rc != 0, run.describe()
        assert re.search(r'no space left on device', messages, re.I), messages
        assert current_id(root) == 'small'
        assert release_manifest(root / 'releases' / 'small') == small.manifest
        assert sorted(os.listdir(root / 'releases' / 'big')) == ['.release.json'], 'the partial release was not emptied'
        meta = metadata(root, 'big')
        assert meta['state'] == 'failed' and re.search(r'no space left', meta.get('reason', ''), re.I), meta
        assert snapshot(root / 'shared') == shared_before
        assert lock_record(root) is None
        entries, torn = read_history(root)
        assert not torn and entries[: len(history_before)] == history_before
        assert [(e['event'], e['id']) for e in entries[len(history_before) :]] == [('failed', 'big')]
        case = Case('disk full', (), trace='failed_release')
        assert_trace(case=case, before=before, after=after, root=root, release_id='big', history_before=history_before)
        free = shutil.disk_usage(mount).free
    figures(tmpfs='2m', archive_bytes=big.path.stat().st_size, free_after=free, current='small')
