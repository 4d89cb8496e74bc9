# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The web server's user is hostile (SECURITY.md): what it plants in shared/ never reaches root's hands.

Every attack is made by a real www-data process (a forked child with www-data's ids) against deploys that
run as root through the real playbook, with shared/ owned by the group www-data (2775) as documented:

- a symlink in shared/ that leads inside the deploy root (shared/public -> ../releases and others): the
  next deploy fails naming it, creates nothing outside shared/ and leaves no www-data-writable directory
  in releases/;
- the repair of a shared directory's mode while www-data flips it between a real directory and a symlink
  to a root-only 0600 file outside the root, over a bounded loop of deploys: that file never changes;
- the creation of a missing shared file while www-data swaps the new file for a symlink to a root-owned
  0640 file, over a bounded loop of deploys: that file never changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import grp
import json
import os
import pwd
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _harness import Ansible, build_archive, current_id, snapshot
from support.users import WEB_USER, run_as

WEB = pwd.getpwnam(WEB_USER)
WEB_GID = grp.getgrnam(WEB_USER).gr_gid
RACE_DEPLOYS = int(os.environ.get('RELIABILITY_RACE_DEPLOYS', '20'))
LOOP_LIMIT = 300.0  # seconds a www-data loop may run at most, whatever happens to the test process


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory www-data can traverse (pytest's tmp_path sits below a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix='atomic-web-user-'))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def deploy_vars(root: Path, release_id: str, archive: Path, **extra) -> dict:
    values = {
        'release_root': str(root),
        'release_id': release_id,
        'release_source': 'archive',
        'release_archive': str(archive),
        'release_shared_group': WEB_USER,
        'release_shared_dirs': ['storage/logs', 'public/uploads'],
        'release_shared_files': ['.env'],
        'release_keep': 3,
        'release_lock_timeout': 120,
    }
    values.update(extra)
    return values


def victim_file(base: Path, mode: int) -> Path:
    """A root-owned file outside the deploy root that www-data can name but not read."""
    outside = base / 'outside'
    outside.mkdir(exist_ok=True)
    os.chmod(outside, 0o711)
    path = outside / f'secret-{mode:o}'
    path.write_text('root only\n', encoding='utf-8')
    os.chown(path, 0, 0)
    os.chmod(path, mode)
    return path


def describe(path: Path) -> tuple[int, int, int, str]:
    st = os.lstat(path)
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, path.read_text(encoding='utf-8')


def web_writable(root: Path) -> list[str]:
    """Entries (not links) the web user could write: owned by it, group-writable for its group, or o+w."""
    found = []
    for rel, entry in snapshot(root).items():
        if entry.kind == 'l':
            continue
        if entry.uid == WEB.pw_uid or (entry.gid == WEB_GID and entry.mode & 0o020) or entry.mode & 0o002:
            found.append(f'{rel} {oct(entry.mode)} {entry.uid}:{entry.gid}')
    return found


# ------------------------------------------------------------------------------------------------------------
# A www-data process running in the background
# ------------------------------------------------------------------------------------------------------------


class WebUserLoop:
    """Runs ``step()`` over and over in a forked child with www-data's ids until stopped (or LOOP_LIMIT).

    ``step`` returns a count (swaps made); the child reports the sum. Forked, not exec'd: the child keeps
    the interpreter it has, which www-data could not read below root's home.
    """

    def __init__(self, step: Callable[[], int]) -> None:
        self.parent = os.getpid()
        read_fd, write_fd = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - child
            os.close(read_fd)
            self._child(step, write_fd)
        os.close(write_fd)
        self.read_fd = read_fd

    def _child(self, step: Callable[[], int], write_fd: int) -> None:  # pragma: no cover - child
        stop = []
        signal.signal(signal.SIGTERM, lambda *_args: stop.append(True))
        total, error = 0, None
        try:
            os.setgroups([])
            os.setresgid(WEB.pw_gid, WEB.pw_gid, WEB.pw_gid)
            os.setresuid(WEB.pw_uid, WEB.pw_uid, WEB.pw_uid)
            deadline = time.monotonic() + LOOP_LIMIT
            while not stop and time.monotonic() < deadline and os.getppid() == self.parent:
                total += step()
        except BaseException as exc:  # reported to the parent
            error = f'{type(exc).__name__}: {exc}'
        try:
            os.write(write_fd, json.dumps({'swaps': total, 'error': error}).encode())
        finally:
            os._exit(0)

    def stop(self) -> dict:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        chunks = []
        while chunk := os.read(self.read_fd, 65536):
            chunks.append(chunk)
        os.close(self.read_fd)
        os.waitpid(self.pid, 0)
        result = json.loads(b''.join(chunks) or b'{"swaps": 0, "error": "the child wrote nothing"}')
        assert result['error'] is None, f'the www-data loop failed: {result["error"]}'
        return result


@contextlib.contextmanager
def web_user_loop(step: Callable[[], int]) -> Iterator[dict]:
    loop = WebUserLoop(step)
    outcome: dict = {}
    try:
        yield outcome
    finally:
        outcome.update(loop.stop())


# ------------------------------------------------------------------------------------------------------------
# (a) a link in shared/ that leads into the deploy root
# ------------------------------------------------------------------------------------------------------------

IN_ROOT_LINKS = {
    # name in shared/ -> link text: the parent of a shared dir, pointing at releases/, the root, .deploy/
    'public -> ../releases': ('public', '../releases'),
    'public -> ..': ('public', '..'),
    'public -> ../.deploy': ('public', '../.deploy'),
    'storage -> ../current': ('storage', '../current'),
    # the shared dir itself, and a shared file, pointing into the root
    'public/uploads -> ../../releases': ('public/uploads', '../../releases'),
    '.env -> ../current/app/config.php': ('.env', '../current/app/config.php'),
}


def outside_shared(root: Path) -> dict:
    """The snapshot of everything under the root but shared/ and .deploy/ (the lock and history change)."""
    return {
        rel: entry
        for rel, entry in snapshot(root).items()
        if rel.split('/')[0] not in ('shared', '.deploy') and rel != '.'
    }


@pytest.mark.parametrize('case', sorted(IN_ROOT_LINKS))
def test_link_into_the_root_planted_by_the_web_user_is_refused(
    ansible: Ansible, base: Path, tmp_path: Path, case: str, figures
) -> None:
    """Refusing is right, ignoring is not: the link was made by the web user to redirect root's writes, and a
    deploy that went on would either link it into the new release (the app reading releases/ or .deploy/
    through it) or drop a shared path the app needs. The live release keeps serving; the message says what
    to replace."""
    root = base / 'root'
    archives = {rid: build_archive(dest=tmp_path / f'{rid}.tar.gz', version=rid) for rid in ('w1', 'w2')}
    first = ansible.deploy(**deploy_vars(root, 'w1', archives['w1'].path))
    assert first.rc == 0, first.describe()
    name, text = IN_ROOT_LINKS[case]
    planted = root / 'shared' / name

    def plant() -> str:
        if planted.is_dir() and not planted.is_symlink():
            os.rename(planted, planted.with_name(planted.name + '.moved'))
        elif os.path.lexists(planted):
            os.unlink(planted)
        os.symlink(text, planted)
        return os.readlink(planted)

    assert run_as(WEB_USER, plant) == text
    writable_before = web_writable(root / 'releases')
    before = outside_shared(root)
    run = ansible.deploy(**deploy_vars(root, 'w2', archives['w2'].path))
    after = outside_shared(root)
    added = sorted(set(after) - set(before))
    # The new release's own tree (staged, then marked failed) is the deploy's; anything else is not.
    stray = [rel for rel in added if not rel.startswith('releases/w2')]
    writable_after = web_writable(root / 'releases')
    message = '\n'.join(run.failure_messages)
    figures(case=case, rc=run.rc, stray_entries=len(stray), web_writable_in_releases=len(writable_after))
    assert stray == [], f'the deploy created outside shared/ through {planted}: {stray}'
    assert writable_after == writable_before, f'www-data can now write in releases/: {writable_after}'
    assert run.rc != 0, f'the deploy went on through {planted} -> {text}:\n{run.describe()}'
    assert f'{planted} is a symlink' in message and 'inside the deploy root' in message, message
    assert current_id(root) == 'w1'


# ------------------------------------------------------------------------------------------------------------
# (b) (c) swap races against the shared dir repair and the missing shared file creation
# ------------------------------------------------------------------------------------------------------------


_LIBC = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(first: str, second: str) -> None:
    """renameat2(RENAME_EXCHANGE): swap two names in one step (Linux), so the path is never missing."""
    if _LIBC.renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), second)


def flip_dir_and_link(*, target: Path, victim: Path) -> Callable[[], int]:
    """Each step puts a symlink to ``victim`` at ``target`` for one syscall's time (two exchanges), then leaves
    the directory there, its mode broken again (0755), for a while. A short link phase is the attacker's best
    odds against lstat-then-chmod: the deploy rarely sees the link (and stops), while its chmod by path can
    still land in it. Exchanges never leave ``target`` missing."""
    spare = str(target.with_name('.flip'))
    path = str(target)
    state: dict = {}

    def setup() -> None:
        with contextlib.suppress(FileNotFoundError):
            os.rename(target, target.with_name('.flip-original'))
        os.mkdir(path, 0o755)
        state['fd'] = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        os.symlink(victim, spare)

    def step() -> int:
        if not state:
            setup()
        exchange(spare, path)  # the link in
        exchange(spare, path)  # the directory back
        os.fchmod(state['fd'], 0o755)
        for _spin in range(100):
            pass
        return 1

    return step


def swap_new_file_for_link(*, target: Path, victim: Path) -> Callable[[], int]:
    """Exchange a ready symlink to ``victim`` with ``target`` the instant the deploy has created it: the
    exchange fails while ``target`` is missing, so trying it in a tight loop is the fastest way to notice.
    After a while the link is removed again, so the next deploy finds the file missing and creates it."""
    path = os.fsencode(target)
    ready = os.fsencode(target.with_name('.swap'))

    def step() -> int:
        if not os.path.lexists(ready):
            os.symlink(victim, ready)
        for _attempt in range(10000):
            if _LIBC.renameat2(_AT_FDCWD, ready, _AT_FDCWD, path, _RENAME_EXCHANGE) == 0:
                break
        else:
            return 0
        time.sleep(0.2)
        for name in (path, ready):  # the link at target, the deploy's empty file at the ready name
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        return 1

    return step


def race(
    ansible: Ansible, *, root: Path, tmp_path: Path, victim: Path, step: Callable[[], int], shared_path: Path, **extra
) -> dict:
    """RACE_DEPLOYS deploys while the www-data loop runs; stops at the first change of ``victim``."""
    before = describe(victim)
    archive = build_archive(dest=tmp_path / 'race.tar.gz', version='race')
    outcomes = {'ok': 0, 'refused': 0, 'other': 0}
    others: list[str] = []
    changed_at = None
    with web_user_loop(step) as loop:
        for n in range(RACE_DEPLOYS):
            run = ansible.deploy(**deploy_vars(root, f'race{n:02d}', archive.path, **extra))
            message = '\n'.join(run.failure_messages)
            if run.rc == 0:
                outcomes['ok'] += 1
            elif str(shared_path) in message and ('is a symlink' in message or 'changed while it was being' in message):
                outcomes['refused'] += 1
            else:
                outcomes['other'] += 1
                others.append(message or run.describe())
            if describe(victim) != before:
                changed_at = n + 1
                break
    return {
        'before': before,
        'after': describe(victim),
        'changed_at': changed_at,
        'swaps': loop['swaps'],
        'others': others,
        **outcomes,
    }


def test_shared_dir_repair_never_changes_a_file_swapped_in(ansible: Ansible, base: Path, tmp_path: Path, figures):
    root = base / 'root'
    victim = victim_file(base, 0o600)
    target = root / 'shared' / 'storage'
    first = ansible.deploy(**deploy_vars(root, 'seed', build_archive(dest=tmp_path / 's.tar.gz', version='s').path))
    assert first.rc == 0, first.describe()
    # Many shared dirs below one parent: the parent is looked at (and repaired) once per shared dir.
    dirs = [f'storage/d{i:03d}' for i in range(100)]
    result = race(
        ansible,
        root=root,
        tmp_path=tmp_path,
        victim=victim,
        step=flip_dir_and_link(target=target, victim=victim),
        shared_path=target,
        release_shared_dirs=dirs,
    )
    figures(
        deploys=result['ok'] + result['refused'] + result['other'],
        succeeded=result['ok'],
        refused=result['refused'],
        swaps=result['swaps'],
        victim_changed_at_deploy=result['changed_at'],
    )
    assert result['after'] == result['before'], (
        f'{victim} changed from {oct(result["before"][0])} to {oct(result["after"][0])} '
        f'(owner {result["after"][1]}:{result["after"][2]}) at deploy {result["changed_at"]}'
    )
    assert result['other'] == 0, result['others'][:3]
    assert result['swaps'] > RACE_DEPLOYS, 'the www-data loop hardly ran: the race was not exercised'


def test_missing_shared_file_creation_never_changes_a_file_swapped_in(
    ansible: Ansible, base: Path, tmp_path: Path, figures
):
    root = base / 'root'
    victim = victim_file(base, 0o640)
    target = root / 'shared' / '.env'
    first = ansible.deploy(**deploy_vars(root, 'seed', build_archive(dest=tmp_path / 's.tar.gz', version='s').path))
    assert first.rc == 0, first.describe()
    os.unlink(target)
    result = race(
        ansible,
        root=root,
        tmp_path=tmp_path,
        victim=victim,
        step=swap_new_file_for_link(target=target, victim=victim),
        shared_path=target,
    )
    figures(
        deploys=result['ok'] + result['refused'] + result['other'],
        succeeded=result['ok'],
        refused=result['refused'],
        files_swapped=result['swaps'],
        victim_changed_at_deploy=result['changed_at'],
    )
    assert result['after'] == result['before'], (
        f'{victim} changed from {oct(result["before"][0])} to {oct(result["after"][0])} '
        f'(owner {result["after"][1]}:{result["after"][2]}) at deploy {result["changed_at"]}'
    )
    assert result['other'] == 0, result['others'][:3]
    assert result['swaps'] >= RACE_DEPLOYS // 2, 'the deploys hardly created the file: the race was not exercised'


def chmod_after_lstat(target: Path) -> None:
    """What repairing a shared dir did before the fix: lstat, then chmod by path."""
    st = os.lstat(target)
    if stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) != 0o2775:
        os.chmod(target, 0o2775)


def chmod_after_create(target: Path) -> None:
    """What creating a missing shared file did before the fix: O_CREAT|O_EXCL|O_NOFOLLOW, then chmod by path."""
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640))
    os.lchown(target, -1, WEB_GID)
    os.chmod(target, 0o660)
    time.sleep(0.25)  # the loop removes its link again


CONTROLS = {
    'dir repair': (0o600, 'storage', flip_dir_and_link, chmod_after_lstat),
    'file creation': (0o640, '.env', swap_new_file_for_link, chmod_after_create),
}


@pytest.mark.parametrize('control', sorted(CONTROLS))
def test_the_race_loops_win_against_a_path_based_chmod(base: Path, control: str, figures) -> None:
    """A control: the www-data loops do redirect the path-based code the fix replaced, within 20 s, so a race
    test that passes means the deploy closed the window, not that the loop missed it."""
    mode, name, loop, act = CONTROLS[control]
    victim = victim_file(base, mode)
    shared = base / 'shared'
    shared.mkdir()
    os.chown(shared, 0, WEB_GID)
    os.chmod(shared, 0o2775)
    attempts = 0
    with web_user_loop(loop(target=shared / name, victim=victim)):
        deadline = time.monotonic() + 20
        while stat.S_IMODE(os.lstat(victim).st_mode) == mode and time.monotonic() < deadline:
            attempts += 1
            with contextlib.suppress(OSError):
                act(shared / name)
    figures(control=control, attempts=attempts, victim_mode=oct(stat.S_IMODE(os.lstat(victim).st_mode)))
    assert stat.S_IMODE(os.lstat(victim).st_mode) != mode, f'the {control} loop never won in 20 s'
