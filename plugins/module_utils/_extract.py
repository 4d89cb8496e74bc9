# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fast, safe extraction of release archives.

PRIVATE to the atomic.deploy collection: this is not a public API and may change without notice.

Pure Python (standard library only, Python 3.8+), no AnsibleModule inside, so plain pytest tests it.
Reading the bytes (compression, the decompression thread, forward-only file objects) is ``_stream.py``;
packing a directory on the controller is ``plugins/plugin_utils/_pack.py``.

What an extraction guarantees:

- Every member lands inside ``dest``. Refused (``ExtractError`` naming the member): absolute names, ``..``
  components, names that are empty after normalisation, names with a NUL byte, a top-level name in
  ``reserved``, device/fifo/other special members, symlinks whose target is absolute or leaves ``dest``
  (lexically when the member is read, and again by real resolution once the tree is complete, which catches
  chains of individually harmless links), hard links whose target is not an earlier regular-file member,
  and members whose parent path goes through a symlink member or a non-directory.
- Nothing is written through a symlink: new files are opened with ``O_CREAT|O_EXCL|O_NOFOLLOW``,
  directories are made with ``os.mkdir``, and every parent directory is one this extraction created.
- Modes are ``member.mode & 0o775``: setuid, setgid and sticky bits in an archive are dropped on purpose
  (a release is application code, never a privilege boundary), and so is write permission for others (no
  release file or directory is ever world-writable). Modes are exact, whatever the umask.
  Directories are created 0700 and get their final mode (and mtime, for directory members) at the end,
  deepest first, so a read-only directory in the archive does not block its own extraction.
  Directories the archive implies without a member of their own get 0755.
- Written files get the member's mtime. Ownership in the archive is ignored: files belong to the user
  that extracts.
- A leading ``./`` is not a path component: ``strip_components`` counts the parts left after
  normalisation, and a ``./`` directory member (the archive's own root) is skipped.
- A later member with the same path replaces the earlier entry (a directory stays a directory when both
  are directories).

Dedupe (``dedupe=True`` with an existing ``previous`` release): a regular file whose path in ``previous``
is a regular file (reached without following any symlink) with the same size, the same permission bits,
the same owner and identical content is hard-linked from ``previous`` instead of written. Anything else is
written as a brand-new inode: an existing inode is never written into. A linked file keeps the mtime of the
release that first shipped that content. When ``os.link`` is refused (EMLINK, EXDEV, EPERM...) a copy is
written instead. Because linked files share their inode with ``previous``, a file changed in place in one
release changes in the other: releases are meant to be immutable.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import time
import zipfile
import zlib

from ansible_collections.atomic.deploy.plugins.module_utils import _stream
from ansible_collections.atomic.deploy.plugins.module_utils._stream import ExtractError

__all__ = ['ExtractError', 'detect_format', 'extract_archive', 'extract_tar_stream']

SMALL_FILE = 8 * 1024 * 1024
"""Files up to this size are read whole; larger ones are streamed in ``CHUNK`` pieces."""
CHUNK = 1024 * 1024

_O_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
_O_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)
_WRITE_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY | _O_NOFOLLOW | _O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC
_UTIME_FD = os.utime in os.supports_fd
_LINK_REFUSED = frozenset(
    code
    for code in (
        _errno.EMLINK,
        _errno.EXDEV,
        _errno.EPERM,
        _errno.EACCES,
        getattr(_errno, 'ENOTSUP', None),
        getattr(_errno, 'EOPNOTSUPP', None),
    )
    if code is not None
)
_ZERO_BLOCK = bytes(tarfile.BLOCKSIZE)
_ZIP_MAGICS = (b'PK\x03\x04', b'PK\x05\x06', b'PK\x07\x08')
_STAT_KEYS = ('files', 'dirs', 'symlinks', 'hardlinks', 'written', 'linked', 'bytes_written', 'bytes_linked')
_DIR, _FILE, _LINK = 'd', 'f', 'l'
_IMPLICIT_DIR_MODE = 0o755


# Permission bits kept from archive members: no setuid/setgid/sticky, never writable by others.
_MODE_MASK = 0o775


class _NotArchiveError(ExtractError):
    """The bytes are not a (valid) tar stream: lets detect_format tell "not an archive" from other failures."""


def _refuse(raw: str, why: str) -> ExtractError:
    return ExtractError(f'refusing archive member {raw!r}: {why}', path=raw)


_os_message = _stream.os_message


# --------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_all(fd: int, data: bytes) -> None:
    done = os.write(fd, data)
    if done < len(data):
        view = memoryview(data)
        while done < len(view):
            done += os.write(fd, view[done:])


def _read_exact(fd: int, size: int) -> bytes:
    data = os.read(fd, size)
    if len(data) < size and data:
        parts = [data]
        got = len(data)
        while got < size:
            more = os.read(fd, size - got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        data = b''.join(parts)
    return data


def _mtime_ns(mtime) -> int | None:
    try:
        return round(mtime * 1_000_000_000)
    except (TypeError, ValueError, OverflowError):
        return None


class _Extractor:
    """Places members into ``dest`` and keeps the bookkeeping that makes that safe."""

    def __init__(
        self, *, dest: str, previous: str | None, dedupe: bool, strip_components: int, reserved, digests=None
    ) -> None:
        # path -> sha256 hex of what was written there, for the content manifest (None: not kept)
        self.digests = digests
        if isinstance(strip_components, bool) or not isinstance(strip_components, int) or strip_components < 0:
            raise ExtractError(f'strip_components must be an integer >= 0, got {strip_components!r}')
        dest = os.path.abspath(os.fspath(dest))
        if not os.path.isdir(dest):
            raise ExtractError(f'destination {dest} is not a directory', path=dest)
        self.dest = dest.rstrip('/') or '/'
        self.root = '' if self.dest == '/' else self.dest
        self.strip = strip_components
        self.reserved = frozenset((reserved,) if isinstance(reserved, str) else reserved or ())
        self.previous = None
        if dedupe and previous and os.path.isdir(previous):
            self.previous = os.path.abspath(os.fspath(previous)).rstrip('/')
        self.kinds: dict[str, str] = {}
        self.dirs: dict[str, tuple[int, int | None]] = {}
        self.prev_dirs: dict[str, bool] = {'': True}
        self.stats = dict.fromkeys(_STAT_KEYS, 0)
        self.umask = _current_umask()
        self.uid = os.geteuid() if hasattr(os, 'geteuid') else None
        self.can_link = True
        self.current = self.dest
        self.up_links: set[str] = set()

    # ---- names ---------------------------------------------------------------------------------------------

    @staticmethod
    def _parts(raw: str) -> tuple[list[str] | None, str | None]:
        if not raw:
            return None, 'empty name'
        if '\x00' in raw:
            return None, 'name contains a nul byte'
        if raw.startswith('/'):
            return None, 'absolute path'
        parts = [p for p in raw.split('/') if p and p != '.']
        if '..' in parts:
            return None, "path contains a '..' component"
        return parts, None

    def name(self, raw: str, *, is_dir: bool) -> str | None:
        """Return the member's path relative to dest, or None when the member is to be skipped."""
        parts, why = self._parts(raw)
        if parts is None:
            raise _refuse(raw, why or 'invalid name')
        if not parts:
            if is_dir:
                return None
            raise _refuse(raw, 'empty name after normalisation')
        if self.strip:
            parts = parts[self.strip :]
            if not parts:
                return None
        if parts[0] in self.reserved:
            raise _refuse(raw, f'{parts[0]} is reserved for the release itself')
        return '/'.join(parts)

    def path(self, rel: str) -> str:
        return self.root + '/' + rel

    # ---- tree bookkeeping ----------------------------------------------------------------------------------

    def _mkdir(self, rel: str) -> None:
        path = self.path(rel)
        os.mkdir(path, 0o700)
        if self.umask & 0o700:
            os.chmod(path, 0o700)

    def parent(self, rel: str, raw: str) -> None:
        """Make sure every parent of rel is a real directory this extraction created."""
        cut = rel.rfind('/')
        if cut < 0 or rel[:cut] in self.dirs:
            return
        cur = ''
        for part in rel.split('/')[:-1]:
            cur = cur + '/' + part if cur else part
            kind = self.kinds.get(cur)
            if kind is None:
                self._mkdir(cur)
                self.kinds[cur] = _DIR
                self.dirs[cur] = (_IMPLICIT_DIR_MODE, None)
            elif kind == _LINK:
                raise _refuse(raw, f'parent {cur} is a symlink')
            elif kind != _DIR:
                raise _refuse(raw, f'parent {cur} is not a directory')

    def make_room(self, rel: str, *, for_dir: bool) -> bool:
        """Remove an earlier entry at rel; True when it is a directory that stays (for_dir)."""
        kind = self.kinds.get(rel)
        if kind is None:
            return False
        if kind == _DIR:
            if for_dir:
                return True
            shutil.rmtree(self.path(rel))
            prefix = rel + '/'
            self.kinds = {k: v for k, v in self.kinds.items() if not k.startswith(prefix)}
            self.dirs = {k: v for k, v in self.dirs.items() if not k.startswith(prefix)}
            del self.dirs[rel]
        else:
            os.unlink(self.path(rel))
        del self.kinds[rel]
        return False

    # ---- members -------------------------------------------------------------------------------------------

    def add_dir(self, rel: str, raw: str, *, mode: int, mtime) -> None:
        self.current = self.path(rel)
        self.parent(rel, raw)
        if not self.make_room(rel, for_dir=True):
            self._mkdir(rel)
            self.kinds[rel] = _DIR
        self.dirs[rel] = (mode & _MODE_MASK, _mtime_ns(mtime))
        self.stats['dirs'] += 1

    def add_symlink(self, rel: str, raw: str, *, target: str) -> None:
        self.current = self.path(rel)
        if not target:
            raise _refuse(raw, 'empty symlink target')
        if '\x00' in target:
            raise _refuse(raw, 'symlink target contains a nul byte')
        if target.startswith('/'):
            raise _refuse(raw, f'absolute symlink target {target}')
        resolved = posixpath.normpath(posixpath.join(rel.rpartition('/')[0], target))
        if resolved == '..' or resolved.startswith('../'):
            raise _refuse(raw, f'symlink target {target} points outside the release')
        self.parent(rel, raw)
        self.make_room(rel, for_dir=False)
        os.symlink(target, self.path(rel))
        self.kinds[rel] = _LINK
        if '..' in target.split('/'):
            # Only a link that climbs can leave dest through other links: finish() resolves these for real.
            self.up_links.add(rel)
        self.stats['symlinks'] += 1

    def add_hardlink(self, rel: str, raw: str, *, target: str) -> None:
        self.current = self.path(rel)
        parts, _why = self._parts(target)
        target_rel = '/'.join(parts[self.strip :]) if parts else ''
        if not target_rel or self.kinds.get(target_rel) != _FILE or target_rel == rel:
            raise _refuse(raw, f'hard link target {target} is not an earlier regular file member')
        self.parent(rel, raw)
        self.make_room(rel, for_dir=False)
        source = self.path(target_rel)
        path = self.path(rel)
        try:
            os.link(source, path, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in _LINK_REFUSED:
                raise
            _copy_file(source, path)
        self.kinds[rel] = _FILE
        if self.digests is not None and target_rel in self.digests:
            self.digests[rel] = self.digests[target_rel]
        self.stats['hardlinks'] += 1

    def add_file(self, rel: str, raw: str, *, mode: int, mtime, size: int, read) -> None:
        if self.digests is not None:
            hasher = hashlib.sha256()
            unhashed = read

            def read(size: int) -> bytes:
                data = unhashed(size)
                hasher.update(data)
                return data

            self.digests.pop(rel, None)
            self._add_file(rel, raw, mode=mode, mtime=mtime, size=size, read=read)
            self.digests[rel] = hasher.hexdigest()
        else:
            self._add_file(rel, raw, mode=mode, mtime=mtime, size=size, read=read)

    def _add_file(self, rel: str, raw: str, *, mode: int, mtime, size: int, read) -> None:
        self.current = self.path(rel)
        self.parent(rel, raw)
        self.make_room(rel, for_dir=False)
        mode &= _MODE_MASK
        path = self.path(rel)
        prev = self._candidate(rel, mode, size)
        stats = self.stats
        stats['files'] += 1
        if size <= SMALL_FILE:
            data = read(size)
            if prev is not None and _same_content(prev, data) and self._link(prev, path):
                stats['linked'] += 1
                stats['bytes_linked'] += size
            else:
                self._write_new(path, mode, mtime, data)
                stats['written'] += 1
                stats['bytes_written'] += size
        elif self._spool(path, prev, mode=mode, mtime=mtime, size=size, read=read):
            stats['linked'] += 1
            stats['bytes_linked'] += size
        else:
            stats['written'] += 1
            stats['bytes_written'] += size
        self.kinds[rel] = _FILE

    # ---- files ---------------------------------------------------------------------------------------------

    def _candidate(self, rel: str, mode: int, size: int) -> str | None:
        """The file in previous this member may share an inode with, judged on metadata only."""
        if self.previous is None or not self.can_link:
            return None
        cut = rel.rfind('/')
        if not self._prev_dir_ok(rel[:cut] if cut >= 0 else ''):
            return None
        path = self.previous + '/' + rel
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if (
            not stat.S_ISREG(st.st_mode)
            or st.st_size != size
            or stat.S_IMODE(st.st_mode) != mode
            or (self.uid is not None and st.st_uid != self.uid)
        ):
            return None
        return path

    def _prev_dir_ok(self, rel: str) -> bool:
        """True when previous/rel is a directory reached without following a symlink (e.g. a shared link)."""
        ok = self.prev_dirs.get(rel)
        if ok is None:
            cut = rel.rfind('/')
            ok = self._prev_dir_ok(rel[:cut] if cut >= 0 else '')
            if ok:
                try:
                    ok = stat.S_ISDIR(os.lstat(self.previous + '/' + rel).st_mode)
                except OSError:
                    ok = False
            self.prev_dirs[rel] = ok
        return ok

    def _link(self, prev: str, path: str) -> bool:
        try:
            os.link(prev, path, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in _LINK_REFUSED:
                raise
            if exc.errno == _errno.EXDEV:
                self.can_link = False
            return False
        return True

    def _finish_fd(self, fd: int, path: str, mode: int, mtime) -> None:
        if mode & self.umask:
            os.fchmod(fd, mode)
        ns = _mtime_ns(mtime)
        if ns is not None:
            with contextlib.suppress(OverflowError):
                if _UTIME_FD:
                    os.utime(fd, ns=(ns, ns))
                else:  # pragma: no cover - every supported POSIX host has futimens
                    os.utime(path, ns=(ns, ns), follow_symlinks=False)

    def _write_new(self, path: str, mode: int, mtime, data: bytes) -> None:
        fd = os.open(path, _WRITE_FLAGS, mode)
        try:
            if data:
                _write_all(fd, data)
            self._finish_fd(fd, path, mode, mtime)
        finally:
            os.close(fd)

    def _spool(self, path: str, prev: str | None, *, mode: int, mtime, size: int, read) -> bool:
        """Stream a large member into a new file, comparing with prev on the way; True when linked instead."""
        fd = os.open(path, _WRITE_FLAGS, mode)
        pfd = None
        try:
            same = False
            if prev is not None:
                try:
                    pfd = os.open(prev, _READ_FLAGS)
                    same = True
                except OSError:
                    pfd = None
            left = size
            while left:
                chunk = read(min(CHUNK, left))
                left -= len(chunk)
                _write_all(fd, chunk)
                if same:
                    same = _read_exact(pfd, len(chunk)) == chunk
            if same:
                same = os.read(pfd, 1) == b''
            self._finish_fd(fd, path, mode, mtime)
        finally:
            os.close(fd)
            if pfd is not None:
                os.close(pfd)
        return same and self._replace_with_link(prev, path)

    def _replace_with_link(self, prev: str, path: str) -> bool:
        """Swap the file just written for a link to prev; keep the written copy when linking is refused."""
        folder = path.rpartition('/')[0]
        while True:
            temp = f'{folder}/.atomic-deploy-dedupe-{os.urandom(6).hex()}'
            try:
                os.link(prev, temp, follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in _LINK_REFUSED:
                    raise
                if exc.errno == _errno.EXDEV:
                    self.can_link = False
                return False
            try:
                os.rename(temp, path)
            except OSError:
                os.unlink(temp)
                raise
            return True

    # ---- end -----------------------------------------------------------------------------------------------

    def finish(self) -> dict:
        links = sorted(rel for rel in self.up_links if self.kinds.get(rel) == _LINK)
        if links:
            real_dest = os.path.realpath(self.dest)
            inside = real_dest.rstrip('/') + '/'
            for rel in links:
                real = os.path.realpath(self.path(rel))
                if real != real_dest and not real.startswith(inside):
                    # The caller removes the partial release, but never leave an escaping link behind meanwhile.
                    os.unlink(self.path(rel))
                    raise _refuse(rel, f'symlink resolves to {real}, outside the release, through other symlinks')
        for rel in sorted(self.dirs, key=lambda r: r.count('/'), reverse=True):
            mode, ns = self.dirs[rel]
            path = self.path(rel)
            if ns is not None:
                with contextlib.suppress(OverflowError):
                    os.utime(path, ns=(ns, ns), follow_symlinks=False)
            if mode != 0o700:
                os.chmod(path, mode)
        return dict(self.stats)


def _same_content(prev: str, data: bytes) -> bool:
    fd = os.open(prev, _READ_FLAGS)
    try:
        return _read_exact(fd, len(data) + 1) == data
    finally:
        os.close(fd)


def _copy_file(source: str, path: str) -> None:
    """Copy a file already in dest (fallback for a hard-link member that cannot be linked)."""
    sfd = os.open(source, _READ_FLAGS)
    try:
        st = os.fstat(sfd)
        fd = os.open(path, _WRITE_FLAGS, 0o600)
        try:
            while True:
                data = os.read(sfd, CHUNK)
                if not data:
                    break
                _write_all(fd, data)
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            if _UTIME_FD:
                os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(fd)
    finally:
        os.close(sfd)


# --------------------------------------------------------------------------------------------------------------
# Archive formats
# --------------------------------------------------------------------------------------------------------------


def _describe(member: tarfile.TarInfo) -> str:
    if member.ischr():
        return 'character device'
    if member.isblk():
        return 'block device'
    if member.isfifo():
        return 'fifo'
    return f'unsupported member type {member.type!r}'


def _tar_member(ex: _Extractor, tf: tarfile.TarFile, src: _stream.ForwardReader, member: tarfile.TarInfo, label: str):
    raw = member.name
    if member.isreg():
        rel = ex.name(raw, is_dir=False)
        if rel is None:
            return
        if member.sparse is None:
            src.seek(member.offset_data)
            stream = src
        else:
            stream = tf.extractfile(member)

        def read(size: int) -> bytes:
            try:
                data = stream.read(size)
            except tarfile.TarError as exc:
                raise ExtractError(f'cannot read member {raw!r} of archive {label}: {exc}', path=raw) from exc
            if len(data) != size:
                raise ExtractError(f'cannot read member {raw!r} of archive {label}: archive is truncated', path=raw)
            return data

        ex.add_file(rel, raw, mode=member.mode, mtime=member.mtime, size=member.size, read=read)
    elif member.isdir():
        rel = ex.name(raw, is_dir=True)
        if rel is not None:
            ex.add_dir(rel, raw, mode=member.mode, mtime=member.mtime)
    elif member.issym():
        rel = ex.name(raw, is_dir=False)
        if rel is not None:
            ex.add_symlink(rel, raw, target=member.linkname)
    elif member.islnk():
        rel = ex.name(raw, is_dir=False)
        if rel is not None:
            ex.add_hardlink(rel, raw, target=member.linkname)
    else:
        raise _refuse(raw, _describe(member))


def _run_member(ex: _Extractor, func, *args) -> None:
    try:
        func(*args)
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) else ex.current
        raise ExtractError(f'cannot extract {where}: {_os_message(exc)}', path=where, errno=exc.errno) from exc


def _open_tar(raw, label: str, *, threaded: bool) -> tuple[tarfile.TarFile, _stream.ForwardReader, _stream.Pump | None]:
    head = _stream.read_raw(raw, _stream.RAW_CHUNK, label)
    if not head:
        raise ExtractError(f'cannot read archive {label}: file is empty', path=label)
    gen = _stream.chunks(raw, head, label)
    pump = _stream.Pump(gen) if threaded else None
    src = _stream.ForwardReader(pump if pump is not None else gen)
    try:
        tf = tarfile.TarFile(fileobj=src, mode='r')
    except tarfile.TarError as exc:
        if pump is not None:
            pump.close()
        raise _NotArchiveError(f'cannot read archive {label}: not a tar archive ({exc})', path=label) from exc
    except BaseException:
        if pump is not None:
            pump.close()
        raise
    return tf, src, pump


def _extract_tar(raw, label: str, ex: _Extractor) -> dict:
    tf, src, pump = _open_tar(raw, label, threaded=True)
    try:
        last = None
        while True:
            try:
                member = tf.next()
            except tarfile.TarError as exc:
                raise ExtractError(f'cannot read archive {label}: {exc}', path=label) from exc
            if member is None:
                break
            # tarfile keeps every member it has read; nothing here looks back, so keep memory flat.
            tf.members.clear()
            last = member.name
            _run_member(ex, _tar_member, ex, tf, src, member, label)
        if src.last != _ZERO_BLOCK:
            after = f' after member {last!r}' if last is not None else ''
            raise ExtractError(f'cannot read archive {label}: archive is truncated or corrupt{after}', path=label)
        src.drain()
    finally:
        if pump is not None:
            pump.close()
    try:
        return ex.finish()
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) else ex.dest
        raise ExtractError(f'cannot extract {where}: {_os_message(exc)}', path=where, errno=exc.errno) from exc


def _zip_member(ex: _Extractor, zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> None:
    raw = info.filename
    unix = info.external_attr >> 16
    kind = stat.S_IFMT(unix)
    is_dir = raw.endswith('/') or kind == stat.S_IFDIR
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
        raise _refuse(raw, 'device, fifo or other special file')
    rel = ex.name(raw, is_dir=is_dir)
    if rel is None:
        return
    try:
        mtime = time.mktime((*info.date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        mtime = None
    mode = stat.S_IMODE(unix) or (0o755 if is_dir else 0o644)

    def read_all(size: int = -1) -> bytes:
        try:
            with zf.open(info) as handle:
                return handle.read(size)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
            raise ExtractError(f'cannot read member {raw!r} of archive {label}: {exc}', path=raw) from exc

    if is_dir:
        ex.add_dir(rel, raw, mode=mode, mtime=mtime)
    elif kind == stat.S_IFLNK:
        ex.add_symlink(rel, raw, target=os.fsdecode(read_all()))
    else:
        handle = None

        def read(size: int) -> bytes:
            nonlocal handle
            try:
                if handle is None:
                    handle = zf.open(info)
                data = handle.read(size)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
                raise ExtractError(f'cannot read member {raw!r} of archive {label}: {exc}', path=raw) from exc
            if len(data) != size:
                raise ExtractError(f'cannot read member {raw!r} of archive {label}: archive is truncated', path=raw)
            return data

        try:
            ex.add_file(rel, raw, mode=mode, mtime=mtime, size=info.file_size, read=read)
        finally:
            if handle is not None:
                handle.close()


def _extract_zip(archive: str, ex: _Extractor) -> dict:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise ExtractError(f'cannot read archive {archive}: {exc}', path=archive) from exc
    except OSError as exc:
        raise ExtractError(f'cannot read archive {archive}: {_os_message(exc)}', path=archive, errno=exc.errno) from exc
    with zf:
        for info in zf.infolist():
            _run_member(ex, _zip_member, ex, zf, info, archive)
    try:
        return ex.finish()
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) else ex.dest
        raise ExtractError(f'cannot extract {where}: {_os_message(exc)}', path=where, errno=exc.errno) from exc


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def detect_format(path: str) -> str:
    """Return ``tar`` (uncompressed or gz/bz2/xz compressed, zstd where Python has it) or ``zip``."""
    try:
        with open(path, 'rb') as handle:
            head = handle.read(_stream.RAW_CHUNK)
            if head[:4] in _ZIP_MAGICS:
                return 'zip'
            if not head:
                raise ExtractError(f'{path} is empty, not a tar or zip archive', path=path)
            tf, _src, _pump = _open_tar(_stream.Replay(head, handle), path, threaded=False)
            tf.close()
            return 'tar'
    except OSError as exc:
        raise ExtractError(f'cannot read archive {path}: {_os_message(exc)}', path=path, errno=exc.errno) from exc
    except _NotArchiveError as exc:
        raise ExtractError(f'{path} is not a tar or zip archive', path=path) from exc


def extract_archive(
    *,
    archive: str,
    dest: str,
    previous: str | None = None,
    dedupe: bool = True,
    strip_components: int = 0,
    reserved: tuple[str, ...] = ('.release.json', '.release.manifest.json'),
    digests: dict | None = None,
) -> dict:
    """Extract a tar (any compression) or zip archive into the existing directory ``dest``; return stats."""
    fmt = detect_format(archive)
    ex = _Extractor(
        dest=dest,
        previous=previous,
        dedupe=dedupe,
        strip_components=strip_components,
        reserved=reserved,
        digests=digests,
    )
    if fmt == 'zip':
        return _extract_zip(archive, ex)
    try:
        with open(archive, 'rb', buffering=0) as raw:
            return _extract_tar(raw, archive, ex)
    except OSError as exc:
        raise ExtractError(f'cannot read archive {archive}: {_os_message(exc)}', path=archive, errno=exc.errno) from exc


def extract_tar_stream(
    *,
    fileobj,
    dest: str,
    previous: str | None = None,
    dedupe: bool = True,
    strip_components: int = 0,
    reserved: tuple[str, ...] = ('.release.json', '.release.manifest.json'),
    digests: dict | None = None,
) -> dict:
    """Extract a tar stream read sequentially from ``fileobj`` (e.g. ``git archive`` output on a pipe)."""
    ex = _Extractor(
        dest=dest,
        previous=previous,
        dedupe=dedupe,
        strip_components=strip_components,
        reserved=reserved,
        digests=digests,
    )
    label = getattr(fileobj, 'name', None)
    if not isinstance(label, str):
        label = '<stream>'
    return _extract_tar(fileobj, label, ex)
