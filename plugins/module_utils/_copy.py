# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writing new files of a release without following links: the open flags, whole reads and writes, a
hard link that may be refused, and the copy that replaces it. Shared by the safe extractor
(``_tree.py``) and delta assembly (``_assemble.py``).

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule inside: plain pytest tests it.
"""

from __future__ import annotations

import errno
import os
import stat

CHUNK = 1024 * 1024
"""Bytes read or copied at a time."""

O_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
O_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)
# A new file is always a new inode: never opened through a symlink, never an existing file.
WRITE_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY | O_NOFOLLOW | O_CLOEXEC
READ_FLAGS = os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC
UTIME_FD = os.utime in os.supports_fd
# os.link failures that mean "this file system or file cannot be linked here": copy instead.
LINK_REFUSED = frozenset(
    code
    for code in (
        errno.EMLINK,
        errno.EXDEV,
        errno.EPERM,
        errno.EACCES,
        getattr(errno, 'ENOTSUP', None),
        getattr(errno, 'EOPNOTSUPP', None),
    )
    if code is not None
)


def write_all(fd: int, data: bytes) -> None:
    done = os.write(fd, data)
    if done < len(data):
        view = memoryview(data)
        while done < len(view):
            done += os.write(fd, view[done:])


def read_exact(fd: int, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only at the end of the file."""
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


def try_link(source: str, path: str) -> bool:
    """Hard-link ``source`` (never following a symlink) at ``path``; False when linking is refused."""
    try:
        os.link(source, path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in LINK_REFUSED:
            raise
        return False
    return True


def copy_file(source: str, path: str, *, mode: int | None = None, mtime: int | None = None) -> None:
    """Copy ``source`` into the new file ``path``, opening neither through a symlink.

    The copy gets ``mode`` and ``mtime`` (seconds) when given, else the mode and times of ``source``.
    """
    sfd = os.open(source, READ_FLAGS)
    try:
        st = os.fstat(sfd) if mode is None else None
        fd = os.open(path, WRITE_FLAGS, 0o600)
        try:
            while True:
                data = os.read(sfd, CHUNK)
                if not data:
                    break
                write_all(fd, data)
            if st is None:
                os.fchmod(fd, mode)
                os.utime(fd, (mtime, mtime))
            else:
                os.fchmod(fd, stat.S_IMODE(st.st_mode))
                if UTIME_FD:
                    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(fd)
    finally:
        os.close(sfd)
