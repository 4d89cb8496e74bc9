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
anything else is hashed. A release, its manifest and every file and directory read below it count only
when the deploy user made them and nobody else can write them (:func:`distrust`): a file of the web
server's user is never read, hashed or reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time

FORMAT = 1
MANIFEST_NAME = '.release.manifest.json'
# The collection's own records are not for the web server's user (a web root at the release serves dot-files):
# the manifest and the release metadata are the deploy user's alone.
METADATA_MODE = 0o600
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


def _fs():
    """module_utils._fs, imported when first used: the live check ships this file's source (and
    _live.py's) alone to the host (plugin_utils/_delta.live_check_program), where only the stdlib
    imports at the top resolve."""
    from ansible_collections.atomic.deploy.plugins.module_utils import _fs as fs_module

    return fs_module


def _names():
    """module_utils._names, imported when first used (see :func:`_fs`)."""
    from ansible_collections.atomic.deploy.plugins.module_utils import _names as names_module

    return names_module


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


def from_tree(
    *, root: str, exclude=(), hashes: dict | None = None, known: dict | None = None, drop_macos_metadata: bool = False
) -> tuple[list, dict]:
    """(entries, records) of the tree under ``root`` (not root itself).

    ``exclude`` are relative paths left out with everything under them (metadata, shared links,
    generated files). ``hashes`` maps a stat record tuple to a known digest, so an inode whose
    digest was just established is not read again; ``known`` maps a path to the digest of what
    the extractor has just written there (so the tree is not read twice). Sockets, fifos and devices are refused.
    ``drop_macos_metadata`` leaves out what the extractor leaves out with that option (_names.is_macos_metadata).
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
                if drop_macos_metadata and _names().is_macos_metadata(rel.split('/'), is_dir=stat.S_ISDIR(st.st_mode)):
                    continue
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


# ---------------------------------------------------------------------------------------------
# the manifest file


SECOND_NS = 1_000_000_000


def settle_records(*, release: str, ref_ns: int, records: dict, sleep=time.sleep) -> tuple[int, dict]:
    """(ref_ns, records), the reference moved past the clock tick the files were written in.

    A file is trusted by its record only when its ctime is strictly older than ``ref_ns``. Where
    the file system keeps whole seconds (HFS+, FAT, UFS with ``vfs.timestamp_precision=0``), every
    file written in the same second as the reference marker would be hashed again at each later
    probe: correct, but slow. Then wait for the next second, take the reference again and the
    records after it. A fine clock lands on a whole second once in a billion: a short wait.
    """
    if ref_ns % SECOND_NS or not any(record[4] >= ref_ns for record in records.values()):
        return ref_ns, records
    for _attempt in range(3):
        sleep(1 - time.time() % 1 + 0.01)
        later = reference_ns(release)
        if later > ref_ns:
            fresh = {rel: stat_key(os.lstat(os.path.join(release, rel))) for rel in records}
            return later, fresh
    return ref_ns, records


def write(*, release: str, entries: list, records: dict, ref_ns: int, exclude=(), fsync: bool = True) -> str:
    """Write ``release/.release.manifest.json`` atomically (temp, fsync, rename, fsync dir)."""
    ref_ns, records = settle_records(release=release, ref_ns=ref_ns, records=records)
    doc = {
        'format': FORMAT,
        'digest': digest(entries),
        'entries': entries,
        'exclude': sorted(exclude),
        'ref_ns': ref_ns,
        'records': records,
    }
    data = json.dumps(doc, separators=(',', ':'), sort_keys=True).encode('ascii') + b'\n'
    _fs().atomic_write(path=os.path.join(release, MANIFEST_NAME), data=data, mode=METADATA_MODE, fsync=fsync)
    return doc['digest']


def read(release: str, *, release_fd: int | None = None) -> dict | None:
    """The manifest of a release, or None when it has none, it is unreadable, or the deploy user did not
    write it ("nothing known"). ``release_fd``: the release directory, already opened (:func:`open_release`)."""
    try:
        if release_fd is None:
            release_fd = open_release(release)
            try:
                raw = read_trusted(MANIFEST_NAME, dir_fd=release_fd)
            finally:
                os.close(release_fd)
        else:
            raw = read_trusted(MANIFEST_NAME, dir_fd=release_fd)
        doc = json.loads(raw.decode('ascii'))
    except (OSError, Untrusted, ValueError, UnicodeDecodeError):
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
#
# Nothing under releases/ counts unless the deploy user made it: a release directory, its metadata
# and its manifest must be owned by the user this code runs as (or root) and writable by nobody
# else; content is read or reused only through directories and files that pass the same rule
# (``group_ok``: a group write bit is accepted on content when the group is the deploy user's own
# effective group, as an artifact may ship 0775 directories). Every decision is taken on the fstat of
# a descriptor opened with O_NOFOLLOW, one path component at a time, never on a path checked first.

_DIR_FLAGS = os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0) | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
# O_NONBLOCK: a fifo planted where a file is expected must not hang the open.
_PEEK_FLAGS = _READ_FLAGS | getattr(os, 'O_NONBLOCK', 0)


class Untrusted(Exception):
    """A path under releases/ the deploy user did not make (or someone else can write); the message says why."""


# Set by adopt_deploy_owner when root acts on a root that another (deploy) user deploys to.
_deploy_owner: tuple[int, int] | None = None


def deploy_ids() -> tuple[int, int]:
    """(uid, gid) of the deploy user: the effective ids this code runs as, or, when root runs it on a
    root that a deploy user deploys to (a step with become: prune, rollback, status), that user's."""
    if _deploy_owner is not None and os.geteuid() == 0:
        return _deploy_owner
    return os.geteuid(), os.getegid()


def adopt_deploy_owner(root: str) -> tuple[int, int] | None:
    """As root, take the owner of ``ROOT/.deploy`` as the deploy user (for :func:`deploy_ids`).

    A deploy without become leaves its releases owned by the deploy user; root running one step of
    the same root (``release_prune_become``, a rollback or status with become) must trust them too.
    ``.deploy`` counts only when it is a directory (not a link) that its owner alone can write, in a
    root owned by root or by that same user and writable by nobody else: the web server's user can
    make neither. Anything else leaves root trusting only root and itself. Returns the ids adopted.
    """
    global _deploy_owner
    _deploy_owner = None
    if os.geteuid() != 0:
        return None
    try:
        root_fd = os.open(root, _DIR_FLAGS)
    except OSError:
        return None
    try:
        top = os.fstat(root_fd)
        fd = os.open('.deploy', _DIR_FLAGS, dir_fd=root_fd)
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
    except OSError:
        return None
    finally:
        os.close(root_fd)
    unwritable = not (st.st_mode | top.st_mode) & (stat.S_IWGRP | stat.S_IWOTH)
    if st.st_uid != 0 and top.st_uid in (0, st.st_uid) and unwritable:
        _deploy_owner = (st.st_uid, st.st_gid)
    return _deploy_owner


def distrust(st: os.stat_result, *, group_ok: bool = False) -> str | None:
    """Why a file or directory with this stat is not trusted, or None when it is."""
    uid, gid = deploy_ids()
    if st.st_uid not in (uid, 0):
        return f'owned by uid {st.st_uid}, not by the deploy user (uid {uid}) or root'
    if st.st_mode & stat.S_IWOTH:
        return 'writable by every user'
    if st.st_mode & stat.S_IWGRP and not (group_ok and st.st_gid == gid):
        return f'writable by group {st.st_gid}'
    return None


def open_trusted(name: str, *, dir_fd: int | None = None, directory: bool = False, group_ok: bool = False) -> int:
    """A descriptor of ``name`` (a directory or a regular file), opened without following a symlink.

    Raises Untrusted when it is another kind of file or fails :func:`distrust`, OSError when it
    cannot be opened (missing, a symlink: ELOOP, or not a directory).
    """
    fd = os.open(name, _DIR_FLAGS if directory else _PEEK_FLAGS, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if directory and not stat.S_ISDIR(st.st_mode):  # a platform without O_DIRECTORY
            raise NotADirectoryError(20, 'not a directory', name)
        if not directory and not stat.S_ISREG(st.st_mode):
            raise Untrusted('not a regular file')
        why = distrust(st, group_ok=group_ok)
        if why:
            raise Untrusted(why)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_trusted(name: str, *, dir_fd: int | None = None, limit: int = 256 * 1024 * 1024) -> bytes:
    """The bytes of a trusted regular file (metadata, manifest); raises Untrusted or OSError."""
    fd = open_trusted(name, dir_fd=dir_fd)
    try:
        if os.fstat(fd).st_size > limit:
            raise Untrusted(f'larger than {limit} bytes')
        chunks = []
        while True:
            data = os.read(fd, CHUNK)
            if not data:
                return b''.join(chunks)
            chunks.append(data)
    finally:
        os.close(fd)


class Descent:
    """Directories below a release, opened one component at a time, only through trusted directories.

    Keeps the chain of the last directory reached open (a stack of descriptors, at most one per
    level), so walking sorted paths opens each directory once. Use as a context manager.
    """

    def __init__(self, release_fd: int) -> None:
        self.stack: list = [('', release_fd)]
        self.failed: dict = {}

    def __enter__(self) -> Descent:
        return self

    def __exit__(self, *_exc) -> None:
        while len(self.stack) > 1:
            os.close(self.stack.pop()[1])

    def dir_fd(self, rel_dir: str) -> int | None:
        """The descriptor of ``rel_dir`` ('' is the release), or None when a component is missing,
        a symlink, not a directory or not trusted (:attr:`failed` maps it to why, or None when it
        could not be opened)."""
        while len(self.stack) > 1:
            top = self.stack[-1][0]
            if rel_dir == top or rel_dir.startswith(top + '/'):
                break
            os.close(self.stack.pop()[1])
        top, fd = self.stack[-1]
        rest = rel_dir[len(top) :].lstrip('/') if top else rel_dir
        for part in rest.split('/') if rest else ():
            path = f'{top}/{part}' if top else part
            if path in self.failed:
                return None
            try:
                fd = open_trusted(part, dir_fd=fd, directory=True, group_ok=True)
            except Untrusted as exc:
                self.failed[path] = str(exc)
                return None
            except OSError:
                self.failed[path] = None
                return None
            self.stack.append((path, fd))
            top = path
        return fd

    def untrusted(self, rel: str) -> str | None:
        """Why ``rel`` is below a directory that was refused as untrusted, or None."""
        for path, why in self.failed.items():
            if why and (rel == path or rel.startswith(path + '/')):
                return why
        return None


def open_release(release: str) -> int:
    """A descriptor of a release directory the deploy user made; raises Untrusted or OSError."""
    return open_trusted(release, directory=True)


class Verifier:
    """Decides whether an on-disk file still holds a digest; hashes each inode at most once.

    A file that is not the deploy user's (or that someone else can write) is never read: it counts
    in ``untrusted`` and holds nothing.
    """

    def __init__(self) -> None:
        self.hashed: dict = {}
        self.hashed_files = 0
        self.hashed_bytes = 0
        self.trusted = 0
        self.untrusted = 0

    def check(self, dir_fd: int, name: str, entry: list, record, ref_ns: int) -> tuple[bool, os.stat_result | None]:
        """(still holds entry's content, lstat) for the file entry ``name`` in the directory ``dir_fd``."""
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            return False, None
        if not stat.S_ISREG(st.st_mode) or st.st_size != entry[3]:
            return False, st
        if distrust(st, group_ok=True):
            self.untrusted += 1
            return False, st
        key = tuple(stat_key(st))
        if record is not None and list(record) == list(key) and st.st_ctime_ns < ref_ns:
            self.trusted += 1
            return True, st
        value = self.hashed.get(key)
        if value is None:
            value = self._hash(dir_fd, name, st)
        return value == entry[4], st

    def _hash(self, dir_fd: int, name: str, st: os.stat_result) -> str | None:
        try:
            fd = open_trusted(name, dir_fd=dir_fd, group_ok=True)
        except (OSError, Untrusted):
            return None
        try:
            before = os.fstat(fd)
            if (before.st_dev, before.st_ino) != (st.st_dev, st.st_ino):
                return None  # replaced since it was looked at: not the file that was judged
            value = hash_fd(fd)
            after = os.fstat(fd)
        except OSError:
            return None
        finally:
            os.close(fd)
        if stat_key(before) != stat_key(after):
            return None  # written while being read
        self.hashed_files += 1
        self.hashed_bytes += after.st_size
        self.hashed[tuple(stat_key(after))] = value
        return value


def _split(rel: str) -> tuple[str, str]:
    cut = rel.rfind('/')
    return (rel[:cut], rel[cut + 1 :]) if cut >= 0 else ('', rel)


def inventory(*, releases: list, verifier: Verifier | None = None, manifests: list | None = None) -> dict:
    """digest -> (path, lstat, mode) of a file that verifiably holds it, over complete releases.

    ``releases`` are release paths, newest first: only complete releases belong here, never an
    unfinished one (it may hold half-written files under temp names or not). A file that no
    longer holds its recorded digest (a hot-patch), or that is not the deploy user's, or that is
    reached through a symlink or a directory someone else can write, is never a source.
    ``manifests``, when given, gets (release path, manifest) of every release read.
    """
    verifier = verifier or Verifier()
    found: dict = {}
    for release in releases:
        try:
            release_fd = open_release(release)
        except (OSError, Untrusted):
            continue
        try:
            doc = read(release, release_fd=release_fd)
            if doc is None:
                continue
            if manifests is not None:
                manifests.append((release, doc))
            records = doc['records']
            with Descent(release_fd) as tree:
                for e in doc['entries']:
                    if e[1] != FILE or e[4] in found:
                        continue
                    folder, name = _split(e[0])
                    dir_fd = tree.dir_fd(folder)
                    if dir_fd is None:
                        continue
                    ok, st = verifier.check(dir_fd, name, e, records.get(e[0]), doc['ref_ns'])
                    if ok and st is not None:
                        found[e[4]] = (os.path.join(release, e[0]), st, stat.S_IMODE(st.st_mode))
        finally:
            os.close(release_fd)
    return found


def drift(*, release: str, verifier: Verifier | None = None) -> dict | None:
    """Files changed, added or removed in ``release`` since its manifest was written; None: no manifest.

    The excluded paths (shared links, writable dirs, the id file, the metadata) are ignored. A path
    below a symlink is not followed (its parent counts as changed); a file or directory that is not
    the deploy user's, or that someone else can write, is never read and is listed in ``untrusted``.
    """
    try:
        release_fd = open_release(release)
    except (OSError, Untrusted):
        return None
    try:
        doc = read(release, release_fd=release_fd)
        if doc is None:
            return None
        with Descent(release_fd) as tree:
            report = _compare(tree, doc, verifier or Verifier())
        with Descent(release_fd) as tree:
            report['added'] = _added(tree, doc)
    finally:
        os.close(release_fd)
    report.update(
        drifted=bool(report['changed'] or report['added'] or report['removed'] or report['untrusted']),
        digest=doc['digest'],
    )
    return {k: sorted(v) if isinstance(v, list) else v for k, v in report.items()}


def _excluded(doc: dict) -> set:
    return set(doc.get('exclude') or ()) | {'.release.json', MANIFEST_NAME}


def _compare(tree: Descent, doc: dict, verifier: Verifier) -> dict:
    excluded = _excluded(doc)
    records = doc['records']
    report: dict = {'changed': [], 'removed': [], 'untrusted': []}
    for e in sorted(doc['entries'], key=lambda e: e[0]):
        rel = e[0]
        if _under(rel, excluded):
            continue
        folder, name = _split(rel)
        dir_fd = tree.dir_fd(folder)
        if dir_fd is None:
            report['untrusted' if tree.untrusted(folder) else 'removed'].append(rel)
            continue
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            report['removed'].append(rel)
            continue
        if e[1] == DIR:
            same = stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == e[2]
        elif e[1] == LINK:
            same = stat.S_ISLNK(st.st_mode) and os.readlink(name, dir_fd=dir_fd) == e[2]
        else:
            if stat.S_ISREG(st.st_mode) and distrust(st, group_ok=True):
                report['untrusted'].append(rel)
                continue
            same = stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == e[2]
            same = same and verifier.check(dir_fd, name, e, records.get(rel), doc['ref_ns'])[0]
        if not same:
            report['changed'].append(rel)
    return report


def _added(tree: Descent, doc: dict) -> list:
    excluded = _excluded(doc)
    expected = {e[0]: e for e in doc['entries']}
    added: list = []
    stack = ['']
    while stack:
        rel_dir = stack.pop()
        dir_fd = tree.dir_fd(rel_dir)
        if dir_fd is None:
            continue
        try:
            with os.scandir(dir_fd) as it:
                listed = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in it]
        except OSError:
            continue
        for name, is_dir in listed:
            rel = f'{rel_dir}/{name}' if rel_dir else name
            if rel in excluded:
                continue
            e = expected.get(rel)
            if e is None:
                added.append(rel)
            elif e[1] == DIR and is_dir:
                stack.append(rel)
    return added


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
    clashes = _names().name_collisions([e[0] for e in out])
    if clashes:
        raise ManifestError(_names().describe_collisions(clashes, where='the delta manifest'))
    return out
