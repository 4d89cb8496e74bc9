# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Directory packing for ``source=directory``: the controller turns a directory into a tar.gz that the
host's safe extractor (``plugins/module_utils/_extract.py``) unpacks.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and may change
without notice. Controller-side only (the action plugin ``release`` uses it); pure standard library, so
plain pytest tests it.
"""

from __future__ import annotations

import gzip
import os
import stat
import tarfile


class PackError(Exception):
    """A directory could not be packed; ``path`` names the file or directory involved."""

    def __init__(self, message: str, *, path: str | None = None, errno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.errno = errno


def _os_message(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def pack_directory(*, src: str, fileobj, compresslevel: int = 1) -> None:
    """Write a tar.gz of the contents of directory ``src`` (not the directory itself) to ``fileobj``.

    Symlinks are stored as symlinks (the extractor validates them), hard links inside ``src`` as hard-link
    members, and nothing is skipped: a socket, fifo or device makes it fail. Members are in sorted order,
    ownership is zeroed and the gzip header carries no name or time, so the same tree gives the same bytes.
    """
    try:
        st = os.stat(src)
    except FileNotFoundError as exc:
        raise PackError(f'directory {src} does not exist', path=src, errno=exc.errno) from exc
    except OSError as exc:
        raise PackError(f'cannot read directory {src}: {_os_message(exc)}', path=src, errno=exc.errno) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise PackError(f'{src} is not a directory', path=src)
    gz = gzip.GzipFile(filename='', mode='wb', fileobj=fileobj, compresslevel=compresslevel, mtime=0)
    try:
        with tarfile.open(fileobj=gz, mode='w|', format=tarfile.PAX_FORMAT) as tf:
            _pack_tree(tf, os.fspath(src), '', {})
    finally:
        gz.close()


def _pack_tree(tf: tarfile.TarFile, top: str, rel_dir: str, inodes: dict) -> None:
    folder = os.path.join(top, rel_dir) if rel_dir else top
    try:
        with os.scandir(folder) as entries:
            found = sorted(entries, key=lambda e: e.name)
    except OSError as exc:
        raise PackError(f'cannot read directory {folder}: {_os_message(exc)}', path=folder, errno=exc.errno) from exc
    for entry in found:
        rel = f'{rel_dir}/{entry.name}' if rel_dir else entry.name
        full = entry.path
        try:
            st = entry.stat(follow_symlinks=False)
            info = tarfile.TarInfo(rel)
            info.mode = stat.S_IMODE(st.st_mode)
            info.mtime = int(st.st_mtime)
            info.uid = info.gid = 0
            info.uname = info.gname = ''
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(full)
                tf.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in inodes:
                    info.type = tarfile.LNKTYPE
                    info.linkname = inodes[key]
                    tf.addfile(info)
                else:
                    if st.st_nlink > 1:
                        inodes[key] = rel
                    info.size = st.st_size
                    with open(full, 'rb') as handle:
                        tf.addfile(info, handle)
            else:
                raise PackError(f'cannot pack {full}: sockets, fifos and devices are not supported', path=full)
        except OSError as exc:
            raise PackError(f'cannot pack {full}: {_os_message(exc)}', path=full, errno=exc.errno) from exc
        if stat.S_ISDIR(st.st_mode):
            _pack_tree(tf, top, rel, inodes)
