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

from ansible_collections.atomic.deploy.plugins.module_utils import _fs
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


def _check_component(*, path: str, root: str, allow_external: bool) -> os.stat_result | None:
    """lstat a path under shared/; refuse a symlink that leads out of the deploy root."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        if not allow_external and not _fs.is_within(root=root, path=target):
            raise ReleaseError(
                f'{path} is a symlink to {target}, outside the deploy root {root}; refusing to follow it '
                f'(set shared_allow_external=true if shared data lives on another mount on purpose)',
                path=path,
            )
    return st


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
) -> dict:
    """Create missing shared dirs (mode/owner enforced on them) and missing files (empty).

    Returns {'created': [...], 'fixed': [...], 'warnings': [...]}. Never touches the contents of
    an existing shared dir or file.
    """
    result: dict = {'created': [], 'fixed': [], 'warnings': []}

    def ensure(path: str) -> None:
        st = _check_component(path=path, root=root, allow_external=allow_external)
        if st is not None and stat.S_ISLNK(st.st_mode):
            return  # an allowed link to elsewhere: the owner of that place manages it
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise ReleaseError(f'{path} exists and is not a directory', path=path)
        if check_mode:
            if st is None:
                result['created'].append(path)
            elif (
                stat.S_IMODE(st.st_mode) != mode or (gid != -1 and st.st_gid != gid) or (uid != -1 and st.st_uid != uid)
            ):
                result['fixed'].append(path)
            return
        if _fs.ensure_dir(path=path, mode=mode, uid=uid, gid=gid):
            (result['created'] if st is None else result['fixed']).append(path)

    def ensure_parents(rel: str) -> None:
        ensure(shared)
        current = shared
        for part in rel.split('/')[:-1]:
            current = os.path.join(current, part)
            ensure(current)

    ensure(shared)
    for rel in dirs:
        ensure_parents(rel)
        ensure(os.path.join(shared, rel))
    for rel in files:
        ensure_parents(rel)
        path = os.path.join(shared, rel)
        st = _check_component(path=path, root=root, allow_external=allow_external)
        if st is None:
            if strict:
                raise ReleaseError(
                    f'shared file {path} does not exist (shared_strict is on); create it before deploying', path=path
                )
            result['warnings'].append(f'shared file {path} did not exist; created it empty')
            result['created'].append(path)
            if not check_mode:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0), 0o640)
                os.close(fd)
                if uid != -1 or gid != -1:
                    os.lchown(path, uid, gid)
                os.chmod(path, 0o660 if mode & 0o020 else 0o640)
        elif stat.S_ISDIR(st.st_mode):
            raise ReleaseError(f'shared file {path} is a directory; list it in shared_dirs instead', path=path)
    return result


def link_into_release(
    *, release: str, shared: str, paths: list[str], style: str = 'relative', check_mode: bool = False
) -> dict:
    """Link release/<p> -> shared/<p> for each path.

    Missing parent dirs inside the release are created; whatever the build put at that path
    (an empty dir, a placeholder file, a stale link) is replaced. A parent inside the release
    that is a symlink is refused: the link would land outside the release.
    Returns {'linked': [...], 'replaced': [...], 'parents': [...]}.
    """
    result: dict = {'linked': [], 'replaced': [], 'parents': []}
    for rel in paths:
        link = os.path.join(release, rel)
        target_abs = os.path.join(shared, rel)
        current = release
        for part in rel.split('/')[:-1]:
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                result['parents'].append(current)
                if not check_mode:
                    os.mkdir(current, 0o755)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise ReleaseError(
                    f'cannot link shared path {rel}: {current} in the release is a symlink', path=current
                )
            if not stat.S_ISDIR(st.st_mode):
                raise ReleaseError(
                    f'cannot link shared path {rel}: {current} in the release is not a directory', path=current
                )
        text = target_abs if style == 'absolute' else os.path.relpath(target_abs, os.path.dirname(link))
        existing = _fs.read_link(link)
        if existing == text:
            continue
        if existing is not None or os.path.lexists(link):
            result['replaced'].append(link)
            if not check_mode:
                failed = _fs.remove_tree(link)
                if failed:
                    raise ReleaseError(
                        f'could not remove {link} from the release to link shared/{rel}: {failed}', path=link
                    )
        result['linked'].append(link)
        if not check_mode:
            os.symlink(text, link)
    return result


def ensure_writable(*, release: str, paths: list[str], mode: int, check_mode: bool = False) -> list[str]:
    """Create (or chmod) directories inside the release that the app writes to."""
    changed = []
    for rel in paths:
        current = release
        for part in rel.split('/'):
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                st = None
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise ReleaseError(f'writable dir {rel}: {current} in the release is a symlink', path=current)
            if st is not None and not stat.S_ISDIR(st.st_mode):
                raise ReleaseError(f'writable dir {rel}: {current} in the release is not a directory', path=current)
            final = current == os.path.join(release, rel)
            wanted = mode if final else None
            if st is None or (wanted is not None and stat.S_IMODE(st.st_mode) != wanted):
                changed.append(current)
                if not check_mode:
                    if st is None:
                        os.mkdir(current, 0o755)
                    if wanted is not None:
                        os.chmod(current, wanted)
    return changed
