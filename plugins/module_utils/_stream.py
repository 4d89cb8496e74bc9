# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stream plumbing for reading archives: compression detection, decompression in a helper thread, and
file objects that tarfile can read from without seeking backwards.

PRIVATE to the atomic.deploy collection: this is not a public API and may change without notice.

Pure Python (standard library only, Python 3.8+), no AnsibleModule inside, so plain pytest tests it. The
safe extractor (``_extract.py``) builds on it; it knows nothing about releases or destinations.
"""

from __future__ import annotations

import bz2
import errno as _errno
import queue
import sys
import threading
import time
import zlib

try:
    import lzma
except ImportError:  # pragma: no cover - Python built without liblzma
    lzma = None  # type: ignore[assignment]

zstd = None
if sys.version_info >= (3, 14):  # pragma: no cover - tarfile reads zstd from Python 3.14 on
    try:
        from compression import zstd  # type: ignore[import-not-found,no-redef]
    except ImportError:
        zstd = None

CHUNK = 1024 * 1024
"""Read size of an uncompressed stream."""
RAW_CHUNK = 256 * 1024
"""Read size of a compressed stream, and of the head read to detect the format."""
_OUT_LIMIT = 1024 * 1024
_QUEUE_DEPTH = 8


class ExtractError(Exception):
    """An archive was refused or could not be read or extracted.

    ``path`` is the archive member or the file involved; ``errno`` is set when an OS error caused it.
    """

    def __init__(self, message: str, *, path: str | None = None, errno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.errno = errno


def os_message(exc: OSError) -> str:
    """The OS error text, lower-case at the start like every message of the collection."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def compression(head: bytes) -> str:
    if head[:2] == b'\x1f\x8b':
        return 'gz'
    if head[:3] == b'BZh':
        return 'bz2'
    if head[:6] == b'\xfd7zXZ\x00' or head[:4] == b'\x5d\x00\x00\x80':
        return 'xz'
    if head[:4] == b'\x28\xb5\x2f\xfd':
        return 'zst'
    return 'tar'


def decompressor(kind: str, label: str):
    if kind == 'gz':
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == 'bz2':
        return bz2.BZ2Decompressor()
    if kind == 'xz' and lzma is not None:
        return lzma.LZMADecompressor()
    if kind == 'zst' and zstd is not None:
        return zstd.ZstdDecompressor()
    raise ExtractError(f'cannot read archive {label}: {kind} compression is not available on this host', path=label)


_DECOMPRESS_ERRORS: tuple = (zlib.error, OSError, EOFError, ValueError)
if lzma is not None:
    _DECOMPRESS_ERRORS += (lzma.LZMAError,)
if zstd is not None:  # pragma: no cover - Python 3.14+
    _DECOMPRESS_ERRORS += (zstd.ZstdError,)


def read_raw(raw, size: int, label: str) -> bytes:
    try:
        return raw.read(size)
    except OSError as exc:
        raise ExtractError(f'cannot read archive {label}: {os_message(exc)}', path=label, errno=exc.errno) from exc


def chunks(raw, head: bytes, label: str):
    """Yield the decompressed bytes of ``raw`` (whose first bytes ``head`` were already read) in pieces.

    Concatenated compressed streams (pigz, pbzip2, ``cat a.gz b.gz``) are read as one; a stream that ends
    before its end marker is refused as truncated, and the gzip CRC is checked by zlib.
    """
    kind = compression(head)
    if kind == 'tar':
        data = head
        while data:
            yield data
            data = read_raw(raw, CHUNK, label)
        return
    dec = decompressor(kind, label)
    data = head
    try:
        while True:
            if not data:
                data = read_raw(raw, RAW_CHUNK, label)
                if not data:
                    break
            if kind == 'gz':
                while data:
                    out = dec.decompress(data, _OUT_LIMIT)
                    if out:
                        yield out
                    data = dec.unconsumed_tail
                    if dec.eof:
                        break
            else:
                out = dec.decompress(data, _OUT_LIMIT)
                if out:
                    yield out
                while not dec.eof and not dec.needs_input:
                    out = dec.decompress(b'', _OUT_LIMIT)
                    if out:
                        yield out
                data = b''
            if dec.eof:
                data = dec.unused_data or read_raw(raw, RAW_CHUNK, label)
                if not data or compression(data) != kind:
                    # Trailing bytes that do not start another stream are padding: ignored, as gzip does.
                    return
                dec = decompressor(kind, label)
    except _DECOMPRESS_ERRORS as exc:
        raise ExtractError(f'cannot read archive {label}: invalid {kind} data ({exc})', path=label) from exc
    if not dec.eof:
        raise ExtractError(f'cannot read archive {label}: {kind} stream is truncated', path=label)


class Pump:
    """Run a chunk generator in a helper thread.

    zlib, bz2 and lzma release the GIL while they work, so decompression overlaps with writing files,
    the way ``tar -xz`` overlaps with its ``gzip -d`` child.
    """

    _END = object()

    def __init__(self, gen) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._stop = False
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(gen,), name='atomic-deploy-extract', daemon=True)
        self._thread.start()

    def _run(self, gen) -> None:
        try:
            for chunk in gen:
                if self._stop:
                    return
                self._queue.put(chunk)
            self._queue.put(self._END)
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._queue.put(exc)

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is self._END:
            self._done = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        return item

    def close(self) -> None:
        self._stop = True
        deadline = time.monotonic() + 5
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(0.01)


class ForwardReader:
    """A read-only file object over a chunk iterator that can only seek forwards.

    tarfile's own ``r|`` stream mode re-copies its whole buffer on every read; this keeps one chunk and an
    offset, which is what makes per-member overhead small. It also remembers the last block read so the
    caller can tell a real end-of-archive marker from a truncated or corrupt header, which tarfile accepts
    silently.
    """

    def __init__(self, chunks) -> None:
        self.chunks = chunks
        self._buf = b''
        self._off = 0
        self._pos = 0
        self.last = b''

    def _more(self) -> bool:
        for chunk in self.chunks:
            if chunk:
                self._buf = chunk
                self._off = 0
                return True
        self._buf = b''
        self._off = 0
        return False

    def read(self, size: int = -1) -> bytes:
        buf = self._buf
        off = self._off
        if 0 <= size <= len(buf) - off:
            data = buf[off : off + size]
            self._off = off + size
        else:
            parts = [buf[off:]]
            got = len(buf) - off
            self._buf = b''
            self._off = 0
            while (size < 0 or got < size) and self._more():
                chunk = self._buf
                need = len(chunk) if size < 0 else min(size - got, len(chunk))
                parts.append(chunk if need == len(chunk) else chunk[:need])
                self._off = need
                got += need
            data = b''.join(parts)
        self._pos += len(data)
        self.last = data
        return data

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0 or pos < self._pos:
            raise OSError(_errno.ESPIPE, 'archive stream cannot seek backwards')
        while self._pos < pos:
            avail = len(self._buf) - self._off
            if not avail and not self._more():
                break
            step = min(pos - self._pos, len(self._buf) - self._off)
            self._off += step
            self._pos += step
        return self._pos

    def drain(self) -> None:
        while self._more():
            pass


class Replay:
    """Give back already-read leading bytes before reading the rest of a file."""

    def __init__(self, head: bytes, handle) -> None:
        self._head = head
        self._handle = handle

    def read(self, size: int) -> bytes:
        if self._head:
            data, self._head = self._head, b''
            return data
        return self._handle.read(size)
