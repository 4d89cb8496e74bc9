# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Seeding a new shared path from the release's content (``shared_seed``).

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: plain pytest tests it.

A copy, never a move: the release keeps its content until the shared link replaces it. Every
entry is read through a descriptor opened without following symlinks; a symlink in the release's
content is skipped (reported), never followed nor copied. The copy is made under a temporary name
in the shared parent and put in place with rename(2) (a directory: refused by the kernel over a
non-empty one) or link(2) (a file: never over an existing one), so a seed is never half there and
an existing shared path is never overwritten.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat

from ansible_collections.atomic.deploy.plugins.module_utils import _fs

_CHUNK = 1024 * 1024
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)


class Seeder:
    """Copies release/<rel> to shared/<rel>; directories get the shared mode and owner, files their own
    permission bits without write for others, the shared owner and group."""

    def __init__(self, *, release: str, mode: int, uid: int = -1, gid: int = -1) -> None:
        self.release = release
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.skipped: list[str] = []

    def source(self, rel: str) -> tuple[int, os.stat_result] | None:
        """Open release/<rel> (a directory or a regular file) without following; None when absent or a link."""
        parts = rel.split('/')
        try:
            top = os.open(self.release, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
        except FileNotFoundError:
            return None
        try:
            parent = _fs.descend(dir_fd=top, parts=parts[:-1], path=self.release)
        except FileNotFoundError:
            return None
        except (_fs.SymlinkError, _fs.FileTypeError) as exc:
            self.skipped.append(f'{exc}')
            return None
        finally:
            os.close(top)
        path = os.path.join(self.release, rel)
        try:
            st = _fs.lstat_at(parts[-1], dir_fd=parent)
            if st is None:
                return None
            if stat.S_ISDIR(st.st_mode):
                fd = _fs.open_dir(parts[-1], dir_fd=parent, path=path)
            elif stat.S_ISREG(st.st_mode):
                fd = _fs.open_file(parts[-1], dir_fd=parent, path=path)
            else:
                kind = 'a symlink' if stat.S_ISLNK(st.st_mode) else 'not a directory nor a regular file'
                self.skipped.append(f'{path} in the release is {kind}; not copied')
                return None
            return fd, os.fstat(fd)
        except (_fs.SymlinkError, _fs.FileTypeError) as exc:
            self.skipped.append(f'{exc}; not copied')
            return None
        finally:
            os.close(parent)

    def seed(self, *, source_fd: int, source_path: str, parent_fd: int, name: str, path: str) -> bool:
        """Put a copy of the open ``source_fd`` (release/<rel>) at ``name`` in ``parent_fd`` (``path`` in shared/).

        False when something already stands there: it is left as it is.
        """
        tmp = f'.{name}.seed-{secrets.token_hex(6)}'
        is_dir = stat.S_ISDIR(os.fstat(source_fd).st_mode)
        try:
            if is_dir:
                os.mkdir(tmp, 0o700, dir_fd=parent_fd)
                fd = _fs.open_dir(tmp, dir_fd=parent_fd, path=path)
                try:
                    self._copy_dir(source_fd, fd, source_path)
                    _fs.set_owner_mode(fd, mode=self.mode, uid=self.uid, gid=self.gid)
                finally:
                    os.close(fd)
                try:
                    os.rename(tmp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
                except OSError as exc:
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                        return False
                    raise
                return True
            self._copy_file(source_fd, parent_fd, tmp)
            try:
                os.link(tmp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
            except FileExistsError:
                return False
            return True
        finally:
            _fs.remove_at(tmp, dir_fd=parent_fd, path=os.path.join(os.path.dirname(path), tmp))

    def _copy_file(self, source_fd: int, parent_fd: int, name: str) -> None:
        st = os.fstat(source_fd)
        fd = os.open(name, _CREATE, 0o600, dir_fd=parent_fd)
        try:
            os.lseek(source_fd, 0, os.SEEK_SET)
            while True:
                chunk = os.read(source_fd, _CHUNK)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            _fs.set_owner_mode(fd, mode=stat.S_IMODE(st.st_mode) & 0o775, uid=self.uid, gid=self.gid)
        finally:
            os.close(fd)

    def _copy_dir(self, source_fd: int, dest_fd: int, path: str) -> None:
        """Copy the entries of ``source_fd`` (``path`` in the release) into the new, empty ``dest_fd``."""
        with os.scandir(source_fd) as entries:
            names = sorted(entry.name for entry in entries)
        for name in names:
            where = os.path.join(path, name)
            st = _fs.lstat_at(name, dir_fd=source_fd)
            if st is None:
                continue
            if stat.S_ISDIR(st.st_mode):
                child = _fs.open_dir(name, dir_fd=source_fd, path=where)
                try:
                    os.mkdir(name, 0o700, dir_fd=dest_fd)
                    made = _fs.open_dir(name, dir_fd=dest_fd, path=where)
                    try:
                        self._copy_dir(child, made, where)
                        _fs.set_owner_mode(made, mode=self.mode, uid=self.uid, gid=self.gid)
                    finally:
                        os.close(made)
                finally:
                    os.close(child)
            elif stat.S_ISREG(st.st_mode):
                child = _fs.open_file(name, dir_fd=source_fd, path=where)
                try:
                    self._copy_file(child, dest_fd, name)
                finally:
                    os.close(child)
            else:
                kind = 'a symlink' if stat.S_ISLNK(st.st_mode) else 'not a directory nor a regular file'
                self.skipped.append(f'{where} in the release is {kind}; not copied')
