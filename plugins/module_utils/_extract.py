# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fast, safe extraction of release archives.

PRIVATE to the atomic.deploy collection: this is not a public API and may change without notice.

Pure Python (standard library only, Python 3.8+), no AnsibleModule inside, so plain pytest tests it.
Reading the bytes (compression, the decompression thread, forward-only file objects) is ``_stream.py``;
placing members into ``dest`` safely is ``_tree.py`` (file writes and copies: ``_copy.py``);
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

import os
import stat
import tarfile
import time
import zipfile
import zlib

from ansible_collections.atomic.deploy.plugins.module_utils import _stream, _tree
from ansible_collections.atomic.deploy.plugins.module_utils._stream import ExtractError

__all__ = ['ExtractError', 'detect_format', 'extract_archive', 'extract_tar_stream']

_ZERO_BLOCK = bytes(tarfile.BLOCKSIZE)
_ZIP_MAGICS = (b'PK\x03\x04', b'PK\x05\x06', b'PK\x07\x08')


class _NotArchiveError(ExtractError):
    """The bytes are not a (valid) tar stream: lets detect_format tell "not an archive" from other failures."""


_os_message = _stream.os_message


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


def _tar_member(
    ex: _tree.TreeWriter, tf: tarfile.TarFile, src: _stream.ForwardReader, member: tarfile.TarInfo, label: str
):
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
        raise _tree.refuse(raw, _describe(member))


def _run_member(ex: _tree.TreeWriter, func, *args) -> None:
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


def _extract_tar(raw, label: str, ex: _tree.TreeWriter) -> dict:
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


def _zip_member(ex: _tree.TreeWriter, zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> None:
    raw = info.filename
    unix = info.external_attr >> 16
    kind = stat.S_IFMT(unix)
    is_dir = raw.endswith('/') or kind == stat.S_IFDIR
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
        raise _tree.refuse(raw, 'device, fifo or other special file')
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


def _extract_zip(archive: str, ex: _tree.TreeWriter) -> dict:
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
    ex = _tree.TreeWriter(
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
    ex = _tree.TreeWriter(
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
