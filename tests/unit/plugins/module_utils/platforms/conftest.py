# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run module_utils on Linux as if on macOS or FreeBSD.

What differs is put in by replacing Linux's behaviour in the process, never by guessing:

- ``sys.platform`` and the errno values that differ from Linux's (Darwin's and FreeBSD's
  <sys/errno.h>): ``errno.X`` is patched, and every OSError raised by the ``os``/``fcntl`` calls
  below is re-raised with the platform's number, so code that compares with ``errno.X`` sees what
  it would see there;
- ``open(O_NOFOLLOW)`` on a symlink: ELOOP on macOS, EMLINK on FreeBSD;
- the C library as ctypes loads it: macOS has ``renameatx_np`` (RENAME_SWAP) and no renameat2;
  FreeBSD's renameat2 knows no exchange flag;
- ``fcntl(F_FULLFSYNC)`` on macOS (recorded, then a real fsync).

Stand-ins for file systems, each a fixture: a case-insensitive one (APFS's default), a decomposing
one (HFS+ stores names in NFD), a root reached through a symlink (/var -> /private/var on macOS,
/home -> /usr/home on FreeBSD), flock refused (NFS without locking), setgid refused with EPERM,
1-second timestamps (UFS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import errno
import fcntl
import functools
import os
import sys
import unicodedata

import pytest

LINUX_ERRNO = {name: getattr(errno, name) for name in ('ENOTSUP', 'EOPNOTSUPP', 'ELOOP', 'ENOLCK', 'ENOSYS')}
LINUX_ERRNO.update(ENOTEMPTY=errno.ENOTEMPTY, EDQUOT=errno.EDQUOT, EMLINK=errno.EMLINK)


@dataclasses.dataclass(frozen=True)
class Platform:
    name: str
    sys_platform: str
    # errno values from the platform's <sys/errno.h>
    errnos: dict
    # what open(O_NOFOLLOW) on a symlink fails with
    nofollow: str
    # exchange-capable functions in its libc
    libc: frozenset
    # fcntl F_FULLFSYNC command, where the platform has one
    full_fsync: int | None

    def __str__(self) -> str:
        return self.name


MACOS = Platform(
    name='macos',
    sys_platform='darwin',
    errnos=dict(ENOTSUP=45, EOPNOTSUPP=102, ELOOP=62, ENOLCK=77, ENOSYS=78, ENOTEMPTY=66, EDQUOT=69, EMLINK=31),
    nofollow='ELOOP',
    libc=frozenset({'renameatx_np'}),
    full_fsync=51,
)
FREEBSD = Platform(
    name='freebsd',
    sys_platform='freebsd14',
    # FreeBSD: ENOTSUP is defined as EOPNOTSUPP (45)
    errnos=dict(ENOTSUP=45, EOPNOTSUPP=45, ELOOP=62, ENOLCK=77, ENOSYS=78, ENOTEMPTY=66, EDQUOT=69, EMLINK=31),
    nofollow='EMLINK',
    libc=frozenset({'renameat2'}),
    full_fsync=None,
)
PLATFORMS = [MACOS, FREEBSD]

_REAL_LIBC = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
_REAL_RENAMEAT2 = _REAL_LIBC.renameat2
_REAL_RENAMEAT2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
_REAL_RENAMEAT2.restype = ctypes.c_int
_REAL_CDLL = ctypes.CDLL

# os functions module_utils calls with paths or descriptors: their errors get the platform's numbers.
WRAPPED_OS = (
    'open', 'link', 'mkdir', 'rename', 'replace', 'symlink', 'unlink', 'rmdir', 'chmod', 'fchmod',
    'chown', 'lchown', 'fchown', 'fsync', 'lstat', 'stat', 'fstat', 'readlink', 'utime', 'listdir', 'scandir',
)  # fmt: skip


class PlatformState:
    """What a test can look at or change while the platform is in place."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.full_fsync_calls: list[int] = []
        self.exchange_calls: list[tuple] = []
        self.translate = {LINUX_ERRNO[name]: value for name, value in platform.errnos.items()}

    def errno_of(self, name: str) -> int:
        return self.platform.errnos.get(name, getattr(errno, name))

    def error(self, name: str, filename=None) -> OSError:
        code = self.errno_of(name)
        return OSError(code, _STRERROR.get(name, name.lower()), filename)

    def reraise(self, exc: OSError, *, nofollow: bool = False):
        code = exc.errno
        if nofollow and code == LINUX_ERRNO['ELOOP']:
            code = self.errno_of(self.platform.nofollow)
        else:
            code = self.translate.get(code, code)
        if code == exc.errno:
            raise exc
        raise OSError(code, exc.strerror, exc.filename, None, exc.filename2) from None


_STRERROR = {
    'ENOTSUP': 'Operation not supported',
    'EOPNOTSUPP': 'Operation not supported on socket',
    'ELOOP': 'Too many levels of symbolic links',
    'EMLINK': 'Too many links',
    'ENOLCK': 'No locks available',
    'EPERM': 'Operation not permitted',
}


def _wrap(state: PlatformState, name: str, func):
    if name == 'open':

        def wrapper(path, flags, *args, **kwargs):
            try:
                return func(path, flags, *args, **kwargs)
            except OSError as exc:
                state.reraise(exc, nofollow=bool(flags & os.O_NOFOLLOW))

    else:

        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except OSError as exc:
                state.reraise(exc)

    wrapper.__name__ = name
    return wrapper


class FakeLibc:
    """The platform's C library as ctypes would load it: only the functions it has."""

    def __init__(self, state: PlatformState) -> None:
        self._state = state
        # partial objects, not bound methods: ctypes callers set argtypes/restype on them
        if 'renameatx_np' in state.platform.libc:
            self.renameatx_np = functools.partial(self._renameatx_np)
        if 'renameat2' in state.platform.libc:
            self.renameat2 = functools.partial(self._freebsd_renameat2)

    def _fail(self, name: str) -> int:
        ctypes.set_errno(self._state.errno_of(name))
        return -1

    def _real_exchange(self, first: bytes, second: bytes) -> int:
        if _REAL_RENAMEAT2(-100, first, -100, second, 2) == 0:
            return 0
        code = ctypes.get_errno()
        ctypes.set_errno(self._state.translate.get(code, code))
        return -1

    def _renameatx_np(self, fromfd, first, tofd, second, flags):
        # Darwin <sys/fcntl.h>: AT_FDCWD -2; <sys/stdio.h>: RENAME_SWAP 0x2
        self._state.exchange_calls.append(('renameatx_np', fromfd, tofd, flags))
        if fromfd != -2 or tofd != -2 or flags != 0x2:
            return self._fail('EINVAL')
        return self._real_exchange(first, second)

    def _freebsd_renameat2(self, fromfd, first, tofd, second, flags):
        # FreeBSD's renameat2(2) documents AT_RENAME_NOREPLACE only: an exchange is not available.
        self._state.exchange_calls.append(('renameat2', fromfd, tofd, flags))
        return self._fail('EINVAL')


@pytest.fixture(params=PLATFORMS, ids=str)
def platform(request, monkeypatch) -> PlatformState:
    """The test body runs with the module_utils seeing macOS, then FreeBSD."""
    return apply_platform(monkeypatch, request.param)


@pytest.fixture
def macos(monkeypatch) -> PlatformState:
    return apply_platform(monkeypatch, MACOS)


@pytest.fixture
def freebsd(monkeypatch) -> PlatformState:
    return apply_platform(monkeypatch, FREEBSD)


def apply_platform(monkeypatch, platform: Platform) -> PlatformState:
    state = PlatformState(platform)
    for name, value in state.platform.errnos.items():
        monkeypatch.setattr(errno, name, value)
    for name in WRAPPED_OS:
        monkeypatch.setattr(os, name, _wrap(state, name, getattr(os, name)))
    monkeypatch.setattr(fcntl, 'flock', _wrap(state, 'flock', fcntl.flock))
    real_fcntl = fcntl.fcntl

    def fake_fcntl(fd, command, *args):
        if state.platform.full_fsync is not None and command == state.platform.full_fsync:
            state.full_fsync_calls.append(fd)
            os.fsync(fd)
            return 0
        try:
            return real_fcntl(fd, command, *args)
        except OSError as exc:
            state.reraise(exc)

    monkeypatch.setattr(fcntl, 'fcntl', fake_fcntl)
    if state.platform.full_fsync is not None:
        monkeypatch.setattr(fcntl, 'F_FULLFSYNC', state.platform.full_fsync, raising=False)
    else:
        monkeypatch.delattr(fcntl, 'F_FULLFSYNC', raising=False)

    def fake_cdll(name, *args, **kwargs):
        if name in (None, ctypes.util.find_library('c')):
            return FakeLibc(state)
        return _REAL_CDLL(name, *args, **kwargs)

    monkeypatch.setattr(ctypes, 'CDLL', fake_cdll)
    monkeypatch.setattr(sys, 'platform', state.platform.sys_platform)
    return state


# --- file-system stand-ins ----------------------------------------------------------------------


def _key(name: str, *, fold_case: bool) -> str:
    name = unicodedata.normalize('NFD', name)
    return name.casefold() if fold_case else name


class FoldingFs:
    """Names under ``root`` looked up as APFS (case-insensitive) or HFS+ (also stored decomposed) do.

    Every path below ``root`` given to a wrapped os function is rewritten, component by component,
    to the entry already on disk that matches it once folded; a new name is stored in NFD when
    ``decompose``. So creating ``readme`` next to ``README`` opens ``README``, and renaming onto
    it replaces it, as on the real file systems.
    """

    def __init__(self, root: str, *, fold_case: bool, decompose: bool) -> None:
        self.root = os.path.realpath(root)
        self.fold_case = fold_case
        self.decompose = decompose

    def canonical(self, path):
        if isinstance(path, int) or path is None:
            return path
        text = os.fsdecode(path)
        if not os.path.isabs(text):
            return path
        if not (text == self.root or text.startswith(self.root + os.sep)):
            return path
        current = self.root
        for part in text[len(self.root) :].split(os.sep):
            if not part or part in ('.', '..'):
                current = os.path.join(current, part) if part else current
                continue
            wanted = _key(part, fold_case=self.fold_case)
            found = None
            try:
                for entry in _REAL_LISTDIR(current):
                    if _key(entry, fold_case=self.fold_case) == wanted:
                        found = entry
                        break
            except OSError:
                pass
            if found is None:
                found = unicodedata.normalize('NFD', part) if self.decompose else part
            current = os.path.join(current, found)
        return current if isinstance(path, str) else os.fsencode(current)


_REAL_LISTDIR = os.listdir
_FOLDED_ONE = ('open', 'mkdir', 'symlink', 'unlink', 'rmdir', 'chmod', 'lstat', 'stat', 'readlink', 'utime', 'lchown')
_FOLDED_TWO = ('link', 'rename', 'replace')


def _install_folding(monkeypatch, fs: FoldingFs) -> FoldingFs:
    for name in _FOLDED_ONE:
        func = getattr(os, name)

        def one(path, *args, _func=func, **kwargs):
            if name_has_dir_fd(kwargs):
                return _func(path, *args, **kwargs)
            return _func(fs.canonical(path), *args, **kwargs)

        monkeypatch.setattr(os, name, one)
    for name in _FOLDED_TWO:
        func = getattr(os, name)

        def two(src, dst, *args, _func=func, **kwargs):
            if name_has_dir_fd(kwargs):
                return _func(src, dst, *args, **kwargs)
            return _func(fs.canonical(src), fs.canonical(dst), *args, **kwargs)

        monkeypatch.setattr(os, name, two)
    return fs


def name_has_dir_fd(kwargs: dict) -> bool:
    return any(kwargs.get(key) is not None for key in ('dir_fd', 'src_dir_fd', 'dst_dir_fd'))


@pytest.fixture
def case_insensitive_fs(monkeypatch):
    """Factory: make ``root`` behave as case-insensitive APFS (macOS's default)."""
    return lambda root: _install_folding(monkeypatch, FoldingFs(str(root), fold_case=True, decompose=False))


@pytest.fixture
def decomposing_fs(monkeypatch):
    """Factory: make ``root`` behave as HFS+: names stored in NFD, looked up by any normal form."""
    return lambda root: _install_folding(monkeypatch, FoldingFs(str(root), fold_case=False, decompose=True))


@pytest.fixture
def linked_root(tmp_path) -> str:
    """A deploy root reached through a symlinked ancestor: /var -> /private/var as on macOS."""
    (tmp_path / 'private' / 'var' / 'www').mkdir(parents=True)
    os.symlink(os.path.join('private', 'var'), tmp_path / 'var')
    return str(tmp_path / 'var' / 'www')


@pytest.fixture
def flock_unsupported(monkeypatch, platform):
    """flock(2) refused as on an NFS mount without locking: ENOTSUP (EOPNOTSUPP on FreeBSD)."""

    def refuse(fd, operation):
        raise platform.error('ENOTSUP')

    monkeypatch.setattr(fcntl, 'flock', refuse)
    return platform


@pytest.fixture
def one_second_timestamps(monkeypatch):
    """Every stat result truncated to whole seconds, as on UFS without nanosecond timestamps."""

    def truncate(result: os.stat_result) -> os.stat_result:
        hidden = {name: getattr(result, name) for name in ('st_blksize', 'st_blocks', 'st_rdev')}
        for field in ('st_atime', 'st_mtime', 'st_ctime'):
            seconds = getattr(result, f'{field}_ns') // 1_000_000_000
            hidden[field] = float(seconds)
            hidden[f'{field}_ns'] = seconds * 1_000_000_000
        return os.stat_result(list(result), hidden)

    for name in ('stat', 'lstat', 'fstat'):
        func = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *args, _func=func, **kwargs: truncate(_func(*args, **kwargs)))
    return truncate


DEPLOY_UID = DEPLOY_GID = 1000


@pytest.fixture
def deploy_user_not_in_group(monkeypatch):
    """The deploy user (uid and gid 1000, no other group) and directories of another group (root's, 0).

    Setting setgid on such a directory fails with EPERM on macOS and the BSDs; Linux drops the bit
    without an error. Which one happens follows ``sys.platform`` (the ``platform`` fixture's).
    """
    monkeypatch.setattr(os, 'geteuid', lambda: DEPLOY_UID)
    monkeypatch.setattr(os, 'getegid', lambda: DEPLOY_GID)
    monkeypatch.setattr(os, 'getgroups', lambda: [DEPLOY_GID])

    def guarded(func, stat_of):
        def chmod(target, mode, *args, **kwargs):
            if mode & 0o2000 and stat_of(target).st_gid != DEPLOY_GID:
                if sys.platform.startswith('linux'):
                    mode &= ~0o2000
                else:
                    raise OSError(errno.EPERM, 'Operation not permitted', None if isinstance(target, int) else target)
            return func(target, mode, *args, **kwargs)

        return chmod

    monkeypatch.setattr(os, 'fchmod', guarded(os.fchmod, os.fstat))
    monkeypatch.setattr(os, 'chmod', guarded(os.chmod, os.stat))
