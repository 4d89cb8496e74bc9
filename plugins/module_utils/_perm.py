# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Permissions of a directory the web server writes: chmod, chgrp, chown or POSIX ACLs.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: plain pytest tests it.

Everything here acts on a directory that is already open (``fd``, opened by the caller with
``O_NOFOLLOW | O_DIRECTORY``): fchmod, fchown and fsetxattr, never a path, so a symlink swapped in
after the open changes nothing. ``path`` only names the directory in messages.
"""

from __future__ import annotations

import dataclasses
import errno
import grp
import os
import pwd
import stat
import struct

from ansible_collections.atomic.deploy.plugins.module_utils import _fs

METHODS = ('chmod', 'chgrp', 'chown', 'acl')

# POSIX ACLs travel through the Linux xattr interface as these two attributes, in the kernel's
# posix_acl_xattr format (include/uapi/linux/posix_acl_xattr.h), little-endian:
#   header  u32 a_version = 2
#   entry   u16 e_tag, u16 e_perm (r=4 w=2 x=1), u32 e_id (uid or gid; ACL_UNDEFINED_ID unless
#           the tag is ACL_USER or ACL_GROUP)
# The kernel accepts entries only in this order: USER_OBJ, USER (ascending id), GROUP_OBJ, GROUP
# (ascending id), MASK, OTHER; a MASK entry is required once a named entry exists. It is what
# setfacl writes and getfacl reads.
ACL_ACCESS = 'system.posix_acl_access'
ACL_DEFAULT = 'system.posix_acl_default'
ACL_VERSION = 2
ACL_USER_OBJ = 0x01
ACL_USER = 0x02
ACL_GROUP_OBJ = 0x04
ACL_GROUP = 0x08
ACL_MASK = 0x10
ACL_OTHER = 0x20
ACL_UNDEFINED_ID = 0xFFFFFFFF
_HEADER = struct.Struct('<I')
_ENTRY = struct.Struct('<HHI')
_TAG_NAMES = {
    ACL_USER_OBJ: 'user',
    ACL_USER: 'user',
    ACL_GROUP_OBJ: 'group',
    ACL_GROUP: 'group',
    ACL_MASK: 'mask',
    ACL_OTHER: 'other',
}
_NO_ACL = (errno.ENODATA,) if hasattr(errno, 'ENODATA') else ()
_UNSUPPORTED = tuple({errno.ENOTSUP, getattr(errno, 'EOPNOTSUPP', errno.ENOTSUP)})


class PermError(Exception):
    """Permissions could not be planned or applied; ``path`` or ``name`` says what it was about."""

    def __init__(self, msg: str, *, path: str | None = None, name: str | None = None) -> None:
        super().__init__(msg)
        self.path = path
        self.name = name


@dataclasses.dataclass(frozen=True)
class Grant:
    """How a writable directory is given to the web server.

    ``chmod``: ``mode`` only. ``chgrp``: group ``gid`` and ``mode``. ``chown``: owner ``uid`` (and
    group ``gid`` when set) and ``mode``. ``acl``: ``mode``, plus access and default ACL entries
    giving ``uid`` and/or ``gid`` rwx, so what the web server creates inside inherits them.
    """

    method: str = 'chmod'
    mode: int = 0o2775
    uid: int = -1
    gid: int = -1


def _lookup(value, *, kind: str, name: str) -> int:
    if value in (None, ''):
        return -1
    text = str(value)
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid if kind == 'user' else grp.getgrnam(text).gr_gid
    except KeyError:
        raise PermError(f'{name} {text!r}: no such {kind} on this host', name=name) from None


def make_grant(*, method: str, mode: int, user=None, group=None, prefix: str = 'writable') -> Grant:
    """Check the method's options (named ``<prefix>_method`` etc. in messages) and resolve names."""
    if method not in METHODS:
        raise PermError(f'{prefix}_method must be one of {", ".join(METHODS)}, got {method!r}', name=f'{prefix}_method')
    uid = _lookup(user, kind='user', name=f'{prefix}_user')
    gid = _lookup(group, kind='group', name=f'{prefix}_group')
    needs = {
        'chmod': (),
        'chgrp': (f'{prefix}_group',),
        'chown': (f'{prefix}_user',),
    }.get(method, ())
    given = {f'{prefix}_user': uid != -1, f'{prefix}_group': gid != -1}
    for option in needs:
        if not given[option]:
            raise PermError(f'{prefix}_method={method} needs {option}', name=option)
    if method == 'acl' and not any(given.values()):
        raise PermError(
            f'{prefix}_method=acl needs {prefix}_user or {prefix}_group (who gets the ACL entries)',
            name=f'{prefix}_user',
        )
    if method == 'chmod' and any(given.values()):
        option = next(key for key, value in given.items() if value)
        raise PermError(f'{option} is only used with {prefix}_method chgrp, chown or acl (it is chmod)', name=option)
    if method == 'chgrp' and given[f'{prefix}_user']:
        raise PermError(f'{prefix}_user is not used with {prefix}_method=chgrp', name=f'{prefix}_user')
    return Grant(method=method, mode=mode, uid=uid, gid=gid)


# --- the ACL format -----------------------------------------------------------------------------


def encode_acl(entries) -> bytes:
    return _HEADER.pack(ACL_VERSION) + b''.join(_ENTRY.pack(tag, perm, ident) for tag, perm, ident in entries)


def decode_acl(data: bytes, *, path: str = '') -> list[tuple[int, int, int]]:
    if len(data) < _HEADER.size or (len(data) - _HEADER.size) % _ENTRY.size:
        raise PermError(f'{path}: unreadable acl ({len(data)} bytes)', path=path)
    (version,) = _HEADER.unpack_from(data)
    if version != ACL_VERSION:
        raise PermError(f'{path}: acl format version {version} is not supported', path=path)
    return [_ENTRY.unpack_from(data, offset) for offset in range(_HEADER.size, len(data), _ENTRY.size)]


def _perm_text(perm: int) -> str:
    return ''.join(letter if perm & bit else '-' for letter, bit in (('r', 4), ('w', 2), ('x', 1)))


def acl_text(entries) -> list[str]:
    """getfacl's lines (``user:33:rwx``) for a diff; ids stay numeric, as names may not resolve."""
    lines = []
    for tag, perm, ident in entries:
        qualifier = str(ident) if tag in (ACL_USER, ACL_GROUP) else ''
        lines.append(f'{_TAG_NAMES.get(tag, hex(tag))}:{qualifier}:{_perm_text(perm)}')
    return lines


def wanted_acl(*, grant: Grant, owner: int) -> list[tuple[int, int, int]]:
    """The access ACL (also used as the default ACL) for a directory owned by ``owner``.

    Owner and other keep what ``grant.mode`` gives them; the named user and group get rwx. The
    owner of the directory (the deploy user) also gets a named entry unless it is root or the named
    user: in the default ACL it lets the deploy user remove, at prune time, what the web server
    created, which is then owned by the web server.
    """
    rwx = 7
    users = {grant.uid} if grant.uid != -1 else set()
    if owner not in (0, grant.uid):
        users.add(owner)
    groups = {grant.gid} if grant.gid != -1 else set()
    entries = [(ACL_USER_OBJ, (grant.mode >> 6) & 7, ACL_UNDEFINED_ID)]
    entries += [(ACL_USER, rwx, uid) for uid in sorted(users)]
    entries.append((ACL_GROUP_OBJ, (grant.mode >> 3) & 7, ACL_UNDEFINED_ID))
    entries += [(ACL_GROUP, rwx, gid) for gid in sorted(groups)]
    entries += [(ACL_MASK, rwx, ACL_UNDEFINED_ID), (ACL_OTHER, grant.mode & 7, ACL_UNDEFINED_ID)]
    return entries


def _read_acl(fd: int, *, attribute: str, path: str) -> list[tuple[int, int, int]] | None:
    try:
        return decode_acl(os.getxattr(fd, attribute), path=path)
    except OSError as exc:
        if exc.errno in _NO_ACL:
            return None
        if exc.errno in _UNSUPPORTED:
            raise PermError(
                f'{path}: the file system does not support POSIX ACLs (writable_method=acl); mount it with acl '
                f'support or choose writable_method chgrp',
                path=path,
            ) from None
        raise


def _acl_support(path: str) -> None:
    if not hasattr(os, 'setxattr'):
        raise PermError(
            f'{path}: writable_method=acl needs Linux POSIX ACLs through extended attributes, which this '
            f'platform does not offer; choose writable_method chgrp or chown',
            path=path,
        )


# --- applying a grant ---------------------------------------------------------------------------


def describe(st: os.stat_result, acl=None, default=None) -> dict:
    """The state of a directory, for a diff."""
    state = {'mode': f'{stat.S_IMODE(st.st_mode):04o}', 'owner': st.st_uid, 'group': st.st_gid}
    if acl is not None or default is not None:
        state.update(acl=acl_text(acl or []), default_acl=acl_text(default or []))
    return state


def apply(fd: int, *, path: str, grant: Grant, check_mode: bool = False) -> dict:
    """Give the open directory ``fd`` what ``grant`` asks; returns ``{changed, before, after}``.

    Owner and group first (chown may clear setgid), then the mode, then the ACLs (setting an access
    ACL sets the group bits of the mode to its mask, rwx).
    """
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode):
        raise PermError(f'{path} is not a directory', path=path)
    acl = default = wanted = None
    if grant.method == 'acl':
        _acl_support(path)
        acl = _read_acl(fd, attribute=ACL_ACCESS, path=path)
        default = _read_acl(fd, attribute=ACL_DEFAULT, path=path)
        wanted = wanted_acl(grant=grant, owner=st.st_uid)
    uid = grant.uid if grant.method == 'chown' else -1
    gid = grant.gid if grant.method in ('chgrp', 'chown') else -1
    mode = grant.mode | 0o070 if grant.method == 'acl' else grant.mode
    before = describe(st, acl, default)
    after = dict(before, mode=f'{mode:04o}')
    if uid != -1:
        after['owner'] = uid
    if gid != -1:
        after['group'] = gid
    if wanted is not None:
        after.update(acl=acl_text(wanted), default_acl=acl_text(wanted))
    result = {'changed': before != after, 'before': before, 'after': after}
    # A setgid bit this user may not set is refused before anything changes, in check mode too.
    refusal = _fs.setgid_refusal(st, mode=grant.mode, path=path, gid=gid)
    if refusal:
        raise _fs.FsError(refusal, path=path)
    if not result['changed'] or check_mode:
        return result
    _fs.set_owner_mode(fd, mode=grant.mode, uid=uid, gid=gid, path=path)
    if wanted is not None:
        blob = encode_acl(wanted)
        try:
            os.setxattr(fd, ACL_ACCESS, blob)
            os.setxattr(fd, ACL_DEFAULT, blob)
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                raise PermError(f'{path}: the file system does not support POSIX ACLs', path=path) from None
            raise
        if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
            # setgid dropped by the kernel (the caller is not in the directory's group): say so.
            os.fchmod(fd, mode)
    return result
