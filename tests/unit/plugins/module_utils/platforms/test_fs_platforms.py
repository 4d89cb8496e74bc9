# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_fs.py as on macOS and FreeBSD: the exchange call, F_FULLFSYNC, the "not supported" errno values."""

from __future__ import annotations

import errno
import fcntl
import os
import stat

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _fs


def old_deploy(tmp_path) -> str:
    (tmp_path / 'releases' / 'r1').mkdir(parents=True)
    (tmp_path / 'current').mkdir()
    (tmp_path / 'current' / 'index.html').write_text('old in-place deploy')
    return str(tmp_path / 'current')


def test_macos_adopts_with_renameatx_np_swap(tmp_path, macos):
    current = old_deploy(tmp_path)
    assert _fs.exchange_supported()
    backup = _fs.adopt_directory(path=current, target='releases/r1')
    assert os.readlink(current) == 'releases/r1'
    assert (tmp_path / os.path.basename(backup) / 'index.html').read_text() == 'old in-place deploy'
    # Darwin's AT_FDCWD (-2) and RENAME_SWAP (0x2), not Linux's AT_FDCWD (-100)
    assert macos.exchange_calls == [('renameatx_np', -2, -2, 0x2)]


def test_freebsd_has_no_exchange_and_adopting_changes_nothing(tmp_path, freebsd):
    current = old_deploy(tmp_path)
    assert _fs.exchange_supported() is False
    with pytest.raises(_fs.FsError, match='no atomic exchange call') as info:
        _fs.adopt_directory(path=current, target='releases/r1')
    assert info.value.path == current
    assert current in str(info.value) and 'freebsd' in str(info.value)
    # FreeBSD's renameat2 is never called with Linux's literal 2
    assert freebsd.exchange_calls == []
    assert not os.path.islink(current)
    assert sorted(os.listdir(tmp_path)) == ['current', 'releases']


def test_macos_makes_writes_durable_with_full_fsync(tmp_path, macos):
    _fs.atomic_write(path=str(tmp_path / 'meta.json'), data=b'{}')
    _fs.append_line(path=str(tmp_path / 'history'), line=b'{}')
    _fs.swap_symlink(path=str(tmp_path / 'current'), target='releases/r1')
    # the file, its directory; the appended file; the directory after the switch
    assert len(macos.full_fsync_calls) == 4


def test_freebsd_has_no_full_fsync_and_uses_fsync(tmp_path, freebsd, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, 'fsync', lambda fd: synced.append(fd) or real_fsync(fd))
    _fs.atomic_write(path=str(tmp_path / 'meta.json'), data=b'{}')
    assert len(synced) == 2 and freebsd.full_fsync_calls == []


@pytest.mark.parametrize('refusal', ['ENOTTY', 'EINVAL', 'ENOTSUP', 'EOPNOTSUPP'])
def test_full_fsync_refused_falls_back_to_fsync(tmp_path, macos, monkeypatch, refusal):
    def refuse(fd, command, *args):
        raise macos.error(refusal)

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(fcntl, 'fcntl', refuse)
    monkeypatch.setattr(os, 'fsync', lambda fd: synced.append(fd) or real_fsync(fd))
    _fs.atomic_write(path=str(tmp_path / 'meta.json'), data=b'{}')
    assert len(synced) == 2
    assert (tmp_path / 'meta.json').read_bytes() == b'{}'


def test_full_fsync_io_error_is_not_swallowed(tmp_path, macos, monkeypatch):
    def broken(fd, command, *args):
        raise OSError(errno.EIO, 'input/output error')

    monkeypatch.setattr(fcntl, 'fcntl', broken)
    with pytest.raises(OSError, match='input/output'):
        _fs.atomic_write(path=str(tmp_path / 'meta.json'), data=b'{}')
    assert not (tmp_path / 'meta.json').exists()


@pytest.mark.parametrize('name', ['ENOTSUP', 'EOPNOTSUPP'])
def test_directory_fsync_refused_as_not_supported_is_not_an_error(tmp_path, platform, monkeypatch, name):
    real_fsync = os.fsync

    def refuse_directories(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise platform.error(name)
        real_fsync(fd)

    monkeypatch.setattr(os, 'fsync', refuse_directories)
    monkeypatch.setattr(fcntl, 'fcntl', lambda fd, command, *args: refuse_directories(fd))
    _fs.swap_symlink(path=str(tmp_path / 'current'), target='releases/r1')
    assert os.readlink(tmp_path / 'current') == 'releases/r1'


def test_unsupported_errnos_name_both_values(platform):
    assert _fs.unsupported_errnos() == {platform.errno_of('ENOTSUP'), platform.errno_of('EOPNOTSUPP')}
    assert platform.errno_of(platform.platform.nofollow) in _fs.nofollow_errnos()
