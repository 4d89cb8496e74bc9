# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for plugins/module_utils/_perm.py: chmod, chgrp, chown and POSIX ACLs through a descriptor."""

from __future__ import annotations

import errno
import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _perm
from ansible_collections.atomic.deploy.tests.support.users import run_as

WEB = pwd.getpwnam('www-data')
WEB_GROUP = grp.getgrnam('www-data')
NOBODY = pwd.getpwnam('nobody')
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def mode_of(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def getfacl(path) -> list[str]:
    # The acl package's own reader, so the format we write is checked by another implementation.
    assert shutil.which('getfacl'), 'getfacl is missing: apt-get install acl (scripts/bootstrap.sh installs it)'
    out = subprocess.run(
        ['getfacl', '--omit-header', '--numeric', '--absolute-names', str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line and not line.startswith('#')]


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp_path lives below a 0700 directory)."""
    path = tempfile.mkdtemp(prefix='atomic-deploy-perm-')
    os.chmod(path, 0o755)
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path)


@pytest.fixture
def directory(tmp_path):
    path = tmp_path / 'cache'
    path.mkdir()
    os.chmod(path, 0o755)
    fd = os.open(path, DIR_FLAGS)
    yield path, fd
    os.close(fd)


# --- make_grant ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'method': 'setfacl'}, 'writable_method must be one of chmod, chgrp, chown, acl'),
        ({'method': 'chgrp'}, 'writable_method=chgrp needs writable_group'),
        ({'method': 'chown', 'group': 'www-data'}, 'writable_method=chown needs writable_user'),
        ({'method': 'acl'}, 'writable_method=acl needs writable_user or writable_group'),
        ({'method': 'chmod', 'user': 'www-data'}, 'writable_user is only used with writable_method chgrp'),
        ({'method': 'chgrp', 'group': 'www-data', 'user': 'www-data'}, 'writable_user is not used'),
        ({'method': 'chown', 'user': 'no-such-user-x'}, "writable_user 'no-such-user-x': no such user"),
        ({'method': 'chgrp', 'group': 'no-such-group-x'}, "writable_group 'no-such-group-x': no such group"),
    ],
)
def test_make_grant_refuses(kwargs, message):
    with pytest.raises(_perm.PermError) as info:
        _perm.make_grant(mode=0o2775, **kwargs)
    assert str(info.value).startswith(message)
    assert info.value.name.startswith('writable_')


def test_make_grant_resolves_names_and_numbers():
    grant = _perm.make_grant(method='chown', mode=0o2770, user='www-data', group=str(WEB_GROUP.gr_gid))
    assert grant == _perm.Grant(method='chown', mode=0o2770, uid=WEB.pw_uid, gid=WEB_GROUP.gr_gid)
    assert _perm.make_grant(method='chmod', mode=0o2775) == _perm.Grant()


# --- the ACL format -----------------------------------------------------------------------------


def test_acl_entries_are_in_kernel_order():
    grant = _perm.Grant(method='acl', mode=0o2750, uid=33, gid=44)
    entries = _perm.wanted_acl(grant=grant, owner=1000)
    assert _perm.acl_text(entries) == [
        'user::rwx',
        'user:33:rwx',
        'user:1000:rwx',
        'group::r-x',
        'group:44:rwx',
        'mask::rwx',
        'other::---',
    ]
    assert _perm.decode_acl(_perm.encode_acl(entries)) == entries
    # root and the named user themselves get no extra entry
    assert 'user:0:rwx' not in _perm.acl_text(_perm.wanted_acl(grant=grant, owner=0))
    assert _perm.acl_text(_perm.wanted_acl(grant=grant, owner=33)).count('user:33:rwx') == 1


@pytest.mark.parametrize('data', [b'', b'\x02\x00\x00\x00\x01', b'\x01\x00\x00\x00'])
def test_decode_refuses_garbage(data):
    with pytest.raises(_perm.PermError, match='/x: '):
        _perm.decode_acl(data, path='/x')


# --- apply: chmod, chgrp, chown -----------------------------------------------------------------


def test_chmod_check_mode_then_real_then_idempotent(directory):
    path, fd = directory
    grant = _perm.Grant(method='chmod', mode=0o2775)
    planned = _perm.apply(fd, path=str(path), grant=grant, check_mode=True)
    assert planned['changed'] and planned['before']['mode'] == '0755' and planned['after']['mode'] == '2775'
    assert mode_of(path) == 0o755
    assert _perm.apply(fd, path=str(path), grant=grant)['changed']
    assert mode_of(path) == 0o2775
    assert not _perm.apply(fd, path=str(path), grant=grant, check_mode=True)['changed']
    assert not _perm.apply(fd, path=str(path), grant=grant)['changed']


def test_chgrp_keeps_setgid(directory):
    path, fd = directory
    grant = _perm.make_grant(method='chgrp', mode=0o2775, group='www-data')
    result = _perm.apply(fd, path=str(path), grant=grant)
    assert result['changed'] and result['after']['group'] == WEB_GROUP.gr_gid
    st = os.lstat(path)
    assert st.st_gid == WEB_GROUP.gr_gid and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o2775
    assert not _perm.apply(fd, path=str(path), grant=grant)['changed']


def test_chown(directory):
    path, fd = directory
    grant = _perm.make_grant(method='chown', mode=0o2770, user='www-data', group='www-data')
    assert _perm.apply(fd, path=str(path), grant=grant)['changed']
    st = os.lstat(path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (WEB.pw_uid, WEB_GROUP.gr_gid, 0o2770)
    assert not _perm.apply(fd, path=str(path), grant=grant)['changed']


# --- apply: acl ---------------------------------------------------------------------------------


def test_acl_check_mode_real_idempotent_and_read_by_getfacl(directory):
    path, fd = directory
    os.fchown(fd, NOBODY.pw_uid, -1)  # the deploy user owns the release
    grant = _perm.make_grant(method='acl', mode=0o2775, user='www-data')
    planned = _perm.apply(fd, path=str(path), grant=grant, check_mode=True)
    assert planned['changed'] and 'acl' not in planned['before']
    assert getfacl(path) == ['user::rwx', 'group::r-x', 'other::r-x']
    result = _perm.apply(fd, path=str(path), grant=grant)
    assert result['after'] == planned['after']
    wanted = [
        'user::rwx',
        f'user:{WEB.pw_uid}:rwx',
        f'user:{NOBODY.pw_uid}:rwx',
        'group::rwx',
        'mask::rwx',
        'other::r-x',
    ]
    assert getfacl(path) == wanted + [f'default:{line}' for line in wanted]
    assert mode_of(path) == 0o2775
    assert not _perm.apply(fd, path=str(path), grant=grant, check_mode=True)['changed']
    assert not _perm.apply(fd, path=str(path), grant=grant)['changed']


def test_acl_entries_are_inherited_by_what_the_web_user_creates(world_dir):
    path = world_dir / 'cache'
    path.mkdir()
    os.chown(path, NOBODY.pw_uid, -1)  # the deploy user owns the release
    fd = os.open(path, DIR_FLAGS)
    try:
        _perm.apply(fd, path=str(path), grant=_perm.make_grant(method='acl', mode=0o2775, user='www-data'))
    finally:
        os.close(fd)

    def web_server_writes():
        # umask is ignored under a default ACL; the mode asked for (PHP's mkdir default, 0777) still
        # caps the mask: an app that asks for 0755 gets r-x for the named entries (README.md says so)
        os.umask(0o022)
        os.mkdir(path / 'views', 0o777)
        (path / 'views' / 'compiled.php').write_text('x')

    def deploy_user_prunes():
        (path / 'views' / 'compiled.php').unlink()
        (path / 'views').rmdir()

    run_as('www-data', web_server_writes)
    assert (path / 'views').stat().st_uid == WEB.pw_uid
    assert f'user:{NOBODY.pw_uid}:rwx' in getfacl(path / 'views')
    assert stat.S_IMODE((path / 'views').stat().st_mode) == 0o2775  # other: r-x from the default ACL
    run_as('nobody', deploy_user_prunes)
    assert not (path / 'views').exists()


def test_acl_unsupported_file_system_names_the_path(directory, monkeypatch):
    path, fd = directory

    def unsupported(*_args):
        raise OSError(errno.EOPNOTSUPP, 'Operation not supported')

    monkeypatch.setattr(os, 'getxattr', unsupported)
    with pytest.raises(_perm.PermError) as info:
        _perm.apply(fd, path=str(path), grant=_perm.Grant(method='acl', uid=WEB.pw_uid), check_mode=True)
    assert str(info.value).startswith(f'{path}: the file system does not support POSIX ACLs')
    assert mode_of(path) == 0o755


def test_acl_platform_without_xattrs_names_the_path(directory, monkeypatch):
    path, fd = directory
    monkeypatch.delattr(os, 'setxattr')
    with pytest.raises(_perm.PermError) as info:
        _perm.apply(fd, path=str(path), grant=_perm.Grant(method='acl', uid=WEB.pw_uid))
    assert str(info.value).startswith(f'{path}: writable_method=acl needs Linux POSIX ACLs')


# --- through the descriptor, never the path -----------------------------------------------------


@pytest.mark.parametrize('method', ['chmod', 'chgrp', 'chown', 'acl'])
def test_a_symlink_swapped_in_after_the_open_changes_nothing(tmp_path, method):
    victim = tmp_path / 'victim'
    victim.mkdir()
    os.chmod(victim, 0o700)
    path = tmp_path / 'cache'
    path.mkdir()
    fd = os.open(path, DIR_FLAGS)
    try:
        # the web user swaps the directory for a link to a root-only place between open and change
        os.rename(path, tmp_path / 'moved')
        os.symlink(victim, path)
        grant = _perm.make_grant(
            method=method,
            mode=0o2775,
            user='www-data' if method in ('chown', 'acl') else None,
            group='www-data' if method == 'chgrp' else None,
        )
        assert _perm.apply(fd, path=str(path), grant=grant)['changed']
    finally:
        os.close(fd)
    st = os.lstat(victim)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o700, 0, 0)
    assert getfacl(victim) == ['user::rwx', 'group::---', 'other::---']
    assert stat.S_IMODE(os.lstat(tmp_path / 'moved').st_mode) & 0o2070 == 0o2070
