# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of delta staging: the artifact's manifest, and the bundle of missing content.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. Standard library only; plain pytest tests it.

Ansible forks a worker per host per task, so nothing computed in one worker is seen by another.
The manifest and the bundles are kept in a file cache (``$TMPDIR/atomic-deploy-<uid>/``, mode
0700), keyed by the artifact's identity, and built under ``flock(2)``: the first worker builds,
the others wait and read. A bundle is keyed by the artifact and the set of missing content, so
hosts that are on the same release share one bundle.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import tempfile
import time

from ansible_collections.atomic.deploy.plugins.module_utils import _live, _manifest
from ansible_collections.atomic.deploy.plugins.plugin_utils import _tar_manifest

PREFIX_LEN = 16
"""Hex digits of each content digest a host reports (64 bits: a collision is ~1e-12 at 5,000 files)."""
CACHE_FORMAT = 1
MAX_AGE = 2 * 86400


def cache_dir() -> str:
    path = os.environ.get('ATOMIC_DEPLOY_DELTA_CACHE') or os.path.join(
        tempfile.gettempdir(), f'atomic-deploy-{os.getuid()}'
    )
    os.makedirs(path, 0o700, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
        raise _manifest.ManifestError(f'delta cache {path} is not a private directory of this user', path=path)
    return path


@contextlib.contextmanager
def _locked(path: str):
    fd = os.open(path + '.lock', os.O_RDWR | os.O_CREAT | getattr(os, 'O_CLOEXEC', 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _atomic(path: str, data: bytes) -> None:
    tmp = f'{path}.tmp-{os.getpid()}-{os.urandom(4).hex()}'
    with open(tmp, 'wb') as handle:
        handle.write(data)
    os.replace(tmp, path)


def identity(*, path: str, kind: str, strip_components: int = 0, drop_macos_metadata: bool = False) -> str:
    """A key that changes whenever the artifact's bytes may have changed (ctime cannot be set back)."""
    dropped = '\0drop-macos-metadata' if drop_macos_metadata else ''
    h = hashlib.sha256(f'{CACHE_FORMAT}\0{kind}\0{strip_components}{dropped}\0{os.path.realpath(path)}\0'.encode())
    if kind == 'archive':
        st = os.stat(path)
        h.update(repr(_manifest.stat_key(st)).encode())
        return h.hexdigest()
    for top, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files) + dirs:
            full = os.path.join(top, name)
            st = os.lstat(full)
            h.update(
                f'{os.path.relpath(full, path)}\0{st.st_mode}\0{_manifest.stat_key(st)}\n'.encode(
                    'utf-8', 'surrogateescape'
                )
            )
    return h.hexdigest()


def _sweep(directory: str) -> None:
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            with contextlib.suppress(OSError):
                if now - entry.stat(follow_symlinks=False).st_mtime > MAX_AGE:
                    os.unlink(entry.path)


def artifact_manifest(
    *, path: str, kind: str, strip_components: int = 0, drop_macos_metadata: bool = False
) -> dict | None:
    """{'entries', 'digest', 'key', 'path'} of a controller artifact, or None when it has none.

    None for a zip archive, or a tar the extractor would refuse: the caller then sends the
    artifact whole and the host reports the problem as it always did.
    """
    how = dict(kind=kind, strip_components=strip_components, drop_macos_metadata=drop_macos_metadata)
    key = identity(path=path, **how)
    directory = cache_dir()
    cached = os.path.join(directory, f'{key}.manifest.json')
    with _locked(cached):
        try:
            with open(cached, 'rb') as handle:
                doc = json.loads(handle.read().decode('ascii'))
            if doc.get('digest') == _manifest.digest(doc.get('entries') or []):
                doc['path'] = cached
                return doc if doc['entries'] is not None else None
        except (OSError, ValueError):
            pass
        _sweep(directory)
        entries = _build(path=path, **how)
        if identity(path=path, **how) != key:
            return None  # changed while read: use it whole this time, never cache it
        doc = {'key': key, 'entries': entries, 'digest': _manifest.digest(entries or [])}
        data = json.dumps(doc, separators=(',', ':')).encode('ascii')
        _atomic(cached, data)
        if entries is not None:
            # Also by content digest: a later deploy can then send the difference from this one.
            _atomic(_by_digest(directory, doc['digest']), data)
        doc['path'] = cached
        return doc if entries is not None else None


def _build(*, path: str, kind: str, strip_components: int, drop_macos_metadata: bool) -> list | None:
    if kind == 'directory':
        try:
            entries, _records = _manifest.from_tree(root=path, drop_macos_metadata=drop_macos_metadata)
        except _manifest.ManifestError:
            return None
        for e in entries:
            if e[1] != _manifest.LINK:
                e[2] &= _manifest.MODE_MASK
        return entries
    with open(path, 'rb') as handle:
        head = handle.read(4)
        if head[:2] == b'PK':
            return None
        handle.seek(0)
        try:
            return _tar_manifest.from_tar(
                fileobj=handle, strip_components=strip_components, drop_macos_metadata=drop_macos_metadata
            )
        except _manifest.ManifestError:
            return None


def _by_digest(directory: str, value: str) -> str:
    return os.path.join(directory, f'{value.partition(":")[2]}.entries.json')


def known_entries(value: str) -> list | None:
    """Entries of a manifest this controller computed before (any artifact), by digest."""
    if not isinstance(value, str) or not value.startswith('sha256:') or len(value) != 71:
        return None
    try:
        with open(_by_digest(cache_dir(), value), 'rb') as handle:
            doc = json.loads(handle.read().decode('ascii'))
    except (OSError, ValueError):
        return None
    entries = doc.get('entries') if isinstance(doc, dict) else None
    return entries if isinstance(entries, list) and _manifest.digest(entries) == value else None


def parse_have(text) -> set:
    if not isinstance(text, str):
        return set()
    return {text[i : i + PREFIX_LEN] for i in range(0, len(text) - PREFIX_LEN + 1, PREFIX_LEN)}


def format_have(digests) -> str:
    return ''.join(sorted({d[:PREFIX_LEN] for d in digests}))


def missing(entries: list, have: set) -> set:
    return {d for d in _manifest.content_digests(entries) if d[:PREFIX_LEN] not in have}


def bundle(*, path: str, kind: str, strip_components: int, manifest: dict, need: set, bases=()) -> str:
    """Path of a cached tar.gz holding the manifest and the content in ``need``, built once per set.

    With ``bases`` (manifest digests of the host's complete releases, newest first), the manifest
    is sent as its difference from the first one this controller knows: a few entries instead of
    one per file.
    """
    base = None
    for value in bases or ():
        entries = known_entries(value)
        if entries is not None:
            base = (value, entries)
            break
    want = hashlib.sha256('\n'.join(sorted(need) + [base[0] if base else '']).encode('ascii')).hexdigest()[:32]
    target = os.path.join(cache_dir(), f'{manifest["key"]}.{want}.bundle.tar.gz')
    with _locked(target):
        if os.path.isfile(target):
            os.utime(target)
            return target
        tmp = f'{target}.tmp-{os.getpid()}'
        try:
            with open(tmp, 'wb') as raw:
                _write_bundle(raw, path=path, kind=kind, manifest=manifest, need=need, base=base)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return target


def _member(name: str, size: int, mtime: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ''
    return info


def _write_bundle(raw, *, path, kind, manifest, need, base) -> None:
    if base is not None:
        body = dict(_manifest.delta_of(base[1], manifest['entries']), base=base[0])
    else:
        body = {'entries': manifest['entries']}
    doc = json.dumps(dict(body, digest=manifest['digest']), separators=(',', ':'))
    data = doc.encode('ascii')
    gz = gzip.GzipFile(filename='', mode='wb', fileobj=raw, compresslevel=6, mtime=0)
    try:
        with tarfile.open(fileobj=gz, mode='w|', format=tarfile.PAX_FORMAT) as out:
            out.addfile(_member('manifest.json', len(data)), io.BytesIO(data))
            left = set(need)
            if kind == 'directory':
                for e in manifest['entries']:
                    if e[1] == _manifest.FILE and e[4] in left:
                        left.discard(e[4])
                        with open(os.path.join(path, e[0]), 'rb') as handle:
                            out.addfile(_member(f'objects/{e[4]}', e[3], e[5]), handle)
            else:
                _objects_from_tar(out, path=path, left=left)
            if left:
                raise _manifest.ManifestError(f'artifact {path} changed while it was packed', path=path)
    finally:
        gz.close()


def _objects_from_tar(out, *, path: str, left: set) -> None:
    with open(path, 'rb') as handle, tarfile.open(fileobj=handle, mode='r|*') as tf:
        for member in tf:
            tf.members = []
            if not member.isreg() or not left:
                continue
            src = tf.extractfile(member)
            spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)
            with spool:
                h = hashlib.sha256()
                while True:
                    data = src.read(_manifest.CHUNK)
                    if not data:
                        break
                    h.update(data)
                    spool.write(data)
                value = h.hexdigest()
                if value in left:
                    left.discard(value)
                    spool.seek(0)
                    out.addfile(_member(f'objects/{value}', member.size, int(member.mtime)), spool)


def compact(source: str) -> str:
    """``source`` without docstrings, comments and blank lines: bytes on the wire of every deploy, and
    nothing to the program. A docstring in a class or function becomes ``pass`` (a body may hold nothing
    else)."""
    import ast

    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, 'body', None)
        if not isinstance(body, list) or not body:
            continue
        first = body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            indent = lines[first.lineno - 1][: first.col_offset]
            # The module's own docstring goes: nothing may come before ``from __future__``.
            lines[first.lineno - 1] = '' if isinstance(node, ast.Module) else indent + 'pass'
            for index in range(first.lineno, first.end_lineno):
                lines[index] = ''
    return '\n'.join(line for line in lines if line.strip() and not line.lstrip().startswith('#')) + '\n'


def live_check_program(*, root: str, release_id: str, content_digest: str, checksum: str | None) -> tuple[str, str]:
    """(program, argument): the live check (``module_utils/_live.py`` after ``module_utils/_manifest.py``,
    both read from the collection's files) for ``python - ARGUMENT``.

    It runs without AnsiballZ (about 8 kB on the wire instead of about 150 kB for a module run),
    so a no-op re-deploy of the live release costs almost nothing. Anything but "live, same
    content" falls through to the release module, which applies the full rules.
    """
    parts = []
    for module in (_manifest, _live):
        # The module's own loader reads its file (the collection loader under Ansible, a plain one in tests).
        data = module.__loader__.get_data(module.__file__)
        if not data:
            raise OSError(f'cannot read {module.__file__}')
        parts.append(compact(data.decode('utf-8') if isinstance(data, bytes) else data))
    argument = json.dumps([root, release_id, content_digest, checksum or None])
    return '\n'.join(parts), argument
