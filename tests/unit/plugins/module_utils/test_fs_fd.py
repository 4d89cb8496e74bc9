# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for the descriptor-based primitives of plugins/module_utils/_fs.py (open_dir, descend, make_dir ...)."""

from __future__ import annotations

import errno
import os
import pwd
import stat
from collections.abc import Iterator

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _fs

NOBODY = pwd.getpwnam('nobody')


def mode_of(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def victim(tmp_path) -> Iterator[os.PathLike]:
    """A root-only file and directory outside the tree: nothing may change them."""
    outside = tmp_path / 'outside'
    outside.mkdir()
    os.chmod(outside, 0o700)
    secret = outside / 'secret'
    secret.write_text('root only')
    os.chmod(secret, 0o600)
    yield outside
    assert mode_of(outside) == 0o700
    assert mode_of(secret) == 0o600
    assert os.lstat(outside).st_gid == os.lstat(secret).st_gid == os.getgid()
    assert sorted(os.listdir(outside)) == ['secret']
    assert secret.read_text() == 'root only'


@pytest.fixture
def dir_fd(tmp_path) -> Iterator[int]:
    base = tmp_path / 'base'
    base.mkdir()
    fd = os.open(base, os.O_RDONLY)
    yield fd
    os.close(fd)


def plant(tmp_path, name: str, kind: str, victim) -> str:
    path = tmp_path / 'base' / name
    if kind == 'dir':
        path.mkdir()
    elif kind == 'file':
        path.write_text('')
    elif kind == 'link-to-dir':
        path.symlink_to(victim)
    elif kind == 'link-to-file':
        path.symlink_to(victim / 'secret')
    elif kind == 'dangling':
        path.symlink_to(victim / 'missing')
    elif kind == 'fifo':
        os.mkfifo(path)
    return str(path)


# --- open_dir / open_file --------------------------------------------------------------------------------------


def test_open_dir_opens_a_directory(tmp_path, dir_fd, victim):
    path = plant(tmp_path, 'd', 'dir', victim)
    fd = _fs.open_dir('d', dir_fd=dir_fd, path=path)
    try:
        assert os.fstat(fd).st_ino == os.lstat(path).st_ino
    finally:
        os.close(fd)


@pytest.mark.parametrize('kind', ['link-to-dir', 'link-to-file', 'dangling'])
def test_open_dir_refuses_a_symlink(tmp_path, dir_fd, victim, kind):
    path = plant(tmp_path, 'd', kind, victim)
    with pytest.raises(_fs.SymlinkError, match='is a symlink; refusing to follow it') as info:
        _fs.open_dir('d', dir_fd=dir_fd, path=path)
    assert info.value.path == path
    assert str(info.value).startswith(path)


@pytest.mark.parametrize('kind', ['file', 'fifo'])
def test_open_dir_refuses_a_non_directory(tmp_path, dir_fd, victim, kind):
    path = plant(tmp_path, 'd', kind, victim)
    with pytest.raises(_fs.FileTypeError, match='exists and is not a directory') as info:
        _fs.open_dir('d', dir_fd=dir_fd, path=path)
    assert info.value.path == path


def test_open_dir_missing(dir_fd):
    with pytest.raises(FileNotFoundError):
        _fs.open_dir('nothing', dir_fd=dir_fd)


@pytest.mark.parametrize('code', [errno.ELOOP, errno.EMLINK, errno.ENOTDIR])
def test_every_nofollow_errno_of_a_symlink_means_symlink(tmp_path, dir_fd, victim, monkeypatch, code):
    # Linux says ELOOP (ENOTDIR with O_DIRECTORY), FreeBSD says EMLINK for an O_NOFOLLOW open of a symlink
    path = plant(tmp_path, 'd', 'link-to-dir', victim)

    def refuse(*_args, **_kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(_fs.os, 'open', refuse)
    with pytest.raises(_fs.SymlinkError):
        _fs.open_dir('d', dir_fd=dir_fd, path=path)
    with pytest.raises(_fs.SymlinkError):
        _fs.open_file('d', dir_fd=dir_fd, path=path)


@pytest.mark.parametrize('code', [errno.ELOOP, errno.EMLINK, errno.ENOTDIR])
def test_a_directory_swapped_back_during_the_open_is_refused(tmp_path, dir_fd, victim, monkeypatch, code):
    # the open met a symlink (or file), the look afterwards finds a directory again: someone is swapping it
    path = plant(tmp_path, 'd', 'dir', victim)

    def refuse(*_args, **_kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(_fs.os, 'open', refuse)
    with pytest.raises(_fs.FileTypeError, match='changed while it was being opened') as info:
        _fs.open_dir('d', dir_fd=dir_fd, path=path)
    assert info.value.path == path


def test_enotdir_of_a_file_open_is_passed_on(tmp_path, dir_fd, victim, monkeypatch):
    # without O_DIRECTORY, ENOTDIR is about a parent component, not a symlink at the name
    plant(tmp_path, 'f', 'file', victim)

    def refuse(*_args, **_kwargs):
        raise OSError(errno.ENOTDIR, 'not a directory')

    monkeypatch.setattr(_fs.os, 'open', refuse)
    with pytest.raises(OSError) as info:
        _fs.open_file('f', dir_fd=dir_fd)
    assert not isinstance(info.value, _fs.FsError)
    assert info.value.errno == errno.ENOTDIR


def test_open_file_opens_a_regular_file(tmp_path, dir_fd, victim):
    path = plant(tmp_path, 'f', 'file', victim)
    fd = _fs.open_file('f', dir_fd=dir_fd, path=path)
    try:
        assert stat.S_ISREG(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


@pytest.mark.parametrize('kind', ['link-to-file', 'link-to-dir', 'dangling'])
def test_open_file_refuses_a_symlink(tmp_path, dir_fd, victim, kind):
    path = plant(tmp_path, 'f', kind, victim)
    with pytest.raises(_fs.SymlinkError) as info:
        _fs.open_file('f', dir_fd=dir_fd, path=path)
    assert info.value.path == path


@pytest.mark.parametrize('kind', ['dir', 'fifo'])
def test_open_file_refuses_what_is_not_a_regular_file(tmp_path, dir_fd, victim, kind):
    # a FIFO must neither hang the open (O_NONBLOCK) nor be accepted
    path = plant(tmp_path, 'f', kind, victim)
    with pytest.raises(_fs.FileTypeError, match='is not a regular file'):
        _fs.open_file('f', dir_fd=dir_fd, path=path)


# --- descend ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('level', [0, 1, 2])
def test_descend_refuses_a_symlink_at_each_component(tmp_path, dir_fd, victim, level):
    base = tmp_path / 'base'
    parts = ['a', 'b', 'c']
    (base / 'a' / 'b' / 'c').mkdir(parents=True)
    broken = base.joinpath(*parts[: level + 1])
    os.rename(broken, tmp_path / 'moved')
    broken.symlink_to(victim)
    with pytest.raises(_fs.SymlinkError) as info:
        _fs.descend(dir_fd=dir_fd, parts=parts, path=str(base))
    assert info.value.path == str(broken)


def test_descend_opens_the_last_component_and_keeps_the_given_fd(tmp_path, dir_fd):
    base = tmp_path / 'base'
    (base / 'a' / 'b').mkdir(parents=True)
    fd = _fs.descend(dir_fd=dir_fd, parts=['a', 'b'], path=str(base))
    try:
        assert os.fstat(fd).st_ino == os.lstat(base / 'a' / 'b').st_ino
    finally:
        os.close(fd)
    os.fstat(dir_fd)  # still open
    same = _fs.descend(dir_fd=dir_fd, parts=[], path=str(base))
    assert same != dir_fd
    os.close(same)


def test_descend_closes_what_it_opened_on_failure(tmp_path, dir_fd, victim):
    base = tmp_path / 'base'
    (base / 'a').mkdir()
    (base / 'a' / 'b').symlink_to(victim)
    before = len(os.listdir('/proc/self/fd')) if os.path.isdir('/proc/self/fd') else None
    for _attempt in range(20):
        with pytest.raises(_fs.SymlinkError):
            _fs.descend(dir_fd=dir_fd, parts=['a', 'b', 'c'], path=str(base))
    if before is not None:
        assert len(os.listdir('/proc/self/fd')) == before


# --- make_dir / set_owner_mode / create_file -------------------------------------------------------------------


def test_make_dir_creates_and_opens(tmp_path, dir_fd):
    fd, created = _fs.make_dir('new', dir_fd=dir_fd, path=str(tmp_path / 'base' / 'new'))
    try:
        assert created is True
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o700
        assert _fs.set_owner_mode(fd, mode=0o2775) is True
        assert _fs.set_owner_mode(fd, mode=0o2775) is False
    finally:
        os.close(fd)
    assert mode_of(tmp_path / 'base' / 'new') == 0o2775
    fd, created = _fs.make_dir('new', dir_fd=dir_fd, path=str(tmp_path / 'base' / 'new'))
    os.close(fd)
    assert created is False


def test_make_dir_refuses_a_symlink_swapped_in_after_the_mkdir(tmp_path, dir_fd, victim, monkeypatch):
    real_mkdir = os.mkdir

    def mkdir_then_swap(name, mode=0o777, *, dir_fd=None):
        real_mkdir(name, mode, dir_fd=dir_fd)
        os.rmdir(name, dir_fd=dir_fd)
        os.symlink(str(victim), name, dir_fd=dir_fd)

    monkeypatch.setattr(_fs.os, 'mkdir', mkdir_then_swap)
    with pytest.raises(_fs.SymlinkError):
        _fs.make_dir('new', dir_fd=dir_fd, path=str(tmp_path / 'base' / 'new'))


def test_set_owner_mode_acts_on_the_opened_directory_not_on_a_swapped_path(tmp_path, dir_fd, victim):
    # the chmod-through-a-swapped-symlink race: the entry is replaced after the open, before the change
    path = plant(tmp_path, 'd', 'dir', victim)
    os.chmod(path, 0o755)
    fd = _fs.open_dir('d', dir_fd=dir_fd, path=path)
    try:
        os.rename(path, tmp_path / 'base' / 'moved')
        os.symlink(victim / 'secret', path)
        assert _fs.set_owner_mode(fd, mode=0o2775, gid=NOBODY.pw_gid) is True
    finally:
        os.close(fd)
    st = os.lstat(tmp_path / 'base' / 'moved')
    assert stat.S_IMODE(st.st_mode) == 0o2775
    assert st.st_gid == NOBODY.pw_gid


def test_set_owner_mode_on_a_regular_file(tmp_path, dir_fd, victim):
    path = plant(tmp_path, 'f', 'file', victim)
    os.chmod(path, 0o600)
    fd = _fs.open_file('f', dir_fd=dir_fd, path=path)
    try:
        assert _fs.set_owner_mode(fd, mode=0o640, uid=NOBODY.pw_uid, gid=NOBODY.pw_gid) is True
        assert _fs.set_owner_mode(fd, mode=0o640, uid=NOBODY.pw_uid, gid=NOBODY.pw_gid) is False
    finally:
        os.close(fd)
    st = os.lstat(path)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, NOBODY.pw_uid, NOBODY.pw_gid)


def test_set_owner_mode_sets_setgid_after_the_group(tmp_path, dir_fd):
    fd, _created = _fs.make_dir('g', dir_fd=dir_fd, path='g')
    try:
        _fs.set_owner_mode(fd, mode=0o2770, gid=NOBODY.pw_gid)
    finally:
        os.close(fd)
    st = os.lstat(tmp_path / 'base' / 'g')
    assert stat.S_IMODE(st.st_mode) == 0o2770
    assert st.st_gid == NOBODY.pw_gid


def test_create_file_sets_mode_and_owner_despite_umask(tmp_path, dir_fd):
    old = os.umask(0o077)
    try:
        assert _fs.create_file('.env', dir_fd=dir_fd, mode=0o660, gid=NOBODY.pw_gid) is True
    finally:
        os.umask(old)
    st = os.lstat(tmp_path / 'base' / '.env')
    assert stat.S_ISREG(st.st_mode)
    assert (stat.S_IMODE(st.st_mode), st.st_gid, st.st_size) == (0o660, NOBODY.pw_gid, 0)


@pytest.mark.parametrize('kind', ['file', 'link-to-file', 'dangling', 'dir', 'fifo'])
def test_create_file_never_touches_what_is_there(tmp_path, dir_fd, victim, kind):
    path = plant(tmp_path, '.env', kind, victim)
    before = os.lstat(path)
    assert _fs.create_file('.env', dir_fd=dir_fd, mode=0o660, gid=NOBODY.pw_gid) is False
    after = os.lstat(path)
    assert (after.st_mode, after.st_uid, after.st_gid, after.st_ino) == (
        before.st_mode,
        before.st_uid,
        before.st_gid,
        before.st_ino,
    )
    assert not (victim / 'missing').exists()


def test_lstat_at(tmp_path, dir_fd, victim):
    plant(tmp_path, 'l', 'link-to-dir', victim)
    assert stat.S_ISLNK(_fs.lstat_at('l', dir_fd=dir_fd).st_mode)
    assert _fs.lstat_at('nothing', dir_fd=dir_fd) is None


# --- remove_at -------------------------------------------------------------------------------------------------


def test_remove_at_removes_a_tree_without_following_links(tmp_path, dir_fd, victim):
    tree = tmp_path / 'base' / 'tree'
    (tree / 'sub').mkdir(parents=True)
    (tree / 'sub' / 'file').write_text('x')
    (tree / 'out').symlink_to(victim)
    (tree / 'sub' / 'secret').symlink_to(victim / 'secret')
    assert _fs.remove_at('tree', dir_fd=dir_fd, path=str(tree)) == []
    assert not tree.exists()
    assert _fs.remove_at('tree', dir_fd=dir_fd, path=str(tree)) == []


@pytest.mark.parametrize('kind', ['file', 'link-to-dir', 'fifo'])
def test_remove_at_unlinks_what_is_not_a_directory(tmp_path, dir_fd, victim, kind):
    path = plant(tmp_path, 'x', kind, victim)
    assert _fs.remove_at('x', dir_fd=dir_fd, path=path) == []
    assert not os.path.lexists(path)


def test_remove_at_reports_a_directory_swapped_for_a_link(tmp_path, dir_fd, victim, monkeypatch):
    path = plant(tmp_path, 'x', 'dir', victim)
    real_lstat_at = _fs.lstat_at

    def lstat_then_swap(name, *, dir_fd):
        st = real_lstat_at(name, dir_fd=dir_fd)
        os.rmdir(path)
        os.symlink(str(victim), path)
        return st

    monkeypatch.setattr(_fs, 'lstat_at', lstat_then_swap)
    assert _fs.remove_at('x', dir_fd=dir_fd, path=path) == [path]
