# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared paths: ROOT/shared/<path> created when missing and linked into each release.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: plain pytest tests it.

The deploy never writes into shared/: it creates missing directories (setgid, so files the
web server or the deploy user create there inherit the group), creates a missing shared file
empty when asked to, and links. Existing shared content is never modified.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat

from ansible_collections.atomic.deploy.plugins.module_utils import _fs, _perm, _seed
from ansible_collections.atomic.deploy.plugins.module_utils._release import ReleaseError


def normalize_rel_path(value, *, name: str) -> str:
    """A path relative to the release / shared root, refusing absolute paths and '..'."""
    if not isinstance(value, str) or not value.strip():
        raise ReleaseError(f'{name} entries must be non-empty relative paths, got {value!r}', name=name)
    if '\x00' in value:
        raise ReleaseError(f'{name} entry {value!r} contains a nul byte', name=name)
    if os.path.isabs(value):
        raise ReleaseError(f'{name} entry {value} is absolute; give a path relative to the release', name=name)
    parts = [part for part in value.split('/') if part not in ('', '.')]
    if not parts:
        raise ReleaseError(f'{name} entry {value!r} names the release itself', name=name)
    if '..' in parts:
        raise ReleaseError(f'{name} entry {value} contains ".."; shared paths must stay inside the root', name=name)
    return '/'.join(parts)


def resolve_owner(*, owner: str | None, group: str | None) -> tuple[int, int]:
    uid = gid = -1
    if owner not in (None, ''):
        try:
            uid = int(owner) if str(owner).isdigit() else pwd.getpwnam(owner).pw_uid
        except KeyError:
            raise ReleaseError(f'shared_owner {owner!r} does not exist on this host', name='shared_owner') from None
    if group not in (None, ''):
        try:
            gid = int(group) if str(group).isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise ReleaseError(f'shared_group {group!r} does not exist on this host', name='shared_group') from None
    return uid, gid


def parse_mode(value, *, name: str) -> int:
    if isinstance(value, int):
        mode = value
    else:
        text = str(value)
        if not text or any(ch not in '01234567' for ch in text) or len(text) > 4:
            raise ReleaseError(f'{name} must be an octal mode such as "2775", got {value!r}', name=name)
        mode = int(text, 8)
    if mode & 0o002:
        raise ReleaseError(f'{name} {oct(mode)} is world-writable; refusing', name=name)
    if not 0 <= mode <= 0o7777:
        raise ReleaseError(f'{name} {value!r} is not a file mode', name=name)
    return mode


_DIR_FLAGS = os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0) | getattr(os, 'O_CLOEXEC', 0)


def _open_top(path: str, *, check_mode: bool) -> int | None:
    """Open a directory the deploy user made (the root, a release) by path; None when absent in check mode."""
    try:
        return os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        if check_mode:
            return None
        raise


def _close(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


class _SharedWalk:
    """Creates and repairs paths below shared/ through descriptors, never through a symlink.

    A symlink found on a shared path is never descended through and nothing is created or changed
    below it. It is refused, unless ``allow_external`` is set and it leads out of the deploy root:
    then it stays as it is (the owner of that place manages it). A link that leads into the root
    is always refused: it is how the web server's user would make the deploy write into
    releases/ or .deploy/.
    """

    def __init__(
        self,
        *,
        root: str,
        shared: str,
        mode: int,
        uid: int,
        gid: int,
        allow_external: bool,
        check_mode: bool,
        seeder: _seed.Seeder | None = None,
    ):
        self.root = root
        self.real_root = os.path.realpath(root)
        self.shared = shared
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.allow_external = allow_external
        self.check_mode = check_mode
        self.seeder = seeder
        self.result: dict = {'created': [], 'fixed': [], 'warnings': []}
        if seeder is not None:
            self.result['seeded'] = []
        self.shared_fd: int | None = None
        self.external = False

    def __enter__(self) -> _SharedWalk:
        parent = _open_top(os.path.dirname(self.shared) or '.', check_mode=self.check_mode)
        try:
            self.shared_fd, self.external = self._dir(parent, os.path.basename(self.shared), self.shared)
        finally:
            _close(parent)
        if self.external:
            # ROOT/shared itself is the deploy user's (ROOT is not writable by the web user): a link
            # there, allowed to lead to another mount, is the shared/ everything below is made in.
            self.shared_fd = os.open(self.shared, _DIR_FLAGS)
            self.external = False
        return self

    def __exit__(self, *exc_info) -> None:
        _close(self.shared_fd)

    def record(self, key: str, path: str) -> None:
        if path not in self.result[key]:
            self.result[key].append(path)

    def refuse_or_keep_link(self, path: str) -> None:
        """A symlink stands at ``path``: raise unless it may stay (leads out of the root, allowed)."""
        try:
            target = os.path.realpath(path)
        except OSError:
            # realpath's own lstat and readlink disagree: the entry is being swapped as we look.
            raise ReleaseError(
                f'{path} changed while it was being examined (another user is replacing it); refusing to '
                f'follow it, check who writes there and run again',
                path=path,
            ) from None
        if _fs.is_within(root=self.real_root, path=target):
            raise ReleaseError(
                f'{path} is a symlink to {target}, inside the deploy root {self.root}; refusing to follow it: '
                f'a link in shared/ must not lead into the root (replace it with a real directory or file)',
                path=path,
            )
        if not self.allow_external:
            raise ReleaseError(
                f'{path} is a symlink to {target}, outside the deploy root {self.root}; refusing to follow it '
                f'(remove it, or set shared_allow_external=true if shared data lives on another mount on purpose)',
                path=path,
            )

    def _dir(self, parent_fd: int | None, name: str, path: str) -> tuple[int | None, bool]:
        """Open (creating if missing) the shared directory ``name``; returns (fd or None, is an allowed link)."""
        created = False
        if parent_fd is None:  # check mode below a directory that does not exist yet
            self.record('created', path)
            return None, False
        try:
            try:
                fd = _fs.open_dir(name, dir_fd=parent_fd, path=path)
            except FileNotFoundError:
                if self.check_mode:
                    self.record('created', path)
                    return None, False
                fd, created = _fs.make_dir(name, dir_fd=parent_fd, path=path)
        except _fs.SymlinkError:
            self.refuse_or_keep_link(path)
            return None, True
        except _fs.FileTypeError as exc:
            raise ReleaseError(str(exc), path=path) from None
        try:
            if self.check_mode:
                st = os.fstat(fd)
                refusal = _fs.setgid_refusal(st, mode=self.mode, path=path, gid=self.gid)
                if refusal:
                    raise ReleaseError(refusal, path=path)
                if (
                    stat.S_IMODE(st.st_mode) != self.mode
                    or (self.gid != -1 and st.st_gid != self.gid)
                    or (self.uid != -1 and st.st_uid != self.uid)
                ):
                    self.record('fixed', path)
            elif _fs.set_owner_mode(fd, mode=self.mode, uid=self.uid, gid=self.gid, path=path) or created:
                self.record('created' if created else 'fixed', path)
        except BaseException:
            os.close(fd)
            raise
        return fd, False

    def walk(self, parts: list[str], *, seed: bool = False) -> tuple[int | None, bool]:
        """Open shared/<parts...>, each level made and repaired; (fd or None, stopped at an allowed link).

        With ``seed``, a missing last level starts as a copy of the release's directory at that path.
        """
        fd = None if self.shared_fd is None else os.dup(self.shared_fd)
        current = self.shared
        for index, part in enumerate(parts):
            current = os.path.join(current, part)
            try:
                if seed and index == len(parts) - 1:
                    if fd is not None:
                        self.seed(fd, '/'.join(parts), current)
                    elif self.seeder is not None:  # check mode below a shared dir still to be made
                        self.record('seeded', current)
                child, external = self._dir(fd, part, current)
            finally:
                _close(fd)
            if external:
                return None, True
            fd = child
        return fd, False

    def seed(self, parent_fd: int, rel: str, path: str) -> bool:
        """Copy release/<rel> to ``path`` (in ``parent_fd``) when nothing stands there; True when seeded."""
        name = os.path.basename(path)
        if self.seeder is None or _fs.lstat_at(name, dir_fd=parent_fd) is not None:
            return False
        if self.check_mode:
            self.record('seeded', path)
            return False
        source = self.seeder.source(rel)
        seeded = False
        if source is not None:
            source_fd, _st = source
            try:
                seeded = self.seeder.seed(
                    source_fd=source_fd,
                    source_path=os.path.join(self.seeder.release, rel),
                    parent_fd=parent_fd,
                    name=name,
                    path=path,
                )
            finally:
                os.close(source_fd)
        for skipped in self.seeder.skipped:
            self.result['warnings'].append(f'seeding {path}: {skipped}')
        del self.seeder.skipped[:]
        if seeded:
            self.record('seeded', path)
            self.record('created', path)
        return seeded

    def ensure_file(self, rel: str, *, strict: bool, seed: bool = False) -> None:
        """A missing shared file is created empty, through O_EXCL and its own descriptor."""
        parts = rel.split('/')
        parent_fd, external = self.walk(parts[:-1])
        if external:
            return
        path = os.path.join(self.shared, rel)
        try:
            st = None if parent_fd is None else _fs.lstat_at(parts[-1], dir_fd=parent_fd)
            if st is None and seed and parent_fd is not None and self.seeder is not None:
                if self.seed(parent_fd, rel, path):
                    return
                if self.check_mode:
                    self.record('created', path)
                    return
            if st is None:
                if strict:
                    raise ReleaseError(
                        f'shared file {path} does not exist (shared_strict is on); create it before deploying',
                        path=path,
                    )
                file_mode = 0o660 if self.mode & 0o020 else 0o640
                if self.check_mode or _fs.create_file(
                    parts[-1], dir_fd=parent_fd, mode=file_mode, uid=self.uid, gid=self.gid
                ):
                    self.result['warnings'].append(f'shared file {path} did not exist; created it empty')
                    self.record('created', path)
                    return
                st = _fs.lstat_at(parts[-1], dir_fd=parent_fd)  # appeared meanwhile: judge what it is
            if st is not None and stat.S_ISLNK(st.st_mode):
                self.refuse_or_keep_link(path)
            elif st is not None and stat.S_ISDIR(st.st_mode):
                raise ReleaseError(f'shared file {path} is a directory; list it in shared_dirs instead', path=path)
        finally:
            _close(parent_fd)


def ensure_shared(
    *,
    root: str,
    shared: str,
    dirs: list[str],
    files: list[str],
    mode: int,
    uid: int = -1,
    gid: int = -1,
    strict: bool = False,
    allow_external: bool = False,
    check_mode: bool = False,
    seed: list[str] | tuple[str, ...] = (),
    release: str | None = None,
) -> dict:
    """Create missing shared dirs (mode/owner enforced on them) and missing files (empty).

    Paths in ``seed`` that are missing start as a copy of ``release``/<path> instead (_seed.py).
    Returns {'created': [...], 'fixed': [...], 'warnings': [...]}, and 'seeded': [...] with ``seed``. Never touches the
    contents of an existing shared dir or file, never follows a symlink below shared/ (see _SharedWalk).
    """
    seeder = _seed.Seeder(release=release, mode=mode, uid=uid, gid=gid) if seed and release else None
    walk = _SharedWalk(
        root=root,
        shared=shared,
        mode=mode,
        uid=uid,
        gid=gid,
        allow_external=allow_external,
        check_mode=check_mode,
        seeder=seeder,
    )
    with walk:
        for rel in dirs:
            fd, _external = walk.walk(rel.split('/'), seed=rel in seed)
            _close(fd)
        for rel in files:
            walk.ensure_file(rel, strict=strict, seed=rel in seed)
    return walk.result


def _release_parents(
    *, release_fd: int | None, release: str, parts: list[str], what: str, made: list[str], check_mode: bool
) -> int | None:
    """Open release/<parts...>, making missing levels 0755; a symlink or file on the way is refused."""
    fd = None if release_fd is None else os.dup(release_fd)
    current = release
    for part in parts:
        current = os.path.join(current, part)
        child = None
        try:
            if fd is not None:
                try:
                    child = _fs.open_dir(part, dir_fd=fd, path=current)
                except FileNotFoundError:
                    if not check_mode:
                        child, _created = _fs.make_dir(part, dir_fd=fd, path=current)
                        _fs.set_owner_mode(child, mode=0o755)
                    made.append(current)
            else:
                made.append(current)
        except _fs.SymlinkError:
            raise ReleaseError(f'{what}: {current} in the release is a symlink', path=current) from None
        except _fs.FileTypeError:
            raise ReleaseError(f'{what}: {current} in the release is not a directory', path=current) from None
        finally:
            _close(fd)
        fd = child
    return fd


def link_into_release(
    *, release: str, shared: str, paths: list[str], style: str = 'relative', check_mode: bool = False
) -> dict:
    """Link release/<p> -> shared/<p> for each path.

    Missing parent dirs inside the release are created; whatever the build put at that path
    (an empty dir, a placeholder file, a stale link) is replaced. A parent inside the release
    that is a symlink is refused: the link would land outside the release. Everything is done
    through descriptors opened beneath the release, so a parent swapped for a symlink meanwhile
    is refused too.
    Returns {'linked': [...], 'replaced': [...], 'parents': [...]}.
    """
    result: dict = {'linked': [], 'replaced': [], 'parents': []}
    release_fd = _open_top(release, check_mode=check_mode)
    try:
        for rel in paths:
            parts = rel.split('/')
            parent_fd = _release_parents(
                release_fd=release_fd,
                release=release,
                parts=parts[:-1],
                what=f'cannot link shared path {rel}',
                made=result['parents'],
                check_mode=check_mode,
            )
            try:
                _link_one(
                    parent_fd=parent_fd,
                    release=release,
                    shared=shared,
                    rel=rel,
                    style=style,
                    check_mode=check_mode,
                    result=result,
                )
            finally:
                _close(parent_fd)
    finally:
        _close(release_fd)
    return result


def _link_one(
    *, parent_fd: int | None, release: str, shared: str, rel: str, style: str, check_mode: bool, result: dict
) -> None:
    link = os.path.join(release, rel)
    name = os.path.basename(rel)
    target_abs = os.path.join(shared, rel)
    text = target_abs if style == 'absolute' else os.path.relpath(target_abs, os.path.dirname(link))
    st = None if parent_fd is None else _fs.lstat_at(name, dir_fd=parent_fd)
    if st is not None:
        if stat.S_ISLNK(st.st_mode) and os.readlink(name, dir_fd=parent_fd) == text:
            return
        result['replaced'].append(link)
        if not check_mode:
            failed = _fs.remove_at(name, dir_fd=parent_fd, path=link)
            if failed:
                raise ReleaseError(
                    f'could not remove {link} from the release to link shared/{rel}: {failed}', path=link
                )
    result['linked'].append(link)
    if not check_mode:
        os.symlink(text, name, dir_fd=parent_fd)


def ensure_writable(
    *,
    release: str,
    paths: list[str],
    mode: int,
    grant: _perm.Grant | None = None,
    check_mode: bool = False,
    diff: list | None = None,
) -> list[str]:
    """Create directories inside the release that the app writes to and give them to the web server.

    ``grant`` (default: chmod to ``mode``) says how (_perm.py); it is applied through the descriptor
    the walk opened. Returns the paths created or changed; ``diff``, when given, receives
    ``{'path', 'before', 'after'}`` per changed directory.
    """
    grant = grant or _perm.Grant(method='chmod', mode=mode)
    changed: list[str] = []
    release_fd = _open_top(release, check_mode=check_mode)
    try:
        for rel in paths:
            parts = rel.split('/')
            made: list[str] = []
            fd = _release_parents(
                release_fd=release_fd,
                release=release,
                parts=parts,
                what=f'writable dir {rel}',
                made=made,
                check_mode=check_mode,
            )
            try:
                final = os.path.join(release, rel)
                if fd is not None:
                    try:
                        outcome = _perm.apply(fd, path=final, grant=grant, check_mode=check_mode)
                    except _perm.PermError as exc:
                        raise ReleaseError(str(exc), path=final) from None
                    if outcome['changed']:
                        made.append(final)
                        if diff is not None:
                            diff.append({'path': final, 'before': outcome['before'], 'after': outcome['after']})
            finally:
                _close(fd)
            changed.extend(path for path in made if path not in changed)
    finally:
        _close(release_fd)
    return changed
