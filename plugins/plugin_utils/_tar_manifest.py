# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The content manifest of a tar stream, as the host's safe extractor would lay the tree out.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. Standard library only; only the controller uses it (the host builds
manifests from the tree it wrote, plugins/module_utils/_manifest.py); plain pytest tests it.
"""

from __future__ import annotations

import hashlib

from ansible_collections.atomic.deploy.plugins.module_utils import _names
from ansible_collections.atomic.deploy.plugins.module_utils._manifest import (
    CHUNK,
    DIR,
    FILE,
    LINK,
    MANIFEST_NAME,
    MODE_MASK,
    ManifestError,
)


class _TarTree:
    """Entries as the safe extractor would leave them, fed one tar member at a time."""

    def __init__(self, strip_components: int, reserved) -> None:
        self.strip = strip_components
        self.reserved = frozenset(reserved)
        self.entries: dict = {}
        self.implicit: set = set()

    def name(self, raw: str) -> str | None:
        if not raw or '\x00' in raw or raw.startswith('/'):
            raise ManifestError(f'archive member {raw!r} is refused', path=raw)
        parts = [p for p in raw.split('/') if p and p != '.']
        if '..' in parts:
            raise ManifestError(f'archive member {raw!r} is refused', path=raw)
        parts = parts[self.strip :]
        if not parts:
            return None
        if parts[0] in self.reserved:
            raise ManifestError(f'archive member {raw!r} is refused', path=raw)
        return '/'.join(parts)

    def _parents(self, rel: str) -> None:
        cut = rel.rfind('/')
        while cut > 0:
            parent = rel[:cut]
            entry = self.entries.get(parent)
            if entry is None:
                self.entries[parent] = [parent, DIR, 0o755]
                self.implicit.add(parent)
            elif entry[1] != DIR:
                raise ManifestError(f'archive member {rel!r} has a parent that is not a directory', path=rel)
            cut = rel.rfind('/', 0, cut)

    def _replace(self, rel: str, is_dir: bool) -> None:
        old = self.entries.get(rel)
        if old is None or (old[1] == DIR and is_dir):
            return
        if old[1] == DIR:
            prefix = rel + '/'
            for key in [k for k in self.entries if k.startswith(prefix)]:
                del self.entries[key]
        del self.entries[rel]

    def add(self, rel: str, entry: list) -> None:
        self._parents(rel)
        self._replace(rel, entry[1] == DIR)
        if entry[1] == DIR and rel in self.entries:
            self.entries[rel][2] = entry[2]
            self.implicit.discard(rel)
            return
        self.entries[rel] = entry


def from_tar(
    *, fileobj, strip_components: int = 0, reserved=('.release.json', MANIFEST_NAME), drop_macos_metadata: bool = False
) -> list:
    """Entries of a tar stream (any compression tarfile reads), as extraction would lay them out.

    Members the extractor would refuse make this raise ManifestError: the caller then sends the
    archive itself, and the host's extractor gives its usual message.
    """
    import tarfile

    tree = _TarTree(strip_components, reserved)
    try:
        with tarfile.open(fileobj=fileobj, mode='r|*') as tf:
            for member in tf:
                rel = tree.name(member.name)
                if rel is None or (
                    drop_macos_metadata and _names.is_macos_metadata(rel.split('/'), is_dir=member.isdir())
                ):
                    continue
                if member.isreg():
                    handle = tf.extractfile(member)
                    h = hashlib.sha256()
                    while True:
                        data = handle.read(CHUNK)
                        if not data:
                            break
                        h.update(data)
                    entry = [rel, FILE, member.mode & MODE_MASK, member.size, h.hexdigest(), int(member.mtime)]
                    tree.add(rel, entry)
                elif member.isdir():
                    tree.add(rel, [rel, DIR, member.mode & MODE_MASK])
                elif member.issym():
                    tree.add(rel, [rel, LINK, member.linkname])
                elif member.islnk():
                    target = tree.name(member.linkname)
                    source = tree.entries.get(target) if target else None
                    if source is None or source[1] != FILE or target == rel:
                        raise ManifestError(f'archive member {member.name!r} is refused', path=member.name)
                    tree.add(rel, [rel, *source[1:]])
                else:
                    raise ManifestError(f'archive member {member.name!r} is refused', path=member.name)
                tf.members = []
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ManifestError(f'cannot read archive: {exc}') from exc
    return sorted(tree.entries.values(), key=lambda e: e[0])
