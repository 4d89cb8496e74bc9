# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Releases: ids, metadata, deploy order, the rollback candidate and the switch of ``current``
(pruning is ``_prune.py``).

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: plain pytest tests it.

Deploy order is the ``started`` time a release records in its metadata when it is created,
then its id. It is never the filesystem mtime and never the name alone. Every caller that
needs "newest" or "previous" goes through :func:`list_releases`.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import pwd
import re
import socket
import stat
import time

from ansible_collections.atomic.deploy.plugins.module_utils import _fs, _manifest

METADATA_NAME = '.release.json'
FORMAT = 1
RELEASE_ID_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$')

COMPLETE = 'complete'
UNFINISHED = 'unfinished'
FAILED = 'failed'
UNMANAGED = 'unmanaged'
# States as stored on disk -> states as reported.
_STORED = {'in_progress': UNFINISHED, 'complete': COMPLETE, 'failed': FAILED}

TMP_PREFIX = '.tmp-'
TRASH_PREFIX = '.trash-'


class ReleaseError(Exception):
    """A release operation was refused; the message is lower-case and names the path or input."""

    def __init__(self, msg: str, **details) -> None:
        super().__init__(msg)
        self.details = details


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment: datetime.datetime | None = None) -> str:
    """ISO 8601 UTC with microseconds and a Z; sorts lexically in time order."""
    moment = moment or utcnow()
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def validate_id(value, *, name: str = 'id') -> str:
    """Return the id or raise ReleaseError naming ``name``."""
    if not isinstance(value, str):
        raise ReleaseError(f'{name} must be a string, got {type(value).__name__}', name=name)
    if value == '':
        raise ReleaseError(f'{name} must not be empty', name=name)
    if '\x00' in value:
        raise ReleaseError(f'{name} {value!r} contains a nul byte', name=name)
    if '/' in value or value in ('.', '..'):
        raise ReleaseError(f'{name} {value!r} is a path; a release id is a single name', name=name)
    if not RELEASE_ID_RE.match(value):
        raise ReleaseError(
            f'{name} {value!r} is not a valid release id: use letters, digits, ".", "_" and "-", '
            f'at most 128 characters, not starting with "." or "-"',
            name=name,
        )
    return value


class Layout:
    """Paths of one deploy root."""

    def __init__(self, root: str) -> None:
        if not isinstance(root, str) or not root:
            raise ReleaseError('root must be a non-empty path', name='root')
        if '\x00' in root:
            raise ReleaseError('root contains a nul byte', name='root')
        if not os.path.isabs(root):
            raise ReleaseError(f'root {root} must be an absolute path', name='root')
        self.root = os.path.normpath(root)
        self.releases = os.path.join(self.root, 'releases')
        self.shared = os.path.join(self.root, 'shared')
        self.current = os.path.join(self.root, 'current')
        self.next = os.path.join(self.root, 'next')
        self.deploy = os.path.join(self.root, '.deploy')
        self.lock = os.path.join(self.deploy, 'lock')
        self.history = os.path.join(self.deploy, 'history.jsonl')
        self.tmp = os.path.join(self.deploy, 'tmp')
        self.repo = os.path.join(self.deploy, 'repo.git')
        # root acting on a root a deploy user deploys to trusts that user's releases (SECURITY.md)
        _manifest.adopt_deploy_owner(self.root)

    def release(self, release_id: str) -> str:
        return os.path.join(self.releases, validate_id(release_id))

    def link_text(self, release_id: str, *, style: str = 'relative') -> str:
        """Text of the ``current`` link for a release."""
        if style == 'absolute':
            return self.release(release_id)
        return os.path.join('releases', validate_id(release_id))


class Release:
    """One entry of ``releases/`` as read from disk."""

    __slots__ = ('id', 'path', 'state', 'meta', 'current')

    def __init__(self, *, release_id: str, path: str, state: str, meta: dict | None) -> None:
        self.id = release_id
        self.path = path
        self.state = state
        self.meta = meta or {}
        self.current = False

    @property
    def started(self) -> str | None:
        value = self.meta.get('started')
        return value if isinstance(value, str) else None

    def order_key(self) -> tuple:
        # Unmanaged directories have no start time: they sort first (oldest) and are never
        # pruned nor offered for rollback, so their position only affects display.
        return (0 if self.state == UNMANAGED else 1, self.started or '', self.id)

    def as_dict(self) -> dict:
        return {
            'id': self.id,
            'path': self.path,
            'state': self.state,
            'current': self.current,
            'started': self.started,
            'finished': self.meta.get('finished'),
            'failed_at': self.meta.get('failed_at'),
            'deactivated_at': self.meta.get('deactivated_at'),
            'reason': self.meta.get('reason'),
            'deployed_by': self.meta.get('deployed_by'),
            'source': self.meta.get('source'),
        }


def read_metadata(release_path: str) -> dict | None:
    """Metadata of a release directory, or None when missing, unreadable or not the deploy user's."""
    try:
        fd = _manifest.open_release(release_path)
    except (OSError, _manifest.Untrusted):
        return None
    try:
        return _read_metadata_at(fd)[0]
    finally:
        os.close(fd)


def _read_metadata_at(release_fd: int) -> tuple[dict | None, str | None]:
    """(metadata, None), (None, None) when there is none (unmanaged), or (None, why) when the file is
    there but the deploy user did not write it (or someone else can write it)."""
    try:
        raw = _manifest.read_trusted(METADATA_NAME, dir_fd=release_fd)
    except _manifest.Untrusted as exc:
        return None, f'{METADATA_NAME} is {exc}' if str(exc).startswith(('owned', 'writable')) else str(exc)
    except OSError:
        return None, None
    try:
        data = json.loads(raw.decode('utf-8'))
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(data, dict) or data.get('state') not in _STORED:
        return None, None
    return data, None


def write_metadata(*, release_path: str, meta: dict, fsync: bool = True) -> None:
    data = json.dumps(meta, sort_keys=True, indent=2).encode('utf-8') + b'\n'
    _fs.atomic_write(
        path=os.path.join(release_path, METADATA_NAME), data=data, mode=_manifest.METADATA_MODE, fsync=fsync
    )


def make_private(release_path: str) -> list[str]:
    """Take the read bits for others off the metadata and manifest of a release written before they were
    private (0644); through descriptors opened without following links. Returns the paths changed."""
    changed = []
    try:
        release_fd = _manifest.open_release(release_path)
    except (OSError, _manifest.Untrusted):
        return changed
    try:
        for name in (METADATA_NAME, _manifest.MANIFEST_NAME):
            try:
                fd = _manifest.open_trusted(name, dir_fd=release_fd)
            except (OSError, _manifest.Untrusted):
                continue
            try:
                mode = stat.S_IMODE(os.fstat(fd).st_mode)
                if mode & 0o077:
                    os.fchmod(fd, mode & 0o700)
                    changed.append(os.path.join(release_path, name))
            finally:
                os.close(fd)
    finally:
        os.close(release_fd)
    return changed


def state_of(meta: dict | None) -> str:
    if meta is None:
        return UNMANAGED
    return _STORED[meta['state']]


def list_releases(layout: Layout, untrusted: list | None = None) -> tuple[list[Release], list[str]]:
    """Releases in deploy order (oldest first), and the names in releases/ that are not releases.

    Symlinks and files in releases/ are never followed and never treated as releases.
    In-flight temp and trash directories are listed as ignored. A directory the deploy user did not
    make, or whose metadata it did not write, or that anyone else can write, is not a release: it is
    ignored, and ``untrusted`` (when given) gets ``{'path', 'reason'}`` for it.
    """
    releases: list[Release] = []
    ignored: list[str] = []
    found = untrusted if untrusted is not None else []
    try:
        releases_fd = _manifest.open_trusted(layout.releases, directory=True)
    except FileNotFoundError:
        return [], []
    except (OSError, _manifest.Untrusted) as exc:
        found.append({'path': layout.releases, 'reason': _why(exc)})
        return [], []
    try:
        with os.scandir(releases_fd) as it:
            entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in it]
        for name, is_dir in entries:
            path = os.path.join(layout.releases, name)
            if not is_dir or (name.startswith('.') and not name.startswith((TMP_PREFIX, TRASH_PREFIX))):
                ignored.append(name)
                continue
            release_fd, why = _open_entry(releases_fd, name)
            if release_fd is None or name.startswith('.') or not RELEASE_ID_RE.match(name):
                if why:
                    found.append({'path': path, 'reason': why})
                ignored.append(name)
                if release_fd is not None:
                    os.close(release_fd)
                continue
            try:
                meta, why = _read_metadata_at(release_fd)
            finally:
                os.close(release_fd)
            if why:
                found.append({'path': path, 'reason': why})
                ignored.append(name)
                continue
            if meta is not None and meta.get('id') not in (None, name):
                # A release directory renamed by hand: its metadata describes another id.
                meta = None
            releases.append(Release(release_id=name, path=path, state=state_of(meta), meta=meta))
    finally:
        os.close(releases_fd)
    releases.sort(key=Release.order_key)
    current = current_id(layout)
    for release in releases:
        release.current = release.id == current
    return releases, sorted(ignored)


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        return 'a symlink or not a directory'
    return str(exc) if isinstance(exc, _manifest.Untrusted) else (exc.strerror or str(exc)).lower()


def _open_entry(releases_fd: int, name: str) -> tuple[int | None, str | None]:
    """(descriptor, None) of a directory in releases/ the deploy user made, else (None, why)."""
    try:
        return _manifest.open_trusted(name, dir_fd=releases_fd, directory=True), None
    except (OSError, _manifest.Untrusted) as exc:
        return None, _why(exc)


def untrusted_warnings(untrusted: list) -> list[str]:
    """One warning per entry of releases/ that is not trusted (list_releases ``untrusted``)."""
    return [
        f'ignoring {item["path"]}: not trusted ({item["reason"]}); it is never listed as a release, reused, '
        'rolled back to or pruned (the deploy user did not make it: see SECURITY.md)'
        for item in untrusted
    ]


def current_id(layout: Layout) -> str | None:
    """The release id ``current`` points at, or None (missing, not a link, or pointing elsewhere)."""
    return _link_id(layout, layout.current)


def next_id(layout: Layout) -> str | None:
    """The release id ``next`` (the staged release served for checks before the switch) points at."""
    return _link_id(layout, layout.next)


def _link_id(layout: Layout, link: str) -> str | None:
    text = _fs.read_link(link)
    if text is None:
        return None
    resolved = _fs.resolve_link_target(link=link, text=text)
    if os.path.dirname(resolved) != layout.releases:
        return None
    name = os.path.basename(resolved)
    return name if RELEASE_ID_RE.match(name) else None


def find(releases: list[Release], release_id: str | None) -> Release | None:
    for release in releases:
        if release.id == release_id:
            return release
    return None


def rollback_candidate(releases: list[Release], current: str | None) -> Release | None:
    """The newest complete release before ``current`` in deploy order.

    Failed and unfinished releases are skipped. With no current release, the newest complete one.
    """
    position = len(releases)
    if current is not None:
        for index, release in enumerate(releases):
            if release.id == current:
                position = index
                break
    for release in reversed(releases[:position]):
        if release.state == COMPLETE and release.id != current:
            return release
    return None


def host_user() -> str:
    """The user this process runs as on the host (the remote user, or the become user)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def new_metadata(*, release_id: str, owner: dict | None, source: dict | None) -> dict:
    # deployed_by: who ran the deploy, as the controller knows them (user, controller, AWX job),
    # and host_user, the user that wrote the release on this host.
    return {
        'format': FORMAT,
        'id': release_id,
        'state': 'in_progress',
        'started': iso(),
        'deployed_by': dict(owner or {}, host_user=host_user()),
        'source': source or {},
        'host': socket.gethostname(),
    }


def create_release(*, layout: Layout, release_id: str, meta: dict, fsync: bool = True) -> str:
    """Create releases/<id> so that it never exists without its in-progress marker.

    The directory is built under a temp name, gets its marker, and is renamed into place.
    """
    final = layout.release(release_id)
    tmp = _fs.temp_path(directory=layout.releases, prefix=f'{TMP_PREFIX}{release_id}-')
    os.mkdir(tmp, 0o755)
    try:
        os.chmod(tmp, 0o755)
        write_metadata(release_path=tmp, meta=meta, fsync=fsync)
        try:
            os.rename(tmp, final)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise ReleaseError(f'release directory {final} already exists', path=final) from None
            raise
    except BaseException:
        _fs.remove_tree(tmp)
        raise
    if fsync:
        _fs.fsync_dir(layout.releases)
    return final


def discard_release(*, layout: Layout, release: Release) -> list[str]:
    """Take a release out of releases/ at once (rename to a trash name), then delete it.

    Returns what could not be removed; the trash directory is retried by the next prune.
    """
    trash = _fs.temp_path(directory=layout.releases, prefix=f'{TRASH_PREFIX}{release.id}-')
    os.rename(release.path, trash)
    return _fs.remove_tree(trash)


def leftovers(layout: Layout) -> list[str]:
    """Temp and trash directories left by interrupted runs of the deploy user.

    One it did not make (or that someone else can write) is never removed: list_releases reports it.
    """
    found = []
    try:
        releases_fd = _manifest.open_trusted(layout.releases, directory=True)
    except (OSError, _manifest.Untrusted):
        return []
    try:
        with os.scandir(releases_fd) as it:
            names = [entry.name for entry in it if entry.name.startswith((TMP_PREFIX, TRASH_PREFIX))]
        for name in names:
            fd, _why_not = _open_entry(releases_fd, name)
            if fd is not None:
                os.close(fd)
                found.append(os.path.join(layout.releases, name))
    finally:
        os.close(releases_fd)
    return sorted(found)


def stale_temp_links(layout: Layout) -> list[str]:
    """Temp links for ``current`` left by a crash between stage and commit."""
    prefix = _fs.temp_link_prefix(layout.current)
    found = []
    try:
        entries = list(os.scandir(layout.root))
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.name.startswith(prefix) and stat.S_ISLNK(entry.stat(follow_symlinks=False).st_mode):
            found.append(entry.path)
    return sorted(found)


def ensure_deploy_dir(layout: Layout) -> None:
    """Create ROOT (if missing) and ROOT/.deploy (0750): lock and history are not for the web user."""
    missing = []
    path = layout.root
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    # One level at a time with an explicit mode: makedirs would make parents 0777 & ~umask.
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            continue  # a concurrent deploy made it; ensure_dir below still checks the root itself
        os.chmod(path, 0o755)
    _fs.ensure_dir(path=layout.deploy, mode=0o750)
    require_trusted(layout.deploy, what='the lock and the history')


def require_trusted(path: str, *, what: str) -> None:
    """Refuse a directory of the deploy root that another user owns or anyone else can write."""
    try:
        os.close(_manifest.open_trusted(path, directory=True))
    except _manifest.Untrusted as exc:
        raise ReleaseError(
            f"{path} is not trusted ({exc}); refusing to keep {what} there (it must be the deploy user's, "
            'and nobody else may write it)',
            path=path,
        ) from None


MAX_SWITCH_WAIT = 600.0


def switch_current(
    *,
    layout: Layout,
    release_id: str,
    style: str = 'relative',
    switch_at: float | None = None,
    fsync: bool = True,
    adopt: bool = False,
    clock=None,
    sleep=None,
) -> dict:
    """Point ``current`` at a release with one rename(2), at ``switch_at`` if given.

    The temp link is made first, so all that is left at the agreed instant is the rename.
    A real directory at ``current`` is refused unless ``adopt`` (then renameat2 exchange).
    Returns {'previous_target', 'target', 'switched_at', 'late', 'waited', 'backup'}: ``waited`` is
    how long the temp link waited for ``switch_at``, ``late`` how long after it the host got there.
    Callers hold the deploy lock, so temp links left by a crashed switch are swept here.
    """
    clock = clock or time.time
    sleep = sleep or time.sleep
    text = layout.link_text(release_id, style=style)
    if not os.path.isdir(layout.release(release_id)):
        raise ReleaseError(
            f'release directory {layout.release(release_id)} does not exist', path=layout.release(release_id)
        )
    try:
        st = os.lstat(layout.current)
    except FileNotFoundError:
        st = None
    is_dir = st is not None and stat.S_ISDIR(st.st_mode)
    if st is not None and not stat.S_ISLNK(st.st_mode) and not (is_dir and adopt):
        kind = 'directory' if is_dir else 'file'
        raise ReleaseError(
            f'{layout.current} is a real {kind}, not a symlink; refusing to replace it '
            '(set adopt=true, role variable release_adopt_current=true, to swap it for the link '
            'and keep it as a backup)',
            path=layout.current,
        )
    for stale in stale_temp_links(layout):
        _fs.discard(stale)
    previous = None if is_dir else _fs.read_link(layout.current)
    leaving = None if is_dir else current_id(layout)
    if switch_at is not None and switch_at - clock() > MAX_SWITCH_WAIT:
        raise ReleaseError(
            f'switch_at {switch_at} is more than {int(MAX_SWITCH_WAIT)} seconds ahead of this host clock',
            name='switch_at',
        )
    tmp = None if is_dir else _fs.stage_symlink(path=layout.current, target=text)
    try:
        late = waited = 0.0
        if switch_at is not None:
            delay = switch_at - clock()
            if delay > 0:
                sleep(delay)
                waited = delay
            else:
                late = -delay
        backup = None
        if is_dir:
            backup = _fs.adopt_directory(path=layout.current, target=text, fsync=fsync)
            switched_at = clock()
        else:
            os.replace(tmp, layout.current)
            switched_at = clock()
            tmp = None
            if fsync:
                _fs.fsync_dir(layout.root)
    finally:
        if tmp is not None:
            _fs.discard(tmp)
    if leaving is not None and leaving != release_id:
        record_deactivated(layout=layout, release_id=leaving, at=switched_at, fsync=fsync)
    return {
        'previous_target': previous,
        'target': text,
        'switched_at': switched_at,
        'late': round(late, 6),
        'waited': round(waited, 6),
        'backup': backup,
    }


def record_deactivated(*, layout: Layout, release_id: str, at: float, fsync: bool = True) -> None:
    """Write ``deactivated_at`` into the metadata of the release ``current`` just left (pruning reads it).

    A release without readable metadata (unmanaged) is left alone.
    """
    path = layout.release(release_id)
    meta = read_metadata(path)
    if meta is None:
        return
    meta['deactivated_at'] = iso(datetime.datetime.fromtimestamp(at, datetime.timezone.utc))
    write_metadata(release_path=path, meta=meta, fsync=fsync)


def _fresh_meta(release: Release) -> dict:
    """The metadata on disk now (a switch may have added deactivated_at since the release was listed)."""
    return dict(read_metadata(release.path) or release.meta)


def finalize(*, release: Release, extra: dict | None = None, fsync: bool = True) -> dict:
    """Mark an in-progress release complete; returns the new metadata."""
    meta = _fresh_meta(release)
    meta.update(extra or {})
    meta['state'] = 'complete'
    meta['finished'] = iso()
    write_metadata(release_path=release.path, meta=meta, fsync=fsync)
    release.meta = meta
    release.state = COMPLETE
    return meta


def mark_failed(*, release: Release, reason: str, fsync: bool = True) -> dict:
    meta = _fresh_meta(release)
    meta['state'] = 'failed'
    meta['failed_at'] = iso()
    meta['reason'] = reason
    write_metadata(release_path=release.path, meta=meta, fsync=fsync)
    release.meta = meta
    release.state = FAILED
    return meta
