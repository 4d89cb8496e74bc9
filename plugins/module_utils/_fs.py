# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filesystem primitives for atomic.deploy.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. It holds no AnsibleModule code so that plain pytest can test it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import secrets
import shutil
import stat
import sys

# Refuses a target Python older than the modules need, before any module does anything.
from ansible_collections.atomic.deploy.plugins.module_utils import _python  # noqa: F401 pylint: disable=unused-import

# The atomic exchange of two paths, per platform: (libc function, its exchange flag, its AT_FDCWD).
# - Linux >= 3.15, glibc >= 2.28: renameat2(2); RENAME_EXCHANGE is (1 << 1) in <linux/fs.h> and
#   glibc's <stdio.h>; AT_FDCWD is -100 in <fcntl.h>.
# - macOS >= 10.12: renameatx_np(int, const char *, int, const char *, unsigned int) in
#   <sys/stdio.h>, RENAME_SWAP 0x00000002 there; AT_FDCWD is -2 in Darwin's <sys/fcntl.h>.
# - FreeBSD: its renameat2(2) (rename(2) manual: "appeared in FreeBSD 16.0") documents only
#   AT_RENAME_NOREPLACE, no exchange; calling it with Linux's literal 2 would not swap. No entry,
#   so adopting a directory is refused at staging there, as on every platform not listed.
EXCHANGE_CALLS = {
    'linux': ('renameat2', 'RENAME_EXCHANGE', 0x2, -100),
    'darwin': ('renameatx_np', 'RENAME_SWAP', 0x2, -2),
}
# Darwin's <sys/fcntl.h>: F_FULLFSYNC 51 (Python's fcntl exposes it only from 3.12 on).
_DARWIN_F_FULLFSYNC = 51


def unsupported_errnos() -> frozenset:
    """errno values meaning "not supported here": Darwin's ENOTSUP (45) is not its EOPNOTSUPP (102).

    Read at call time (not frozen at import) so the platform tests can put another system's values in.
    """
    return frozenset(getattr(errno, name) for name in ('ENOTSUP', 'EOPNOTSUPP') if hasattr(errno, name))


def nofollow_errnos() -> frozenset:
    """errno values of open(O_NOFOLLOW) on a symlink: ELOOP on Linux and macOS, EMLINK on FreeBSD."""
    return frozenset((errno.ELOOP, errno.EMLINK))


def platform_key() -> str:
    """'linux', 'darwin', 'freebsd' ... (sys.platform without a version suffix)."""
    return 'linux' if sys.platform.startswith('linux') else sys.platform.rstrip('0123456789')


class FsError(Exception):
    """A filesystem operation failed; ``path`` names what it was about."""

    def __init__(self, msg: str, *, path: str | None = None) -> None:
        super().__init__(msg)
        self.path = path


def _full_fsync_command() -> int | None:
    command = getattr(fcntl, 'F_FULLFSYNC', None)
    if command is None and platform_key() == 'darwin':
        command = _DARWIN_F_FULLFSYNC
    return command


def fsync_fd(fd: int) -> None:
    """Make what was written through ``fd`` durable.

    On macOS fsync(2) only hands the data to the drive, which may keep it in its cache (Darwin's
    fsync(2) manual); fcntl(F_FULLFSYNC) asks the drive to flush. Where the file system refuses
    F_FULLFSYNC (ENOTTY, EINVAL, not supported: network and FUSE file systems), plain fsync is
    the best there is.
    """
    command = _full_fsync_command()
    if command is not None:
        try:
            fcntl.fcntl(fd, command)
            return
        except OSError as exc:
            if exc.errno not in {errno.ENOTTY, errno.EINVAL, errno.ENOSYS} | unsupported_errnos():
                raise
    os.fsync(fd)


def fsync_dir(path: str) -> None:
    """Flush a directory so that a rename or create inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    try:
        fsync_fd(fd)
    except OSError as exc:
        # Some filesystems (and macOS for directories) refuse fsync on a directory; the rename
        # itself is still atomic, only its durability is then up to the filesystem.
        if exc.errno not in {errno.EINVAL, errno.EBADF} | unsupported_errnos():
            raise
    finally:
        os.close(fd)


def temp_path(*, directory: str, prefix: str) -> str:
    """A fresh, unpredictable name inside ``directory`` (nothing is created)."""
    return os.path.join(directory, f'{prefix}{secrets.token_hex(6)}')


def lexists(path: str) -> bool:
    return os.path.lexists(path)


def read_link(path: str) -> str | None:
    """The text of the symlink at ``path``, or None when ``path`` is absent or not a symlink."""
    try:
        return os.readlink(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EINVAL, errno.ENOTDIR):
            return None
        raise


def _make_temp_link(*, target: str, directory: str, prefix: str) -> str:
    for _attempt in range(100):
        tmp = temp_path(directory=directory, prefix=prefix)
        try:
            os.symlink(target, tmp)
        except FileExistsError:
            continue
        return tmp
    raise FsError(f'could not create a temporary link in {directory}', path=directory)


def temp_link_prefix(path: str) -> str:
    """Temp links for ``path`` are named ``.<name>.tmp-<random>`` next to it."""
    return f'.{os.path.basename(path)}.tmp-'


def stage_symlink(*, path: str, target: str) -> str:
    """Create a uniquely named temp link next to ``path``; return its path.

    Splitting stage from :func:`commit_symlink` lets a caller prepare the link, wait for an
    agreed instant, and then do nothing but the rename.
    """
    directory = os.path.dirname(path) or '.'
    return _make_temp_link(target=target, directory=directory, prefix=temp_link_prefix(path))


def commit_symlink(*, tmp: str, path: str, fsync: bool = True) -> None:
    """rename(2) ``tmp`` over ``path``: ``path`` is never missing. Removes ``tmp`` on failure."""
    try:
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    if fsync:
        fsync_dir(os.path.dirname(path) or '.')


def swap_symlink(*, path: str, target: str, fsync: bool = True) -> None:
    """Point the symlink ``path`` at ``target`` atomically (temp link + rename)."""
    commit_symlink(tmp=stage_symlink(path=path, target=target), path=path, fsync=fsync)


def discard(path: str) -> None:
    """Remove a file or symlink if it exists; never raises for a missing path."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _libc():
    """The C library, or None where ctypes cannot load it."""
    try:
        return ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
    except OSError:
        return None


def _exchange_call():
    """(function, flag, AT_FDCWD, description) for this platform's exchange, or None."""
    spec = EXCHANGE_CALLS.get(platform_key())
    libc = _libc() if spec is not None else None
    if libc is None:
        return None
    name, flag_name, flag, at_fdcwd = spec
    try:
        func = getattr(libc, name)
    except AttributeError:
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func, flag, at_fdcwd, f'{name}({flag_name})'


def exchange_supported() -> bool:
    return _exchange_call() is not None


def exchange_unsupported_reason(path: str) -> str:
    """Why ``path`` cannot be swapped on this platform, for a refusal before anything is staged."""
    return (
        f'cannot swap {path} for a symlink: this platform ({platform_key()}) has no atomic exchange call '
        '(renameat2 with RENAME_EXCHANGE on Linux, renameatx_np with RENAME_SWAP on macOS); '
        'replace the directory by hand, or deploy to a path that is not a directory yet'
    )


def exchange(*, first: str, second: str) -> None:
    """Atomically swap two paths: renameat2(RENAME_EXCHANGE) on Linux, renameatx_np(RENAME_SWAP) on macOS.

    Raises FsError when the platform or filesystem cannot do it: the caller must then refuse
    rather than fall back to a two-step rename that would leave a window.
    """
    call = _exchange_call()
    if call is None:
        raise FsError(exchange_unsupported_reason(second), path=second)
    func, flag, at_fdcwd, description = call
    rc = func(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), flag)
    if rc != 0:
        err = ctypes.get_errno()
        if err in {errno.ENOSYS, errno.EINVAL} | unsupported_errnos():
            raise FsError(
                f'the filesystem holding {second} does not support {description} ({os.strerror(err).lower()})',
                path=second,
            )
        raise OSError(err, os.strerror(err), second)


def adopt_directory(*, path: str, target: str, fsync: bool = True) -> str:
    """Replace the real directory ``path`` with a symlink to ``target`` with no window.

    The directory is exchanged with a freshly made temp link, so it ends at the temp name,
    which is returned (the backup). Nothing is deleted.
    """
    directory = os.path.dirname(path) or '.'
    tmp = _make_temp_link(target=target, directory=directory, prefix=f'.{os.path.basename(path)}.backup-')
    try:
        exchange(first=tmp, second=path)
    except BaseException:
        discard(tmp)
        raise
    if fsync:
        fsync_dir(directory)
    return tmp


def atomic_write(*, path: str, data: bytes, mode: int = 0o644, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` via a temp file + rename, so readers see old or new, never half."""
    directory = os.path.dirname(path) or '.'
    tmp = temp_path(directory=directory, prefix=f'.{os.path.basename(path)}.tmp-')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0), mode)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fchmod(fd, mode)
            if fsync:
                fsync_fd(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    if fsync:
        fsync_dir(directory)


def append_line(*, path: str, line: bytes, mode: int = 0o640, fsync: bool = True) -> None:
    """Append one line with a single O_APPEND write, then fsync.

    A crash can at worst leave a torn last line, which readers skip; earlier lines are never
    rewritten.
    """
    if not line.endswith(b'\n'):
        line += b'\n'
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0), mode)
    try:
        # A torn line left by an earlier crash must not swallow this one: start on a fresh line.
        size = os.fstat(fd).st_size
        if size:
            last = os.pread(fd, 1, size - 1)
            if last != b'\n':
                line = b'\n' + line
        view = memoryview(line)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if fsync:
            fsync_fd(fd)
    finally:
        os.close(fd)


def is_within(*, root: str, path: str) -> bool:
    """Lexically, is ``path`` ``root`` or below it (both absolute)."""
    root = os.path.normpath(root)
    path = os.path.normpath(path)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def resolve_link_target(*, link: str, text: str) -> str:
    """Where the link text points, lexically, as an absolute normalised path."""
    if os.path.isabs(text):
        return os.path.normpath(text)
    return os.path.normpath(os.path.join(os.path.dirname(link), text))


# --- descriptor-based primitives -----------------------------------------------------------------
#
# Anything under a directory another user can write (shared/, a release's writable dirs) is acted on
# through a file descriptor opened without following a symlink, never by path after a check: between
# an lstat and a chmod(path) that user can swap the entry for a symlink to any file of root's.
# CPython's fd-based shutil.rmtree is the model. All of these work with Python >= 3.8 on Linux,
# macOS and the BSDs (O_NOFOLLOW, O_DIRECTORY and dir_fd support are POSIX.1-2008).

_O_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
_O_DIRECTORY = getattr(os, 'O_DIRECTORY', 0)
_O_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)
_O_NONBLOCK = getattr(os, 'O_NONBLOCK', 0)
_O_NOCTTY = getattr(os, 'O_NOCTTY', 0)
# An O_NOFOLLOW open of a symlink fails with nofollow_errnos() (ELOOP on Linux and macOS, EMLINK on
# FreeBSD), or ENOTDIR when O_DIRECTORY is given too (Linux). What is really there is looked up only
# to word the error.


class SymlinkError(FsError):
    """A symlink stood where a directory or file was to be opened; nothing was followed."""


class FileTypeError(FsError):
    """Something other than the expected kind of file (a directory, a regular file) stood at the path."""


def _refusal(exc: OSError, *, name: str, dir_fd: int | None, path: str, want_dir: bool) -> Exception:
    """The error to raise after an O_NOFOLLOW open of ``name`` failed with ``exc``."""
    if exc.errno not in nofollow_errnos() | {errno.ENOTDIR}:
        return exc
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return exc
    if stat.S_ISLNK(st.st_mode):
        return SymlinkError(f'{path} is a symlink; refusing to follow it', path=path)
    if want_dir and not stat.S_ISDIR(st.st_mode):
        return FileTypeError(f'{path} exists and is not a directory', path=path)
    if exc.errno != errno.ENOTDIR or want_dir:
        # It was a symlink (or not a directory) at the open and is something else now: another process
        # is swapping it. Never follow it; say so rather than show a bare errno.
        return FileTypeError(
            f'{path} changed while it was being opened (another user is replacing it); refusing to follow it, '
            f'check who writes there and run again',
            path=path,
        )
    return exc


def open_dir(name: str, *, dir_fd: int | None = None, path: str | None = None) -> int:
    """Open the directory ``name`` (in ``dir_fd`` when given) without following a symlink at it.

    Use: ``fd = open_dir('shared', dir_fd=root_fd, path=shared_path)``; close ``fd`` when done.
    Raises SymlinkError for a symlink, FileTypeError for a non-directory, FileNotFoundError when
    absent. ``path`` is only used in messages. Only the last component is protected: give a
    single name with ``dir_fd``, or use :func:`descend` for several components.
    """
    path = path or name
    try:
        fd = os.open(name, os.O_RDONLY | _O_NOFOLLOW | _O_DIRECTORY | _O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        raise _refusal(exc, name=name, dir_fd=dir_fd, path=path, want_dir=True) from None
    if not stat.S_ISDIR(os.fstat(fd).st_mode):  # a platform without O_DIRECTORY
        os.close(fd)
        raise FileTypeError(f'{path} exists and is not a directory', path=path)
    return fd


def open_file(name: str, *, dir_fd: int | None = None, path: str | None = None) -> int:
    """Open the regular file ``name`` read-only without following a symlink; return the fd.

    Use it before an fchown/fchmod of an existing file: ``fd = open_file(name, dir_fd=parent_fd,
    path=full)``, then :func:`set_owner_mode` on ``fd``, then close it. O_NONBLOCK keeps a FIFO
    from hanging the open; anything but a regular file is closed again and refused with
    FileTypeError. Raises SymlinkError for a symlink, FileNotFoundError when absent.
    """
    path = path or name
    flags = os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_NOCTTY | _O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        raise _refusal(exc, name=name, dir_fd=dir_fd, path=path, want_dir=False) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileTypeError(f'{path} is not a regular file', path=path)
    return fd


def descend(*, dir_fd: int, parts: list[str], path: str) -> int:
    """Open ``path``/``parts[0]``/.../``parts[-1]`` beneath ``dir_fd``, one component at a time.

    Use: ``fd = descend(dir_fd=root_fd, parts=['shared', 'public'], path=root)``; close ``fd``.
    Each component is opened with :func:`open_dir` relative to the previous one, so a symlink at
    any of them raises SymlinkError naming that component (``path`` is ``dir_fd``'s own path, for
    messages). ``dir_fd`` stays open and owned by the caller; the result is always a new fd (a
    dup of ``dir_fd`` for no parts).
    """
    fd = os.dup(dir_fd)
    current = path
    for part in parts:
        current = os.path.join(current, part)
        try:
            child = open_dir(part, dir_fd=fd, path=current)
        finally:
            os.close(fd)
        fd = child
    return fd


def lstat_at(name: str, *, dir_fd: int) -> os.stat_result | None:
    """lstat ``name`` in ``dir_fd``; None when absent. For deciding what to report, never what to change."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def make_dir(name: str, *, dir_fd: int, path: str) -> tuple[int, bool]:
    """Create the directory ``name`` in ``dir_fd`` if missing (mkdirat, 0700) and open it.

    Use: ``fd, created = make_dir('uploads', dir_fd=parent_fd, path=full)``, then
    :func:`set_owner_mode` on ``fd`` for the wanted owner and mode, then close ``fd``. What is
    opened is never followed: a symlink or file raced in after the mkdir is refused.
    """
    created = False
    try:
        os.mkdir(name, 0o700, dir_fd=dir_fd)
        created = True
    except FileExistsError:
        pass  # made by someone else (another deploy, the app): open_dir checks what it is
    return open_dir(name, dir_fd=dir_fd, path=path), created


def _group_name(gid: int) -> str:
    try:
        import grp  # pylint: disable=import-outside-toplevel

        return f'{grp.getgrgid(gid).gr_name} ({gid})'
    except (ImportError, KeyError):
        return str(gid)


def setgid_refusal(st: os.stat_result, *, mode: int, path: str, gid: int = -1) -> str | None:
    """Why ``mode`` (with the setgid bit) cannot be set on ``path`` by this process, or None.

    ``st`` is what ``path`` is now, ``gid`` the group it is about to get (-1: it keeps its own).
    Only root, or an owner who is in the file's group, may set setgid: macOS and the BSDs refuse
    with EPERM, Linux drops the bit without an error, so the mode would differ again on every
    run. Said once, here, before anything is changed.
    """
    if not mode & stat.S_ISGID or stat.S_IMODE(st.st_mode) & stat.S_ISGID or os.geteuid() == 0:
        return None
    group = st.st_gid if gid == -1 else gid
    if group in set(os.getgroups()) | {os.getegid()}:
        return None
    return (
        f'cannot set the setgid bit of {path} (mode {mode:04o}): the deploy user is not in its group '
        f'{_group_name(group)} (macOS and the BSDs refuse this with "operation not permitted", Linux drops '
        'the bit silently); add the deploy user to that group, set shared_group to a group the deploy user is '
        'in, or drop setgid from the mode (shared_mode or writable_mode 0775)'
    )


def set_owner_mode(fd: int, *, mode: int | None = None, uid: int = -1, gid: int = -1, path: str = '') -> bool:
    """fchown then fchmod the open ``fd`` where they differ (-1 / None: leave as is); True when changed.

    Use only on an fd from :func:`open_dir`, :func:`open_file`, :func:`make_dir` or
    :func:`create_file`. The owner goes first: chown clears setgid on some systems, and mkdir's
    mode is cut by the umask. A setgid bit this process may not set is refused (FsError naming
    ``path``, :func:`setgid_refusal`) before anything is changed.
    """
    st = os.fstat(fd)
    if mode is not None:
        refusal = setgid_refusal(st, mode=mode, path=path or f'descriptor {fd}', gid=gid)
        if refusal:
            raise FsError(refusal, path=path or None)
    changed = False
    if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
        os.fchown(fd, uid, gid)
        changed = True
        st = os.fstat(fd)
    if mode is not None and stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(fd, mode)
        changed = True
    return changed


def create_file(name: str, *, dir_fd: int, mode: int, uid: int = -1, gid: int = -1) -> bool:
    """Create ``name`` in ``dir_fd`` empty (O_CREAT|O_EXCL|O_NOFOLLOW) and set owner/mode through its fd.

    Use: ``if not create_file('.env', dir_fd=parent_fd, mode=0o640, gid=gid): ...`` where False
    means something already stands there; it was not touched (inspect it with :func:`lstat_at`
    or :func:`open_file`). O_EXCL never opens an existing file nor a symlink's target.
    """
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except FileExistsError:
        return False
    try:
        set_owner_mode(fd, mode=mode, uid=uid, gid=gid)
    finally:
        os.close(fd)
    return True


def remove_at(name: str, *, dir_fd: int, path: str) -> list[str]:
    """Remove ``name`` from ``dir_fd`` (a whole tree for a directory) without following a symlink.

    Use: ``failed = remove_at('public', dir_fd=release_fd, path=full)``; an empty list means it
    is gone (or was never there). Every directory is entered through :func:`open_dir`, so a
    symlink swapped in during the walk is unlinked or reported, never followed. Returns the paths
    that could not be removed.
    """
    st = lstat_at(name, dir_fd=dir_fd)
    if st is None:
        return []
    if not stat.S_ISDIR(st.st_mode):
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError:
            return [path]
        return []
    failed: list[str] = []
    try:
        fd = open_dir(name, dir_fd=dir_fd, path=path)
    except (FsError, OSError):
        return [path]
    try:
        with os.scandir(fd) as entries:
            names = [entry.name for entry in entries]
        for child in names:
            failed.extend(remove_at(child, dir_fd=fd, path=os.path.join(path, child)))
    finally:
        os.close(fd)
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except OSError:
        failed.append(path)
    return failed


def ensure_dir(*, path: str, mode: int, uid: int = -1, gid: int = -1) -> bool:
    """Create ``path`` (one level) if missing and enforce mode/owner on it; True when it changed.

    Refuses a symlink at ``path`` (SymlinkError) and a non-directory (FileTypeError): the owner
    and mode are set through a descriptor opened without following. The parent is opened as
    given (it is the caller's own directory).
    """
    parent = os.open(os.path.dirname(path) or '.', os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        fd, created = make_dir(os.path.basename(path), dir_fd=parent, path=path)
    finally:
        os.close(parent)
    try:
        return set_owner_mode(fd, mode=mode, uid=uid, gid=gid, path=path) or created
    finally:
        os.close(fd)


def undeletable(path: str) -> list[str]:
    """Entries under ``path`` (inclusive) this process could not remove, without following links.

    Used before deleting a release so that a tree holding files of another user is refused whole
    rather than left half-deleted.
    """
    problems: list[str] = []
    is_root = hasattr(os, 'geteuid') and os.geteuid() == 0
    uid = os.geteuid() if hasattr(os, 'geteuid') else -1

    def removable_from(parent: str, parent_st: os.stat_result, entry_st: os.stat_result) -> bool:
        if is_root:
            return True
        if not os.access(parent, os.W_OK | os.X_OK):
            return False
        if parent_st.st_mode & stat.S_ISVTX and uid not in (parent_st.st_uid, entry_st.st_uid):
            return False
        return True

    parent = os.path.dirname(path.rstrip(os.sep)) or '.'
    stack = [(path, os.lstat(parent), os.lstat(path))]
    while stack:
        current, parent_st, st = stack.pop()
        if not removable_from(os.path.dirname(current), parent_st, st):
            problems.append(current)
        if stat.S_ISDIR(st.st_mode):
            if not is_root and not os.access(current, os.R_OK | os.W_OK | os.X_OK):
                problems.append(current)
                continue
            try:
                with os.scandir(current) as it:
                    for entry in it:
                        stack.append((entry.path, st, entry.stat(follow_symlinks=False)))
            except OSError:
                problems.append(current)
    return sorted(set(problems))


def remove_tree(path: str) -> list[str]:
    """Delete ``path`` without following symlinks; return the entries that could not be removed.

    A symlink at ``path`` is unlinked, never followed.
    """
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return []
    failed: list[str] = []

    def record(_func, failed_path, _exc):
        failed.append(failed_path)

    # shutil.rmtree uses the fd-based walk on Linux, which never follows a symlink planted in
    # the tree (shutil.rmtree.avoids_symlink_attacks).
    # onerror is deprecated from Python 3.12 on, and onexc does not exist before it. A keyword
    # dict, because the pylint of ansible-core 2.16's sanity test does not see the version check.
    handler = {'onexc': record} if sys.version_info >= (3, 12) else {'onerror': record}
    shutil.rmtree(path, **handler)
    return failed
