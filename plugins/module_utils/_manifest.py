# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Content manifests of releases: what a release holds, and whether the disk still holds it.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. Standard library only, Python 3.8+, no AnsibleModule inside: the
controller (plugin_utils/_delta.py) and the host both use it, and plain pytest tests it.

A manifest is a list of entries, one per path relative to the release, sorted by path:

- ``[path, 'd', mode]`` a directory;
- ``[path, 'f', mode, size, sha256-hex, mtime]`` a regular file (mtime in whole seconds, not
  part of the digest);
- ``[path, 'l', target]`` a symlink.

Its digest (``sha256:<hex>``) is the sha256 of the canonical JSON of the entries without the
mtimes: two trees with the same paths, types, modes, sizes, contents and link targets have the
same digest, however they were made.

The file ``releases/<id>/.release.manifest.json`` adds a stat record per file,
``(dev, ino, size, mtime_ns, ctime_ns)``, and ``ref_ns``: the ctime of a marker file written
after every record was taken. A file whose lstat still equals its record and whose ctime is
older than ``ref_ns`` has not been written since its digest was known (docs/delta.md says why);
anything else is hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat

FORMAT = 1
MANIFEST_NAME = '.release.manifest.json'
DIR, FILE, LINK = 'd', 'f', 'l'
MODE_MASK = 0o775
CHUNK = 1024 * 1024
_READ_FLAGS = os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)


class ManifestError(Exception):
    """A manifest could not be built, read or applied; ``path`` names the file involved."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


# ---------------------------------------------------------------------------------------------
# entries and digests


def canonical(entries: list) -> bytes:
    """The bytes the manifest digest is taken over: entries without mtimes, sorted by path."""
    rows = [e[:5] if e[1] == FILE else list(e) for e in sorted(entries, key=lambda e: e[0])]
    return json.dumps(rows, separators=(',', ':')).encode('ascii')


def digest(entries: list) -> str:
    return 'sha256:' + hashlib.sha256(canonical(entries)).hexdigest()


def file_entries(entries: list) -> list:
    return [e for e in entries if e[1] == FILE]


def content_digests(entries: list) -> set:
    return {e[4] for e in entries if e[1] == FILE}


def content_size(entries: list, digests=None) -> int:
    """Bytes of distinct content (only of ``digests`` when given)."""
    seen: dict = {}
    for e in entries:
        if e[1] == FILE and (digests is None or e[4] in digests):
            seen[e[4]] = e[3]
    return sum(seen.values())


def hash_fd(fd: int) -> str:
    h = hashlib.sha256()
    while True:
        data = os.read(fd, CHUNK)
        if not data:
            break
        h.update(data)
    return h.hexdigest()


def hash_file(path: str) -> tuple[str, os.stat_result]:
    """(sha256 hex, fstat) of a regular file, not following a symlink; raises OSError."""
    fd = os.open(path, _READ_FLAGS)
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise OSError(21, 'not a regular file', path)
        value = hash_fd(fd)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if stat_key(before) != stat_key(after):
        # Written while being read: neither the old nor the new content is known.
        raise OSError(11, 'file changed while it was read', path)
    return value, after


def stat_key(st: os.stat_result) -> list:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


# ---------------------------------------------------------------------------------------------
# building a manifest


def from_tree(*, root: str, exclude=(), hashes: dict | None = None, known: dict | None = None) -> tuple[list, dict]:
    """(entries, records) of the tree under ``root`` (not root itself).

    ``exclude`` are relative paths left out with everything under them (metadata, shared links,
    generated files). ``hashes`` maps a stat record tuple to a known digest, so an inode whose
    digest was just established is not read again; ``known`` maps a path to the digest of what
    the extractor has just written there (so the tree is not read twice). Sockets, fifos and devices are refused.
    """
    excluded = set(exclude)
    entries: list = []
    records: dict = {}
    hashes = hashes if hashes is not None else {}
    stack = ['']
    while stack:
        rel_dir = stack.pop()
        folder = os.path.join(root, rel_dir) if rel_dir else root
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            raise ManifestError(f'cannot read directory {folder}: {exc.strerror}', path=folder) from exc
        for name in names:
            rel = f'{rel_dir}/{name}' if rel_dir else name
            if rel in excluded:
                continue
            full = os.path.join(folder, name)
            try:
                st = os.lstat(full)
                mode = stat.S_IMODE(st.st_mode)
                if stat.S_ISDIR(st.st_mode):
                    entries.append([rel, DIR, mode])
                    stack.append(rel)
                elif stat.S_ISLNK(st.st_mode):
                    entries.append([rel, LINK, os.readlink(full)])
                elif stat.S_ISREG(st.st_mode):
                    key = tuple(stat_key(st))
                    value = known.get(rel) if known else None
                    value = value or hashes.get(key)
                    if value is None:
                        value, st = hash_file(full)
                        key = tuple(stat_key(st))
                        hashes[key] = value
                    entries.append([rel, FILE, mode, st.st_size, value, int(st.st_mtime)])
                    records[rel] = list(key)
                else:
                    raise ManifestError(f'{full} is a socket, fifo or device, not release content', path=full)
            except OSError as exc:
                raise ManifestError(f'cannot read {full}: {exc.strerror}', path=full) from exc
    entries.sort(key=lambda e: e[0])
    return entries, records


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


def from_tar(*, fileobj, strip_components: int = 0, reserved=('.release.json', MANIFEST_NAME)) -> list:
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
                if rel is None:
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


# ---------------------------------------------------------------------------------------------
# the manifest file


def write(*, release: str, entries: list, records: dict, ref_ns: int, exclude=(), fsync: bool = True) -> str:
    """Write ``release/.release.manifest.json`` atomically (temp, fsync, rename, fsync dir)."""
    doc = {
        'format': FORMAT,
        'digest': digest(entries),
        'entries': entries,
        'exclude': sorted(exclude),
        'ref_ns': ref_ns,
        'records': records,
    }
    data = json.dumps(doc, separators=(',', ':'), sort_keys=True).encode('ascii') + b'\n'
    # Imported here: the live check ships this file's source alone to the host
    # (plugin_utils/_delta.live_check_script), where only the stdlib imports at the top resolve.
    from ansible_collections.atomic.deploy.plugins.module_utils import _fs

    _fs.atomic_write(path=os.path.join(release, MANIFEST_NAME), data=data, mode=0o644, fsync=fsync)
    return doc['digest']


def read(release: str) -> dict | None:
    """The manifest of a release, or None when it has none or it is unreadable ("nothing known")."""
    try:
        fd = os.open(os.path.join(release, MANIFEST_NAME), _READ_FLAGS)
    except OSError:
        return None
    try:
        with os.fdopen(fd, 'rb') as handle:
            doc = json.loads(handle.read().decode('ascii'))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get('format') != FORMAT or not isinstance(doc.get('entries'), list):
        return None
    if digest(doc['entries']) != doc.get('digest'):
        return None
    doc.setdefault('records', {})
    doc.setdefault('ref_ns', 0)
    return doc


def reference_ns(directory: str) -> int:
    """The file system's own clock now: the ctime of a marker file made (and removed) in ``directory``.

    Every stat record a manifest keeps must be taken after this, and a file is only trusted by
    its record when its ctime is strictly older: a write in the same clock tick as the marker
    could otherwise leave the same ctime.
    """
    path = os.path.join(directory, f'.atomic-deploy-clock-{os.urandom(6).hex()}')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0), 0o600)
    try:
        return os.fstat(fd).st_ctime_ns
    finally:
        os.close(fd)
        os.unlink(path)


def record_tree(*, release: str, entries: list, exclude=(), fsync: bool = True) -> str:
    """Write the manifest of a release whose content is ``entries`` (already checked), with fresh records."""
    ref_ns = reference_ns(release)
    records = {}
    for e in entries:
        if e[1] == FILE:
            records[e[0]] = stat_key(os.lstat(os.path.join(release, e[0])))
    return write(release=release, entries=entries, records=records, ref_ns=ref_ns, exclude=exclude, fsync=fsync)


# ---------------------------------------------------------------------------------------------
# trusting what is on disk


class Verifier:
    """Decides whether an on-disk file still holds a digest; hashes each inode at most once."""

    def __init__(self) -> None:
        self.hashed: dict = {}
        self.hashed_files = 0
        self.hashed_bytes = 0
        self.trusted = 0

    def digest_of(self, path: str, st: os.stat_result, record, ref_ns: int) -> str | None:
        """The digest of ``path`` (already lstat'ed as ``st``), or None when it cannot be read."""
        key = tuple(stat_key(st))
        if record is not None and list(record) == list(key) and st.st_ctime_ns < ref_ns:
            self.trusted += 1
            return 'trusted'
        known = self.hashed.get(key)
        if known is not None:
            return known
        try:
            value, after = hash_file(path)
        except OSError:
            return None
        self.hashed_files += 1
        self.hashed_bytes += after.st_size
        self.hashed[tuple(stat_key(after))] = value
        return value

    def check(self, path: str, entry: list, record, ref_ns: int) -> tuple[bool, os.stat_result | None]:
        """(still holds entry's content, lstat) for a file entry."""
        try:
            st = os.lstat(path)
        except OSError:
            return False, None
        if not stat.S_ISREG(st.st_mode) or st.st_size != entry[3]:
            return False, st
        value = self.digest_of(path, st, record, ref_ns)
        if value == 'trusted':
            return True, st
        return value == entry[4], st


def inventory(
    *, releases: list, verifier: Verifier | None = None, uid: int | None = None, manifests: list | None = None
) -> dict:
    """digest -> (path, lstat, mode) of a file that verifiably holds it, over complete releases.

    ``releases`` are release paths, newest first: only complete releases belong here, never an
    unfinished one (it may hold half-written files under temp names or not). A file that no
    longer holds its recorded digest (a hot-patch) is never a source. ``manifests``, when given,
    gets (release path, manifest) of every release read.
    """
    verifier = verifier or Verifier()
    found: dict = {}
    for release in releases:
        doc = read(release)
        if doc is None:
            continue
        if manifests is not None:
            manifests.append((release, doc))
        dirs: dict = {}
        records = doc['records']
        ref_ns = doc['ref_ns']
        for e in doc['entries']:
            if e[1] != FILE or e[4] in found:
                continue
            path = os.path.join(release, e[0])
            if not _plain_parents(release, e[0], dirs):
                continue
            ok, st = verifier.check(path, e, records.get(e[0]), ref_ns)
            if ok and st is not None and (uid is None or st.st_uid == uid):
                found[e[4]] = (path, st, stat.S_IMODE(st.st_mode))
    return found


def _plain_parents(release: str, rel: str, cache: dict) -> bool:
    """True when every parent of rel inside release is a real directory (not a shared link)."""
    cut = rel.rfind('/')
    if cut <= 0:
        return True
    parent = rel[:cut]
    ok = cache.get(parent)
    if ok is None:
        ok = _plain_parents(release, parent, cache)
        if ok:
            try:
                ok = stat.S_ISDIR(os.lstat(os.path.join(release, parent)).st_mode)
            except OSError:
                ok = False
        cache[parent] = ok
    return ok


def drift(*, release: str, verifier: Verifier | None = None) -> dict | None:
    """Files changed, added or removed in ``release`` since its manifest was written; None: no manifest.

    The excluded paths (shared links, writable dirs, the id file, the metadata) are ignored.
    """
    doc = read(release)
    if doc is None:
        return None
    verifier = verifier or Verifier()
    excluded = set(doc.get('exclude') or ()) | {'.release.json', MANIFEST_NAME}
    expected = {e[0]: e for e in doc['entries']}
    records = doc['records']
    changed: list = []
    removed: list = []
    for rel, e in expected.items():
        if _under(rel, excluded):
            continue
        path = os.path.join(release, rel)
        try:
            st = os.lstat(path)
        except OSError:
            removed.append(rel)
            continue
        if e[1] == DIR:
            same = stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == e[2]
        elif e[1] == LINK:
            same = stat.S_ISLNK(st.st_mode) and os.readlink(path) == e[2]
        else:
            same = stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == e[2]
            same = same and verifier.check(path, e, records.get(rel), doc['ref_ns'])[0]
        if not same:
            changed.append(rel)
    added: list = []
    stack = ['']
    while stack:
        rel_dir = stack.pop()
        folder = os.path.join(release, rel_dir) if rel_dir else release
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            rel = f'{rel_dir}/{name}' if rel_dir else name
            if rel in excluded:
                continue
            e = expected.get(rel)
            if e is None:
                added.append(rel)
            elif (
                e[1] == DIR
                and os.path.isdir(os.path.join(folder, name))
                and not os.path.islink(os.path.join(folder, name))
            ):
                stack.append(rel)
    return {
        'changed': sorted(changed),
        'added': sorted(added),
        'removed': sorted(removed),
        'drifted': bool(changed or added or removed),
        'digest': doc['digest'],
    }


def _under(rel: str, excluded: set) -> bool:
    cut = len(rel)
    while cut > 0:
        if rel[:cut] in excluded:
            return True
        cut = rel.rfind('/', 0, cut)
    return False


def diff(old: list, new: list) -> dict:
    """Paths added, removed and changed from entries ``old`` to ``new`` (mtimes ignored)."""
    a = {e[0]: (e[:5] if e[1] == FILE else e) for e in old}
    b = {e[0]: (e[:5] if e[1] == FILE else e) for e in new}
    return {
        'added': sorted(set(b) - set(a)),
        'removed': sorted(set(a) - set(b)),
        'changed': sorted(k for k in set(a) & set(b) if a[k] != b[k]),
    }


def delta_of(base: list, new: list) -> dict:
    """What turns ``base`` into ``new``: entries to set (new or different) and paths to remove."""
    old = {e[0]: e for e in base}
    paths = {e[0] for e in new}
    return {
        'upsert': [e for e in new if old.get(e[0]) != e],
        'remove': sorted(p for p in old if p not in paths),
    }


def apply_delta(base: list, upsert: list, remove: list) -> list:
    tree = {e[0]: e for e in base}
    for path in remove:
        tree.pop(path, None)
    for e in upsert:
        tree[e[0]] = e
    return sorted(tree.values(), key=lambda e: e[0])


def validate_entries(entries) -> list:
    """Entries from the controller, shape-checked; paths are checked again when they are placed."""
    if not isinstance(entries, list):
        raise ManifestError('the delta manifest is not a list of entries')
    out = []
    for e in entries:
        ok = isinstance(e, list) and len(e) >= 3 and isinstance(e[0], str) and e[1] in (DIR, FILE, LINK)
        if ok and e[1] == DIR:
            ok = len(e) == 3 and isinstance(e[2], int)
        elif ok and e[1] == LINK:
            ok = len(e) == 3 and isinstance(e[2], str)
        elif ok:
            ok = (
                len(e) == 6
                and isinstance(e[2], int)
                and isinstance(e[3], int)
                and e[3] >= 0
                and isinstance(e[4], str)
                and len(e[4]) == 64
                and isinstance(e[5], int)
            )
        if not ok:
            raise ManifestError(f'invalid delta manifest entry {e!r:.200}')
        out.append(e)
    return out
