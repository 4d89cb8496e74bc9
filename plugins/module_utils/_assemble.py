# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Assemble a release from a content manifest, content already on the host, and a delta.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule inside: plain pytest tests it.

Every path, mode and link in the manifest comes from the controller and is placed through the
safe extractor's own checks (no absolute paths, no ``..``, no reserved names, nothing written
through a symlink, no symlink that leaves the release, even through other links). Content is
either a file of a complete release that verifiably still holds its digest (see
_manifest.inventory), or a delta object whose digest is checked before it is used.
"""

from __future__ import annotations

import errno as _errno
import os
import stat

from ansible_collections.atomic.deploy.plugins.module_utils import _copy, _extract, _manifest, _tree

BUNDLE_MANIFEST = 'manifest.json'
BUNDLE_OBJECTS = 'objects'


def assemble(
    *,
    dest: str,
    entries: list,
    have: dict,
    objects: str | None,
    dedupe: bool = True,
    reserved=('.release.json', _manifest.MANIFEST_NAME),
) -> dict:
    """Build the tree ``entries`` inside the empty directory ``dest``; return stats.

    ``have`` is digest -> (path, lstat, mode) from _manifest.inventory, built in this run.
    ``objects`` is a directory of delta files named by their sha256.
    """
    ex = _tree.TreeWriter(dest=dest, previous=None, dedupe=False, strip_components=0, reserved=reserved)
    stats = {'files': 0, 'dirs': 0, 'symlinks': 0, 'linked': 0, 'copied': 0, 'sent': 0, 'bytes_sent': 0}
    verified: dict = {}
    placed: dict = {}
    for e in entries:
        raw = e[0]
        kind = e[1]
        rel = ex.name(raw, is_dir=kind == _manifest.DIR)
        if rel != raw:
            raise _manifest.ManifestError(f'refusing delta manifest path {raw!r}: not in normal form', path=raw)
        try:
            if kind == _manifest.DIR:
                ex.add_dir(rel, raw, mode=e[2], mtime=None)
                stats['dirs'] += 1
            elif kind == _manifest.LINK:
                ex.add_symlink(rel, raw, target=e[2])
                stats['symlinks'] += 1
            else:
                ex.current = ex.path(rel)
                ex.parent(rel, raw)
                ex.make_room(rel, for_dir=False)
                _place(
                    ex.path(rel),
                    e,
                    have=have,
                    objects=objects,
                    dedupe=dedupe,
                    verified=verified,
                    placed=placed,
                    stats=stats,
                )
                ex.kinds[rel] = 'f'
                stats['files'] += 1
        except OSError as exc:
            raise _manifest.ManifestError(f'cannot assemble {ex.path(rel)}: {exc.strerror}', path=ex.path(rel)) from exc
    try:
        ex.finish()
    except OSError as exc:
        raise _manifest.ManifestError(f'cannot assemble {dest}: {exc.strerror}', path=dest) from exc
    return stats


def _place(path: str, e: list, *, have, objects, dedupe, verified, placed, stats) -> None:
    mode, size, value, mtime = e[2] & _manifest.MODE_MASK, e[3], e[4], e[5]
    source = have.get(value)
    if source is not None:
        src, _st, src_mode = source
        if dedupe and src_mode == mode and _copy.try_link(src, path):
            stats['linked'] += 1
        else:
            _copy.copy_file(src, path, mode=mode, mtime=mtime)
            stats['copied'] += 1
        return
    first = placed.get(value)
    if first is not None:
        if dedupe and first[1] == mode and _copy.try_link(first[0], path):
            stats['linked'] += 1
        else:
            _copy.copy_file(first[0], path, mode=mode, mtime=mtime)
            stats['copied'] += 1
        return
    obj = os.path.join(objects, value) if objects else None
    if obj is None or not os.path.isfile(obj) or os.path.islink(obj):
        raise _manifest.ManifestError(
            f'content of {e[0]} (sha256 {value}) is neither in the delta nor in a complete release on this host '
            '(a file changed on disk during the deploy?); deploy again',
            path=e[0],
        )
    if value not in verified:
        got, st = _manifest.hash_file(obj)
        if got != value or st.st_size != size:
            raise _manifest.ManifestError(f'delta content for {e[0]} does not have sha256 {value}', path=e[0])
        verified[value] = True
    os.chmod(obj, mode)
    os.utime(obj, (mtime, mtime), follow_symlinks=False)
    try:
        os.rename(obj, path)
    except OSError as exc:
        if exc.errno != _errno.EXDEV:
            raise
        _copy.copy_file(obj, path, mode=mode, mtime=mtime)
    placed[value] = (path, mode)
    stats['sent'] += 1
    stats['bytes_sent'] += size


def read_bundle(*, bundle: str, workdir: str, bases: dict | None = None) -> tuple[list, str]:
    """Extract a delta bundle (tar.gz of manifest.json and objects/<sha256>) into ``workdir``.

    The safe extractor reads it, so a hostile bundle is refused like a hostile archive.
    manifest.json holds the entries, or (``base``, ``upsert``, ``remove``): the difference from
    the manifest of a complete release on this host, found in ``bases`` (digest -> entries).
    Returns (entries, objects directory).
    """
    import json

    _extract.extract_archive(archive=bundle, dest=workdir, dedupe=False, reserved=())
    path = os.path.join(workdir, BUNDLE_MANIFEST)
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            raise _manifest.ManifestError(f'delta bundle {bundle} has no {BUNDLE_MANIFEST}', path=bundle)
        with open(path, 'rb') as handle:
            doc = json.loads(handle.read().decode('utf-8'))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise _manifest.ManifestError(
            f'cannot read {BUNDLE_MANIFEST} of delta bundle {bundle}: {exc}', path=bundle
        ) from exc
    if not isinstance(doc, dict):
        raise _manifest.ManifestError(f'delta bundle {bundle}: {BUNDLE_MANIFEST} is not an object', path=bundle)
    if doc.get('base'):
        base = (bases or {}).get(doc['base'])
        if base is None:
            raise _manifest.ManifestError(f'delta bundle {bundle}: no complete release here has manifest {doc["base"]}')
        remove = doc.get('remove')
        if not isinstance(remove, list) or not all(isinstance(p, str) for p in remove):
            raise _manifest.ManifestError(f'delta bundle {bundle}: invalid remove list', path=bundle)
        entries = _manifest.apply_delta(base, _manifest.validate_entries(doc.get('upsert')), remove)
    else:
        entries = doc.get('entries')
    entries = _manifest.validate_entries(entries)
    if _manifest.digest(entries) != doc.get('digest'):
        raise _manifest.ManifestError(f'delta bundle {bundle}: the manifest does not match its digest', path=bundle)
    return entries, os.path.join(workdir, BUNDLE_OBJECTS)
