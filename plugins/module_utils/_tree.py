# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The safe tree writer: places directories, files, symlinks and hard links into a destination, with
dedupe against a previous release, and keeps the bookkeeping that makes that safe.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule inside: plain pytest tests it.

The archive readers (``_extract.py``, whose docstring lists what an extraction guarantees) and delta
assembly (``_assemble.py``) feed it members; it never writes through a symlink.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import posixpath
import shutil
import stat

from ansible_collections.atomic.deploy.plugins.module_utils import _copy
from ansible_collections.atomic.deploy.plugins.module_utils._stream import ExtractError

SMALL_FILE = 8 * 1024 * 1024
"""Files up to this size are read whole; larger ones are streamed in ``_copy.CHUNK`` pieces."""

_STAT_KEYS = ('files', 'dirs', 'symlinks', 'hardlinks', 'written', 'linked', 'bytes_written', 'bytes_linked')
_DIR, _FILE, _LINK = 'd', 'f', 'l'
_IMPLICIT_DIR_MODE = 0o755


# Permission bits kept from archive members: no setuid/setgid/sticky, never writable by others.
_MODE_MASK = 0o775


def refuse(raw: str, why: str) -> ExtractError:
    return ExtractError(f'refusing archive member {raw!r}: {why}', path=raw)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mtime_ns(mtime) -> int | None:
    try:
        return round(mtime * 1_000_000_000)
    except (TypeError, ValueError, OverflowError):
        return None


class TreeWriter:
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
            raise refuse(raw, why or 'invalid name')
        if not parts:
            if is_dir:
                return None
            raise refuse(raw, 'empty name after normalisation')
        if self.strip:
            parts = parts[self.strip :]
            if not parts:
                return None
        if parts[0] in self.reserved:
            raise refuse(raw, f'{parts[0]} is reserved for the release itself')
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
                raise refuse(raw, f'parent {cur} is a symlink')
            elif kind != _DIR:
                raise refuse(raw, f'parent {cur} is not a directory')

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
            raise refuse(raw, 'empty symlink target')
        if '\x00' in target:
            raise refuse(raw, 'symlink target contains a nul byte')
        if target.startswith('/'):
            raise refuse(raw, f'absolute symlink target {target}')
        resolved = posixpath.normpath(posixpath.join(rel.rpartition('/')[0], target))
        if resolved == '..' or resolved.startswith('../'):
            raise refuse(raw, f'symlink target {target} points outside the release')
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
            raise refuse(raw, f'hard link target {target} is not an earlier regular file member')
        self.parent(rel, raw)
        self.make_room(rel, for_dir=False)
        source = self.path(target_rel)
        path = self.path(rel)
        if not _copy.try_link(source, path):
            _copy.copy_file(source, path)
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
            if exc.errno not in _copy.LINK_REFUSED:
                raise
            if exc.errno == errno.EXDEV:
                self.can_link = False
            return False
        return True

    def _finish_fd(self, fd: int, path: str, mode: int, mtime) -> None:
        if mode & self.umask:
            os.fchmod(fd, mode)
        ns = _mtime_ns(mtime)
        if ns is not None:
            with contextlib.suppress(OverflowError):
                if _copy.UTIME_FD:
                    os.utime(fd, ns=(ns, ns))
                else:  # pragma: no cover - every supported POSIX host has futimens
                    os.utime(path, ns=(ns, ns), follow_symlinks=False)

    def _write_new(self, path: str, mode: int, mtime, data: bytes) -> None:
        fd = os.open(path, _copy.WRITE_FLAGS, mode)
        try:
            if data:
                _copy.write_all(fd, data)
            self._finish_fd(fd, path, mode, mtime)
        finally:
            os.close(fd)

    def _spool(self, path: str, prev: str | None, *, mode: int, mtime, size: int, read) -> bool:
        """Stream a large member into a new file, comparing with prev on the way; True when linked instead."""
        fd = os.open(path, _copy.WRITE_FLAGS, mode)
        pfd = None
        try:
            same = False
            if prev is not None:
                try:
                    pfd = os.open(prev, _copy.READ_FLAGS)
                    same = True
                except OSError:
                    pfd = None
            left = size
            while left:
                chunk = read(min(_copy.CHUNK, left))
                left -= len(chunk)
                _copy.write_all(fd, chunk)
                if same:
                    same = _copy.read_exact(pfd, len(chunk)) == chunk
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
                if exc.errno not in _copy.LINK_REFUSED:
                    raise
                if exc.errno == errno.EXDEV:
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
                    raise refuse(rel, f'symlink resolves to {real}, outside the release, through other symlinks')
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
    fd = os.open(prev, _copy.READ_FLAGS)
    try:
        return _copy.read_exact(fd, len(data) + 1) == data
    finally:
        os.close(fd)
