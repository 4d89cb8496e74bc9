# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_extract.py, _tree.py and _copy.py."""

from __future__ import annotations

import bz2
import errno
import gzip
import io
import lzma
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _copy, _tree
from ansible_collections.atomic.deploy.plugins.module_utils._extract import (
    ExtractError,
    detect_format,
    extract_archive,
    extract_tar_stream,
)

MTIME = 1_600_000_000  # even: zip stores seconds in steps of two
NOBODY = 65534


# ----------------------------------------------------------------------------------------------------------------
# archive builders
# ----------------------------------------------------------------------------------------------------------------


def reg(name: str, data: bytes = b'', *, mode: int = 0o644, mtime: int = MTIME, pax: dict | None = None) -> dict:
    return {'kind': 'file', 'name': name, 'data': data, 'mode': mode, 'mtime': mtime, 'pax': pax}


def folder(name: str, *, mode: int = 0o755, mtime: int = MTIME) -> dict:
    return {'kind': 'dir', 'name': name, 'mode': mode, 'mtime': mtime}


def symlink(name: str, target: str, *, pax: dict | None = None) -> dict:
    return {'kind': 'sym', 'name': name, 'target': target, 'mode': 0o777, 'pax': pax}


def hardlink(name: str, target: str) -> dict:
    return {'kind': 'hard', 'name': name, 'target': target}


def special(name: str, kind: str) -> dict:
    return {'kind': kind, 'name': name}


_SPECIAL_TYPES = {'chr': tarfile.CHRTYPE, 'blk': tarfile.BLKTYPE, 'fifo': tarfile.FIFOTYPE, 'unknown': b'Z'}


def tar_bytes(members: list[dict]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m['name'])
            info.mtime = m.get('mtime', MTIME)
            info.mode = m.get('mode', 0o644)
            if m.get('pax'):
                info.pax_headers = dict(m['pax'])
            kind = m['kind']
            if kind == 'file':
                info.size = len(m['data'])
                tf.addfile(info, io.BytesIO(m['data']))
                continue
            if kind == 'dir':
                info.type = tarfile.DIRTYPE
            elif kind == 'sym':
                info.type = tarfile.SYMTYPE
                info.linkname = m['target']
            elif kind == 'hard':
                info.type = tarfile.LNKTYPE
                info.linkname = m['target']
            else:
                info.type = _SPECIAL_TYPES[kind]
            tf.addfile(info)
    return buf.getvalue()


_COMPRESS = {'gz': gzip.compress, 'bz2': bz2.compress, 'xz': lzma.compress, 'tar': lambda data: data}


def write_tar(path: Path, members: list[dict], compression: str = 'gz') -> Path:
    path.write_bytes(_COMPRESS[compression](tar_bytes(members)))
    return path


def write_zip(path: Path, members: list[dict]) -> Path:
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf:
        for m in members:
            kind = m['kind']
            name = m['name']
            if kind == 'dir' and not name.endswith('/'):
                name += '/'
            info = zipfile.ZipInfo(name, date_time=time.localtime(m.get('mtime', MTIME))[:6])
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            if kind == 'file':
                info.external_attr = (stat.S_IFREG | m['mode']) << 16
                zf.writestr(info, m['data'])
            elif kind == 'dir':
                info.external_attr = (stat.S_IFDIR | m['mode']) << 16 | 0x10
                zf.writestr(info, b'')
            elif kind == 'sym':
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, m['target'])
            elif kind == 'fifo':
                info.external_attr = (stat.S_IFIFO | 0o644) << 16
                zf.writestr(info, b'')
            else:
                raise AssertionError(f'zip cannot hold {kind}')
    return path


def write_archive(path_base: Path, members: list[dict], fmt: str) -> Path:
    if fmt == 'zip':
        return write_zip(path_base.with_suffix('.zip'), members)
    return write_tar(path_base.with_suffix(f'.{fmt}'), members, fmt)


# ----------------------------------------------------------------------------------------------------------------
# helpers and fixtures
# ----------------------------------------------------------------------------------------------------------------


def new_release(tmp_path: Path, name: str) -> Path:
    path = tmp_path / 'releases' / name
    path.mkdir(parents=True)
    (path / '.release.json').write_text('{}')
    return path


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return new_release(tmp_path, 'new')


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / 'outside'
    path.mkdir()
    (path / 'canary').write_text('canary')
    return path


def outside_state(tmp_path: Path, dest: Path) -> dict:
    """Everything under tmp_path except dest: type, size, mtime, link count and link target."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(tmp_path):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) != str(dest)]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
            state[path] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, st.st_nlink, target)
    return state


def assert_contained(dest: Path) -> None:
    real = os.path.realpath(dest)
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                resolved = os.path.realpath(path)
                assert resolved == real or resolved.startswith(real + os.sep), f'{path} -> {resolved}'


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob('*')}


def ino(path: Path) -> int:
    return os.lstat(path).st_ino


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def extract(tmp_path: Path, dest: Path, members: list[dict], fmt: str = 'gz', **kwargs) -> dict:
    archive = write_archive(tmp_path / f'archive-{dest.name}', members, fmt)
    return extract_archive(archive=str(archive), dest=str(dest), **kwargs)


def run_unprivileged(func) -> str:
    """Run func in a child process as nobody (when we are root, which ignores permission bits)."""
    if os.geteuid() != 0:
        func()
        return 'ok'
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            func()
            os.write(write_end, b'ok')
            code = 0
        except BaseException as exc:  # reported to the parent
            os.write(write_end, f'{type(exc).__name__}: {exc}'.encode()[:4000])
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while True:
        data = os.read(read_end, 4096)
        if not data:
            break
        chunks.append(data)
    os.close(read_end)
    os.waitpid(pid, 0)
    return b''.join(chunks).decode()


@pytest.fixture
def world_dir():
    """A directory nobody can traverse to (pytest's tmp_path lives under a 0700 root-only directory)."""
    path = Path(tempfile.mkdtemp(prefix='atomic-deploy-test-'))
    path.chmod(0o711)
    yield path
    for dirpath, dirnames, _filenames in os.walk(path):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o700)
    shutil.rmtree(path)


@pytest.fixture
def tiny_fs(tmp_path: Path):
    """A 1 MiB tmpfs, to run out of space for real."""
    mnt = tmp_path / 'tiny'
    mnt.mkdir()
    res = subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(mnt)], capture_output=True, text=True, check=False
    )
    if res.returncode != 0:
        text = res.stderr.lower()
        if os.geteuid() != 0 or 'permission denied' in text or 'not permitted' in text or 'superuser' in text:
            pytest.skip(f'mounting a tmpfs is not permitted here: {res.stderr.strip()}')
        pytest.fail(f'cannot mount a tmpfs on {mnt}: {res.stderr.strip()}')
    try:
        yield mnt
    finally:
        subprocess.run(['umount', str(mnt)], check=True)


# ----------------------------------------------------------------------------------------------------------------
# refusals
# ----------------------------------------------------------------------------------------------------------------

OUT = '@OUT@'  # replaced by the test's own "outside" directory

TAR_REFUSALS = [
    pytest.param([reg('ok.txt', b'ok'), reg(f'{OUT}/abs.txt', b'x')], f'{OUT}/abs.txt', 'absolute', id='absolute-name'),
    pytest.param([reg('../outside/escape.txt', b'x')], '../outside/escape.txt', "'..'", id='dotdot'),
    pytest.param(
        [reg('a/b/../../../outside/escape.txt', b'x')], 'a/b/../../../outside/escape.txt', "'..'", id='dotdot-deep'
    ),
    pytest.param([folder('../outside/newdir')], '../outside/newdir', "'..'", id='dotdot-dir'),
    pytest.param([reg('./', b'x')], './', 'empty name', id='empty-after-strip'),
    pytest.param([reg('.', b'x')], '.', 'empty name', id='dot-file'),
    pytest.param([reg('x', b'x', pax={'path': 'a\x00b'})], 'a\x00b', 'nul', id='nul-in-name'),
    pytest.param([reg('.release.json', b'{}')], '.release.json', 'reserved', id='reserved'),
    pytest.param([reg('./.release.json', b'{}')], './.release.json', 'reserved', id='reserved-dot-slash'),
    pytest.param([reg('.release.json/x', b'{}')], '.release.json/x', 'reserved', id='reserved-as-parent'),
    pytest.param([symlink('.release.json', 'x')], '.release.json', 'reserved', id='reserved-symlink'),
    pytest.param([special('dev/tty0', 'chr')], 'dev/tty0', 'character device', id='char-device'),
    pytest.param([special('dev/sda', 'blk')], 'dev/sda', 'block device', id='block-device'),
    pytest.param([special('pipe', 'fifo')], 'pipe', 'fifo', id='fifo'),
    pytest.param([special('weird', 'unknown')], 'weird', 'unsupported member type', id='unknown-type'),
    pytest.param(
        [symlink('etc', OUT), reg('etc/passwd', b'x')], 'etc', 'absolute symlink target', id='symlink-absolute'
    ),
    pytest.param([symlink('up', '..'), reg('after', b'x')], 'up', 'points outside', id='symlink-dotdot'),
    pytest.param([symlink('a/b/up', '../../../outside')], 'a/b/up', 'points outside', id='symlink-deep-dotdot'),
    pytest.param([symlink('x', 'a/../../outside/canary')], 'x', 'points outside', id='symlink-lexical-escape'),
    pytest.param([symlink('e', '')], 'e', 'empty symlink target', id='symlink-empty-target'),
    pytest.param([symlink('n', 'x', pax={'linkpath': 'a\x00b'})], 'n', 'nul', id='symlink-nul-target'),
    pytest.param([hardlink('h', 'missing')], 'h', 'not an earlier regular file', id='hardlink-missing'),
    pytest.param([hardlink('h', f'{OUT}/canary')], 'h', 'not an earlier regular file', id='hardlink-absolute'),
    pytest.param([hardlink('h', '../outside/canary')], 'h', 'not an earlier regular file', id='hardlink-dotdot'),
    pytest.param(
        [reg('ok', b'1'), symlink('s', 'ok'), hardlink('h', 's')],
        'h',
        'not an earlier regular file',
        id='hardlink-to-symlink',
    ),
    pytest.param([folder('d'), hardlink('h', 'd')], 'h', 'not an earlier regular file', id='hardlink-to-dir'),
    pytest.param(
        [hardlink('h', 'later'), reg('later', b'1')], 'h', 'not an earlier regular file', id='hardlink-to-later'
    ),
    pytest.param(
        [reg('self', b'1'), hardlink('self', 'self')], 'self', 'not an earlier regular file', id='hardlink-to-self'
    ),
    pytest.param(
        [folder('b'), symlink('a', 'b'), reg('a/x', b'x')], 'a/x', 'parent a is a symlink', id='parent-symlink-file'
    ),
    pytest.param(
        [folder('b'), symlink('a', 'b'), folder('a/sub')], 'a/sub', 'parent a is a symlink', id='parent-symlink-dir'
    ),
    pytest.param(
        [folder('b'), symlink('a', 'b'), symlink('a/l', 'x')], 'a/l', 'parent a is a symlink', id='parent-symlink-link'
    ),
    pytest.param(
        [reg('ok', b'1'), folder('b'), symlink('a', 'b'), hardlink('a/h', 'ok')],
        'a/h',
        'parent a is a symlink',
        id='parent-symlink-hardlink',
    ),
    pytest.param([reg('f', b'x'), reg('f/x', b'x')], 'f/x', 'not a directory', id='parent-is-file'),
    pytest.param(
        [folder('d'), symlink('d/l', '..'), symlink('m', 'd/l/..')],
        'm',
        'through other symlinks',
        id='symlink-chain-escape',
    ),
]


def _place(members: list[dict], out: Path) -> list[dict]:
    placed = []
    for member in members:
        copy = dict(member)
        for key in ('name', 'target'):
            if key in copy:
                copy[key] = copy[key].replace(OUT, str(out))
        placed.append(copy)
    return placed


def assert_refused(tmp_path: Path, dest: Path, archive: Path, *, member: str, why: str, **kwargs) -> ExtractError:
    before = outside_state(tmp_path, dest)
    with pytest.raises(ExtractError) as caught:
        extract_archive(archive=str(archive), dest=str(dest), **kwargs)
    message = str(caught.value)
    assert repr(member) in message
    assert why in message
    assert caught.value.path == member
    assert message[0].islower()
    assert outside_state(tmp_path, dest) == before
    assert_contained(dest)
    assert (dest / '.release.json').read_text() == '{}'
    return caught.value


@pytest.mark.parametrize(('members', 'member', 'why'), TAR_REFUSALS)
def test_tar_refusals(tmp_path, dest, outside, members, member, why):
    member = member.replace(OUT, str(outside))
    archive = write_tar(tmp_path / 'bad.tar.gz', _place(members, outside))
    assert_refused(tmp_path, dest, archive, member=member, why=why)
    assert not (outside / 'abs.txt').exists()
    assert not (outside / 'escape.txt').exists()
    assert (outside / 'canary').read_text() == 'canary'
    assert not (dest / 'after').exists()  # refused when read, before any later member


def test_refusal_through_symlink_writes_nothing_at_the_link_target(tmp_path, dest, outside):
    archive = write_tar(tmp_path / 'bad.tar', [folder('b'), symlink('a', 'b'), reg('a/x', b'x')], 'tar')
    assert_refused(tmp_path, dest, archive, member='a/x', why='symlink')
    assert not (dest / 'b' / 'x').exists()


def test_chain_escape_leaves_no_escaping_link(tmp_path, dest):
    archive = write_tar(tmp_path / 'bad.tar', [folder('d'), symlink('d/l', '..'), symlink('m', 'd/l/..')], 'tar')
    assert_refused(tmp_path, dest, archive, member='m', why='through other symlinks')
    assert not os.path.lexists(dest / 'm')


ZIP_REFUSALS = [
    pytest.param([reg(f'{OUT}/abs.txt', b'x')], f'{OUT}/abs.txt', 'absolute', id='absolute-name'),
    pytest.param([reg('../outside/escape.txt', b'x')], '../outside/escape.txt', "'..'", id='dotdot'),
    pytest.param([reg('.release.json', b'{}')], '.release.json', 'reserved', id='reserved'),
    pytest.param([special('pipe', 'fifo')], 'pipe', 'special', id='fifo'),
    pytest.param([symlink('etc', OUT)], 'etc', 'absolute symlink target', id='symlink-absolute'),
    pytest.param([symlink('up', '../outside')], 'up', 'points outside', id='symlink-dotdot'),
    pytest.param(
        [folder('b'), symlink('a', 'b'), reg('a/x', b'x')], 'a/x', 'parent a is a symlink', id='parent-symlink'
    ),
]


@pytest.mark.parametrize(('members', 'member', 'why'), ZIP_REFUSALS)
def test_zip_refusals(tmp_path, dest, outside, members, member, why):
    member = member.replace(OUT, str(outside))
    archive = write_zip(tmp_path / 'bad.zip', _place(members, outside))
    assert_refused(tmp_path, dest, archive, member=member, why=why)
    assert (outside / 'canary').read_text() == 'canary'


def test_custom_reserved_names(tmp_path, dest):
    archive = write_tar(tmp_path / 'a.tar.gz', [reg('shared/x', b'1')])
    assert_refused(tmp_path, dest, archive, member='shared/x', why='reserved', reserved=('.release.json', 'shared'))


def test_reserved_name_below_top_level_is_fine(tmp_path, dest):
    extract(tmp_path, dest, [reg('docs/.release.json', b'mine')])
    assert (dest / 'docs' / '.release.json').read_bytes() == b'mine'


def test_does_not_write_through_a_symlink_already_in_dest(tmp_path, dest, outside):
    # dest should hold only .release.json; if it holds a link anyway, O_EXCL|O_NOFOLLOW and mkdir refuse it.
    os.symlink(outside / 'canary', dest / 'x')
    os.symlink(outside, dest / 'd')
    archives = [
        write_tar(tmp_path / f'a{n}.tar.gz', members)
        for n, members in enumerate(([reg('x', b'pwned')], [reg('d/y', b'pwned')], [folder('d')], [folder('d/z')]))
    ]
    before = outside_state(tmp_path, dest)
    for archive in archives:
        with pytest.raises(ExtractError) as caught:
            extract_archive(archive=str(archive), dest=str(dest))
        assert caught.value.errno == errno.EEXIST
        assert str(dest) in str(caught.value)
    assert (outside / 'canary').read_text() == 'canary'
    assert not (outside / 'y').exists()
    assert outside_state(tmp_path, dest) == before


@pytest.mark.parametrize('value', [-1, '1', 1.5, True])
def test_bad_strip_components(tmp_path, dest, value):
    with pytest.raises(ExtractError, match='strip_components'):
        extract(tmp_path, dest, [reg('a', b'1')], strip_components=value)


def test_dest_must_be_a_directory(tmp_path):
    archive = write_tar(tmp_path / 'a.tar.gz', [reg('a', b'1')])
    with pytest.raises(ExtractError, match='is not a directory') as caught:
        extract_archive(archive=str(archive), dest=str(tmp_path / 'missing'))
    assert caught.value.path == str(tmp_path / 'missing')


# ----------------------------------------------------------------------------------------------------------------
# formats
# ----------------------------------------------------------------------------------------------------------------

TREE = [
    folder('app', mode=0o755, mtime=MTIME - 100),
    reg('app/main.py', b"print('hi')\n" * 50, mode=0o644, mtime=MTIME - 2000),
    reg('app/run.sh', b'#!/bin/sh\necho hi\n', mode=0o755, mtime=MTIME - 4000),
    reg('app/secret.txt', b's3cret', mode=0o600),
    folder('app/empty', mode=0o750),
    reg('app/deep/er/file.txt', b'implicit parents'),
    symlink('app/link', 'main.py'),
    symlink('app/dirlink', 'deep/er'),
    reg('app/zero', b''),
]


@pytest.mark.parametrize('fmt', ['gz', 'bz2', 'xz', 'tar', 'zip'])
def test_formats_round_trip(tmp_path, dest, fmt):
    archive = write_archive(tmp_path / 'release', TREE, fmt)
    assert detect_format(str(archive)) == ('zip' if fmt == 'zip' else 'tar')
    stats = extract_archive(archive=str(archive), dest=str(dest))
    assert stats == {
        "files": 5, "dirs": 2, "symlinks": 2, "hardlinks": 0,
        "written": 5, "linked": 0, "bytes_written": 600 + 18 + 6 + 16, "bytes_linked": 0,
    }  # fmt: skip
    app = dest / 'app'
    assert (app / 'main.py').read_bytes() == b"print('hi')\n" * 50
    assert (app / 'deep' / 'er' / 'file.txt').read_bytes() == b'implicit parents'
    assert (app / 'zero').read_bytes() == b''
    assert mode_of(app / 'main.py') == 0o644
    assert mode_of(app / 'run.sh') == 0o755
    assert mode_of(app / 'secret.txt') == 0o600
    assert mode_of(app / 'empty') == 0o750
    assert mode_of(app / 'deep') == 0o755  # implied by a member, no entry of its own
    assert os.readlink(app / 'link') == 'main.py'
    assert os.readlink(app / 'dirlink') == 'deep/er'
    assert (app / 'link').read_bytes() == (app / 'main.py').read_bytes()
    assert os.stat(app / 'main.py').st_mtime == MTIME - 2000
    assert os.stat(app / 'run.sh').st_mtime == MTIME - 4000
    assert os.stat(app).st_mtime == MTIME - 100  # set after its children were created
    assert listing(dest) == {
        ".release.json", "app", "app/main.py", "app/run.sh", "app/secret.txt", "app/empty", "app/deep",
        "app/deep/er", "app/deep/er/file.txt", "app/link", "app/dirlink", "app/zero",
    }  # fmt: skip


def test_tar_hard_link_members(tmp_path, dest):
    stats = extract(
        tmp_path, dest, [reg('a', b'data', mode=0o640), folder('sub'), hardlink('sub/b', 'a'), hardlink('./c', './a')]
    )
    assert stats['hardlinks'] == 2
    assert stats['files'] == 1
    assert ino(dest / 'a') == ino(dest / 'sub' / 'b') == ino(dest / 'c')
    assert (dest / 'c').read_bytes() == b'data'


def test_hard_link_member_falls_back_to_a_copy(tmp_path, dest, monkeypatch):
    def no_link(*_args, **_kwargs):
        raise OSError(errno.EMLINK, 'too many links')

    monkeypatch.setattr(os, 'link', no_link)
    stats = extract(tmp_path, dest, [reg('a', b'data', mode=0o640), hardlink('b', 'a')])
    assert stats['hardlinks'] == 1
    assert (dest / 'b').read_bytes() == b'data'
    assert mode_of(dest / 'b') == 0o640
    assert ino(dest / 'a') != ino(dest / 'b')


def test_zip_symlinks(tmp_path, dest):
    archive = write_zip(
        tmp_path / 'l.zip', [reg('lib/real.py', b'x = 1\n'), symlink('lib/alias.py', 'real.py'), symlink('top', 'lib')]
    )
    stats = extract_archive(archive=str(archive), dest=str(dest))
    assert stats['symlinks'] == 2
    assert os.path.islink(dest / 'lib' / 'alias.py')
    assert os.readlink(dest / 'lib' / 'alias.py') == 'real.py'
    assert os.readlink(dest / 'top') == 'lib'
    assert (dest / 'top' / 'alias.py').read_bytes() == b'x = 1\n'


def test_zip_without_unix_attributes_gets_default_modes(tmp_path, dest):
    path = tmp_path / 'win.zip'
    with zipfile.ZipFile(path, 'w') as zf:
        info = zipfile.ZipInfo('dir/')
        info.create_system = 0
        info.external_attr = 0x10  # MS-DOS directory bit only
        zf.writestr(info, b'')
        info = zipfile.ZipInfo('dir/file.txt')
        info.create_system = 0
        info.external_attr = 0x20  # MS-DOS archive bit only
        zf.writestr(info, b'hello')
    extract_archive(archive=str(path), dest=str(dest))
    assert (dest / 'dir' / 'file.txt').read_bytes() == b'hello'
    assert mode_of(dest / 'dir' / 'file.txt') == 0o644
    assert mode_of(dest / 'dir') == 0o755


def test_sparse_tar_member(tmp_path, dest):
    if shutil.which('tar') is None:
        pytest.skip('GNU tar is needed to write a sparse member')
    src = tmp_path / 'src'
    src.mkdir()
    with open(src / 'sparse.img', 'wb') as handle:
        handle.truncate(4 * 1024 * 1024)
        handle.seek(1024 * 1024)
        handle.write(b'middle')
        handle.seek(4 * 1024 * 1024 - 3)
        handle.write(b'end')
    archive = tmp_path / 'sparse.tar'
    subprocess.run(['tar', '--sparse', '--format=gnu', '-cf', str(archive), '-C', str(src), 'sparse.img'], check=True)
    with tarfile.open(archive) as tf:
        assert tf.getmember('sparse.img').issparse()
    extract_archive(archive=str(archive), dest=str(dest))
    assert (dest / 'sparse.img').read_bytes() == (src / 'sparse.img').read_bytes()


@pytest.mark.parametrize('fmt', ['gz', 'bz2', 'xz', 'tar', 'zip'])
def test_detect_format(tmp_path, fmt):
    assert detect_format(str(write_archive(tmp_path / 'a', [reg('x', b'1')], fmt))) == (
        'zip' if fmt == 'zip' else 'tar'
    )


def test_detect_format_empty_archives(tmp_path):
    empty_zip = tmp_path / 'empty.zip'
    with zipfile.ZipFile(empty_zip, 'w'):
        pass
    assert detect_format(str(empty_zip)) == 'zip'
    assert detect_format(str(write_tar(tmp_path / 'empty.tar', [], 'tar'))) == 'tar'


@pytest.mark.parametrize(
    ('name', 'content'),
    [
        pytest.param('notes.txt', b'just some text\n' * 100, id='text'),
        pytest.param('noise.bin', bytes(range(256)) * 7, id='binary'),
        pytest.param('empty', b'', id='empty'),
        pytest.param('text.gz', gzip.compress(b'not a tar file\n' * 100), id='gzip-of-text'),
        pytest.param('text.bz2', bz2.compress(b'not a tar file\n' * 100), id='bzip2-of-text'),
        pytest.param('broken.gz', b'\x1f\x8b' + b'\x00' * 100, id='broken-gzip'),
        pytest.param('cut.gz', gzip.compress(b'\x00' * 100)[:12], id='gzip-cut-short'),
    ],
)
def test_detect_format_refuses(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ExtractError, match=r'is not a tar or zip archive|is empty|invalid gz data|truncated') as caught:
        detect_format(str(path))
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    with pytest.raises(ExtractError):
        extract_archive(archive=str(path), dest=str(new_release(tmp_path, 'r')))


def test_detect_format_missing_and_directory(tmp_path):
    for path in (tmp_path / 'missing.tar.gz', tmp_path):
        with pytest.raises(ExtractError) as caught:
            detect_format(str(path))
        assert caught.value.path == str(path)
        assert str(caught.value).startswith(f'cannot read archive {path}')


# ----------------------------------------------------------------------------------------------------------------
# names, strip_components, duplicates, modes
# ----------------------------------------------------------------------------------------------------------------


def test_names_are_normalised(tmp_path, dest):
    extract(tmp_path, dest, [folder('./'), reg('./a//b/./c.txt', b'1'), folder('./d//e/')])
    assert listing(dest) == {'.release.json', 'a', 'a/b', 'a/b/c.txt', 'd', 'd/e'}


def test_dot_slash_root_member_does_not_touch_dest(tmp_path, dest):
    dest.chmod(0o711)
    extract(tmp_path, dest, [folder('./', mode=0o777, mtime=12345), reg('./a', b'1')])
    assert mode_of(dest) == 0o711
    assert os.stat(dest).st_mtime != 12345


def test_strip_components_github_tarball(tmp_path, dest):
    members = [
        folder('owner-repo-abc123/'),
        reg('owner-repo-abc123/README.md', b'readme'),
        folder('owner-repo-abc123/src'),
        reg('owner-repo-abc123/src/a.py', b'a'),
        hardlink('owner-repo-abc123/src/b.py', 'owner-repo-abc123/src/a.py'),
        symlink('owner-repo-abc123/src/c.py', 'a.py'),
    ]
    stats = extract(tmp_path, dest, members, strip_components=1)
    assert listing(dest) == {'.release.json', 'README.md', 'src', 'src/a.py', 'src/b.py', 'src/c.py'}
    assert ino(dest / 'src' / 'a.py') == ino(dest / 'src' / 'b.py')
    assert stats == {
        "files": 2, "dirs": 1, "symlinks": 1, "hardlinks": 1,
        "written": 2, "linked": 0, "bytes_written": 7, "bytes_linked": 0,
    }  # fmt: skip


def test_strip_components_skips_members_that_become_empty(tmp_path, dest):
    stats = extract(
        tmp_path,
        dest,
        [reg('top-file', b'gone'), folder('x/y'), reg('x/y/z', b'kept'), reg('./x/w', b'w')],
        strip_components=2,
    )
    assert listing(dest) == {'.release.json', 'z'}
    assert stats['files'] == 1


def test_strip_components_does_not_count_leading_dot_slash(tmp_path, dest):
    extract(tmp_path, dest, [reg('./project/app.py', b'1')], strip_components=1)
    assert listing(dest) == {'.release.json', 'app.py'}


def test_strip_components_still_refuses_dotdot(tmp_path, dest):
    archive = write_tar(tmp_path / 'a.tar.gz', [reg('../x', b'1')])
    assert_refused(tmp_path, dest, archive, member='../x', why="'..'", strip_components=1)


def test_strip_components_reserved_after_strip(tmp_path, dest):
    archive = write_tar(tmp_path / 'a.tar.gz', [reg('top/.release.json', b'{}')])
    assert_refused(tmp_path, dest, archive, member='top/.release.json', why='reserved', strip_components=1)


def test_duplicate_file_replaces_earlier_one(tmp_path, dest):
    stats = extract(tmp_path, dest, [reg('a', b'first', mode=0o600), reg('a', b'second', mode=0o644)])
    assert (dest / 'a').read_bytes() == b'second'
    assert mode_of(dest / 'a') == 0o644
    assert stats['files'] == 2


def test_duplicate_file_then_directory(tmp_path, dest):
    extract(tmp_path, dest, [reg('x', b'1'), folder('x', mode=0o750), reg('x/y', b'2')])
    assert (dest / 'x').is_dir()
    assert mode_of(dest / 'x') == 0o750
    assert (dest / 'x' / 'y').read_bytes() == b'2'


def test_duplicate_directory_then_file(tmp_path, dest):
    extract(tmp_path, dest, [folder('x'), reg('x/y', b'2'), folder('x/sub'), reg('x', b'file now')])
    assert (dest / 'x').read_bytes() == b'file now'
    assert listing(dest) == {'.release.json', 'x'}


def test_duplicate_directory_then_file_then_child_is_refused(tmp_path, dest):
    archive = write_tar(tmp_path / 'a.tar.gz', [folder('x'), reg('x', b'f'), reg('x/y', b'1')])
    assert_refused(tmp_path, dest, archive, member='x/y', why='not a directory')


def test_duplicate_directories_stay_and_take_the_later_mode(tmp_path, dest):
    extract(tmp_path, dest, [folder('x', mode=0o755), reg('x/keep', b'1'), folder('x', mode=0o700)])
    assert (dest / 'x' / 'keep').read_bytes() == b'1'
    assert mode_of(dest / 'x') == 0o700


def test_duplicate_file_replaces_symlink_without_following_it(tmp_path, dest):
    extract(tmp_path, dest, [reg('target', b'original'), symlink('a', 'target'), reg('a', b'new')])
    assert (dest / 'target').read_bytes() == b'original'
    assert not (dest / 'a').is_symlink()
    assert (dest / 'a').read_bytes() == b'new'


def test_duplicate_directory_replaces_symlink(tmp_path, dest):
    extract(tmp_path, dest, [folder('real'), symlink('a', 'real'), folder('a'), reg('a/x', b'1')])
    assert not (dest / 'a').is_symlink()
    assert (dest / 'a' / 'x').read_bytes() == b'1'
    assert not (dest / 'real' / 'x').exists()


def test_duplicate_file_after_hard_link_gets_a_new_inode(tmp_path, dest):
    extract(tmp_path, dest, [reg('a', b'1'), hardlink('b', 'a'), reg('a', b'2')])
    assert (dest / 'a').read_bytes() == b'2'
    assert (dest / 'b').read_bytes() == b'1'
    assert ino(dest / 'a') != ino(dest / 'b')


def test_special_bits_are_stripped(tmp_path, dest):
    extract(
        tmp_path,
        dest,
        [
            reg('bin/tool', b'x', mode=0o4755),
            reg('bin/g', b'x', mode=0o2711),
            folder('shared', mode=0o2775),
            folder('tmp', mode=0o1777),
        ],
    )
    assert mode_of(dest / 'bin' / 'tool') == 0o755
    assert mode_of(dest / 'bin' / 'g') == 0o711
    assert mode_of(dest / 'shared') == 0o775
    # sticky dropped, and write permission for others too: nothing in a release is world-writable
    assert mode_of(dest / 'tmp') == 0o775


def test_world_writable_members_lose_write_for_others(tmp_path, dest):
    extract(tmp_path, dest, [folder('open', mode=0o777), reg('open/f', b'x', mode=0o666)])
    assert mode_of(dest / 'open') == 0o775
    assert mode_of(dest / 'open' / 'f') == 0o664


def test_modes_are_exact_whatever_the_umask(tmp_path, dest):
    old = os.umask(0o077)
    try:
        extract(tmp_path, dest, [folder('d', mode=0o775), reg('d/f', b'x', mode=0o664), reg('g', b'x', mode=0o755)])
    finally:
        os.umask(old)
    assert mode_of(dest / 'd') == 0o775
    assert mode_of(dest / 'd' / 'f') == 0o664
    assert mode_of(dest / 'g') == 0o755


READ_ONLY_TREE = [
    folder('ro', mode=0o555),
    reg('ro/file', b'inside a read-only dir', mode=0o444),
    folder('ro/sub', mode=0o500),
    reg('ro/sub/deeper', b'x', mode=0o400),
    folder('locked', mode=0o000),
    reg('locked/f', b'y'),
]


def test_read_only_directories(tmp_path, dest):
    extract(tmp_path, dest, READ_ONLY_TREE)
    assert mode_of(dest / 'ro') == 0o555
    assert mode_of(dest / 'ro' / 'sub') == 0o500
    assert mode_of(dest / 'locked') == 0o000
    assert mode_of(dest / 'ro' / 'file') == 0o444
    assert (dest / 'ro' / 'sub' / 'deeper').read_bytes() == b'x'


def test_read_only_directories_as_an_unprivileged_user(world_dir):
    # root ignores permission bits, so run where they bite: a directory made 0555 first would block its files.
    archive = write_tar(world_dir / 'ro.tar.gz', READ_ONLY_TREE)
    archive.chmod(0o644)
    target = world_dir / 'dest'
    target.mkdir()
    if os.geteuid() == 0:
        os.chown(target, NOBODY, NOBODY)
    result = run_unprivileged(lambda: extract_archive(archive=str(archive), dest=str(target)))
    assert result == 'ok'
    assert mode_of(target / 'ro') == 0o555
    assert mode_of(target / 'ro' / 'sub') == 0o500
    assert mode_of(target / 'locked') == 0o000
    assert (target / 'ro' / 'sub' / 'deeper').read_bytes() == b'x'


def test_file_mtimes_come_from_the_member(tmp_path, dest):
    extract(tmp_path, dest, [reg('old', b'1', mtime=1_000_000_000), reg('frac', b'2', mtime=1_500_000_000.5)])
    assert os.stat(dest / 'old').st_mtime_ns == 1_000_000_000 * 10**9
    assert os.stat(dest / 'frac').st_mtime_ns == 1_500_000_000_500_000_000


# ----------------------------------------------------------------------------------------------------------------
# dedupe
# ----------------------------------------------------------------------------------------------------------------

SAME = b'unchanged content\n' * 40
V1 = [
    folder('app'),
    reg('app/same.py', SAME),
    reg('app/changed.py', b'aaaa'),
    reg('app/mode.sh', b'#!/bin/sh\n', mode=0o644),
    reg('app/gone.txt', b'bye'),
    reg('top.txt', b'top'),
]
V2 = [
    folder('app'),
    reg('app/same.py', SAME, mtime=MTIME + 60),
    reg('app/changed.py', b'bbbb'),
    reg('app/mode.sh', b'#!/bin/sh\n', mode=0o755),
    reg('app/new.txt', b'new'),
    reg('top.txt', b'top'),
]


def make_release(tmp_path: Path, name: str, members: list[dict], **kwargs) -> tuple[Path, dict]:
    path = new_release(tmp_path, name)
    return path, extract(tmp_path, path, members, **kwargs)


def test_dedupe_links_unchanged_files_and_writes_changed_ones(tmp_path):
    prev = make_release(tmp_path, 'v1', V1)[0]
    new, stats = make_release(tmp_path, 'v2', V2, previous=str(prev))
    assert ino(new / 'app' / 'same.py') == ino(prev / 'app' / 'same.py')
    assert ino(new / 'top.txt') == ino(prev / 'top.txt')
    # same size, different content: a new inode, and the previous release keeps its content
    assert ino(new / 'app' / 'changed.py') != ino(prev / 'app' / 'changed.py')
    assert (new / 'app' / 'changed.py').read_bytes() == b'bbbb'
    assert (prev / 'app' / 'changed.py').read_bytes() == b'aaaa'
    # same content, different mode: a new inode, and the previous release keeps its mode
    assert ino(new / 'app' / 'mode.sh') != ino(prev / 'app' / 'mode.sh')
    assert mode_of(new / 'app' / 'mode.sh') == 0o755
    assert mode_of(prev / 'app' / 'mode.sh') == 0o644
    assert (new / 'app' / 'new.txt').read_bytes() == b'new'
    assert not (new / 'app' / 'gone.txt').exists()
    assert stats == {
        "files": 5, "dirs": 1, "symlinks": 0, "hardlinks": 0,
        "written": 3, "linked": 2, "bytes_written": 4 + 10 + 3, "bytes_linked": len(SAME) + 3,
    }  # fmt: skip


def test_dedupe_off(tmp_path):
    prev = make_release(tmp_path, 'v1', V1)[0]
    new, stats = make_release(tmp_path, 'v2', V1, previous=str(prev), dedupe=False)
    assert stats['linked'] == 0
    assert ino(new / 'app' / 'same.py') != ino(prev / 'app' / 'same.py')


def test_dedupe_with_missing_previous(tmp_path):
    new, stats = make_release(tmp_path, 'v2', V2, previous=str(tmp_path / 'releases' / 'nope'))
    assert stats['linked'] == 0
    assert stats['written'] == 5
    assert (new / 'app' / 'same.py').read_bytes() == SAME


def test_dedupe_skips_a_previous_file_modified_in_place(tmp_path):
    prev = make_release(tmp_path, 'v1', V1)[0]
    with open(prev / 'app' / 'same.py', 'r+b') as handle:  # same size, edited on the server after its release
        handle.write(b'X')
    new, stats = make_release(tmp_path, 'v2', V1, previous=str(prev))
    assert ino(new / 'app' / 'same.py') != ino(prev / 'app' / 'same.py')
    assert (new / 'app' / 'same.py').read_bytes() == SAME
    assert stats['linked'] == 4  # every other file is unchanged
    assert stats['written'] == 1
    assert ino(new / 'top.txt') == ino(prev / 'top.txt')


def test_dedupe_never_links_a_previous_symlink(tmp_path):
    # the link's lstat looks like the member (size 8 = len("real.txt"), mode 0777) and it points at equal content
    prev = make_release(tmp_path, 'v1', [reg('real.txt', b'ABCDEFGH', mode=0o777), symlink('alias.txt', 'real.txt')])[0]
    new, stats = make_release(tmp_path, 'v2', [reg('alias.txt', b'ABCDEFGH', mode=0o777)], previous=str(prev))
    assert stats['linked'] == 0
    assert not (new / 'alias.txt').is_symlink()
    assert ino(new / 'alias.txt') != ino(prev / 'real.txt')


def test_dedupe_never_follows_a_symlinked_directory_in_previous(tmp_path):
    # releases link shared dirs in: previous/storage -> ../../shared/storage must not lend its files
    shared = tmp_path / 'shared' / 'storage'
    shared.mkdir(parents=True)
    (shared / 'data.txt').write_bytes(SAME)
    prev = make_release(tmp_path, 'v1', [reg('app.py', b'1')])[0]
    os.symlink('../../shared/storage', prev / 'storage')
    new, stats = make_release(tmp_path, 'v2', [reg('app.py', b'1'), reg('storage/data.txt', SAME)], previous=str(prev))
    assert stats['linked'] == 1
    assert ino(new / 'storage' / 'data.txt') != ino(shared / 'data.txt')
    assert os.stat(shared / 'data.txt').st_nlink == 1


def test_dedupe_skips_files_owned_by_someone_else(tmp_path):
    if os.geteuid() != 0:
        pytest.skip('chown needs root')
    prev = make_release(tmp_path, 'v1', V1)[0]
    os.chown(prev / 'top.txt', NOBODY, NOBODY)
    new, _stats = make_release(tmp_path, 'v2', V2, previous=str(prev))
    assert ino(new / 'top.txt') != ino(prev / 'top.txt')
    assert os.stat(new / 'top.txt').st_uid == 0


@pytest.mark.parametrize('code', [errno.EMLINK, errno.EXDEV, errno.EPERM])
def test_dedupe_link_failure_falls_back_to_a_copy(tmp_path, monkeypatch, code):
    prev = make_release(tmp_path, 'v1', V1)[0]
    real_link = os.link

    def refusing_link(src, dst, *args, **kwargs):
        if str(src).startswith(str(prev)):
            raise OSError(code, os.strerror(code))
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, 'link', refusing_link)
    new, stats = make_release(tmp_path, 'v2', V2, previous=str(prev))
    assert stats['linked'] == 0
    assert stats['written'] == 5
    assert (new / 'app' / 'same.py').read_bytes() == SAME
    assert ino(new / 'app' / 'same.py') != ino(prev / 'app' / 'same.py')


def test_dedupe_unexpected_link_error_is_reported(tmp_path, monkeypatch):
    prev = make_release(tmp_path, 'v1', V1)[0]

    def broken_link(*_args, **_kwargs):
        raise OSError(errno.EIO, 'input/output error')

    monkeypatch.setattr(os, 'link', broken_link)
    with pytest.raises(ExtractError) as caught:
        make_release(tmp_path, 'v2', V2, previous=str(prev))
    assert caught.value.errno == errno.EIO


@pytest.fixture
def small_limits(monkeypatch):
    """Make 'large file' mean > 4 KiB, streamed in 1000-byte chunks, so the spooling path runs on small data."""
    monkeypatch.setattr(_tree, 'SMALL_FILE', 4096)
    monkeypatch.setattr(_copy, 'CHUNK', 1000)


BIG = bytes(range(256)) * 40  # 10240 bytes


@pytest.mark.usefixtures('small_limits')
def test_dedupe_large_files(tmp_path):
    tail_changed = BIG[:-1] + b'!'
    head_changed = b'!' + BIG[1:]
    v1 = [reg('same.bin', BIG), reg('tail.bin', BIG), reg('head.bin', BIG), reg('grown.bin', BIG)]
    v2 = [
        reg('same.bin', BIG),
        reg('tail.bin', tail_changed),
        reg('head.bin', head_changed),
        reg('grown.bin', BIG + b'x'),
    ]
    prev = make_release(tmp_path, 'v1', v1)[0]
    new, stats = make_release(tmp_path, 'v2', v2, previous=str(prev))
    assert ino(new / 'same.bin') == ino(prev / 'same.bin')
    for name, data in (('tail.bin', tail_changed), ('head.bin', head_changed), ('grown.bin', BIG + b'x')):
        assert ino(new / name) != ino(prev / name)
        assert (new / name).read_bytes() == data
        assert (prev / name).read_bytes() == BIG
    assert stats['linked'] == 1
    assert stats['bytes_linked'] == len(BIG)
    assert stats['written'] == 3
    assert not [p for p in listing(new) if 'dedupe' in p]


@pytest.mark.parametrize('size', [100, len(BIG)], ids=['small', 'large'])
@pytest.mark.usefixtures('small_limits')
def test_dedupe_compare_catches_a_previous_file_that_grew(tmp_path, monkeypatch, size):
    # the metadata check saw equal sizes, then the previous file grew before its content was read
    data = BIG[:size]
    prev = make_release(tmp_path, 'v1', [reg('f.bin', data + b'appended')])[0]
    monkeypatch.setattr(_tree.TreeWriter, '_candidate', lambda self, rel, mode, size: str(prev / rel))
    new, stats = make_release(tmp_path, 'v2', [reg('f.bin', data)], previous=str(prev))
    assert stats['linked'] == 0
    assert (new / 'f.bin').read_bytes() == data


@pytest.mark.usefixtures('small_limits')
def test_dedupe_large_file_link_failure_keeps_the_written_copy(tmp_path, monkeypatch):
    prev = make_release(tmp_path, 'v1', [reg('same.bin', BIG)])[0]

    def refusing_link(*_args, **_kwargs):
        raise OSError(errno.EMLINK, 'too many links')

    monkeypatch.setattr(os, 'link', refusing_link)
    new, stats = make_release(tmp_path, 'v2', [reg('same.bin', BIG)], previous=str(prev))
    assert stats['linked'] == 0
    assert (new / 'same.bin').read_bytes() == BIG
    assert ino(new / 'same.bin') != ino(prev / 'same.bin')
    assert listing(new) == {'.release.json', 'same.bin'}


@pytest.mark.usefixtures('small_limits')
def test_large_files_without_previous(tmp_path, dest):
    stats = extract(tmp_path, dest, [reg('big.bin', BIG, mode=0o640, mtime=MTIME)])
    assert (dest / 'big.bin').read_bytes() == BIG
    assert mode_of(dest / 'big.bin') == 0o640
    assert os.stat(dest / 'big.bin').st_mtime == MTIME
    assert stats['bytes_written'] == len(BIG)


# ----------------------------------------------------------------------------------------------------------------
# failures while extracting
# ----------------------------------------------------------------------------------------------------------------


def test_out_of_space_on_a_tiny_tmpfs(tmp_path, tiny_fs):
    archive = write_tar(tmp_path / 'big.tar.gz', [reg('small.txt', b'ok'), reg('big.bin', os.urandom(3 * 1024 * 1024))])
    target = tiny_fs / 'release'
    target.mkdir()
    with pytest.raises(ExtractError) as caught:
        extract_archive(archive=str(archive), dest=str(target))
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.path == str(target / 'big.bin')
    assert str(target / 'big.bin') in str(caught.value)
    assert 'no space left on device' in str(caught.value)


def test_write_error_names_the_file(tmp_path, dest, monkeypatch):
    real_write = os.write

    def full_disk(fd, data):
        if len(data) == 7:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_write(fd, data)

    monkeypatch.setattr(os, 'write', full_disk)
    with pytest.raises(ExtractError) as caught:
        extract(tmp_path, dest, [reg('a/ok.txt', b'ok'), reg('a/full.txt', b'1234567')])
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.path == str(dest / 'a' / 'full.txt')
    assert str(caught.value).startswith(f'cannot extract {dest / "a" / "full.txt"}: no space left')


def test_truncated_gzip_archive(tmp_path, dest):
    data = gzip.compress(tar_bytes([reg('a.bin', os.urandom(200_000)), reg('b.bin', os.urandom(200_000))]))
    archive = tmp_path / 'cut.tar.gz'
    archive.write_bytes(data[: len(data) * 3 // 4])
    with pytest.raises(ExtractError, match='truncated') as caught:
        extract_archive(archive=str(archive), dest=str(dest))
    assert str(archive) in str(caught.value)


def test_plain_tar_cut_at_a_member_boundary(tmp_path, dest):
    # tarfile stops silently at a missing header; a deploy must not take half a release for a whole one
    data = tar_bytes([reg('a.txt', b'a' * 512), reg('b.txt', b'b' * 512)])
    archive = tmp_path / 'cut.tar'
    archive.write_bytes(data[:1024])  # header + data of a.txt only
    with pytest.raises(ExtractError, match=r"truncated or corrupt after member 'a\.txt'"):
        extract_archive(archive=str(archive), dest=str(dest))


def test_corrupt_header_in_the_middle(tmp_path, dest):
    data = bytearray(tar_bytes([reg('a.txt', b'a' * 512), reg('b.txt', b'b' * 512), reg('c.txt', b'c')]))
    data[1024:1536] = b'x' * 512
    archive = tmp_path / 'corrupt.tar'
    archive.write_bytes(bytes(data))
    with pytest.raises(ExtractError, match='truncated or corrupt'):
        extract_archive(archive=str(archive), dest=str(dest))


@pytest.mark.parametrize('fmt', ['gz', 'bz2', 'xz'])
def test_compressed_stream_cut_after_the_tar_data(tmp_path, dest, fmt):
    # every tar block is there, only the end of the compressed stream is missing
    data = _COMPRESS[fmt](tar_bytes([reg('a.txt', b'hello')]))
    archive = tmp_path / f'cut.tar.{fmt}'
    archive.write_bytes(data[:-4])
    with pytest.raises(ExtractError, match=rf'{fmt} stream is truncated|invalid {fmt} data'):
        extract_archive(archive=str(archive), dest=str(dest))


def test_gzip_crc_is_checked(tmp_path, dest):
    data = bytearray(gzip.compress(tar_bytes([reg('a.txt', b'hello')])))
    data[-8] ^= 0xFF  # CRC32 in the gzip trailer
    archive = tmp_path / 'crc.tar.gz'
    archive.write_bytes(bytes(data))
    with pytest.raises(ExtractError, match='invalid gz data'):
        extract_archive(archive=str(archive), dest=str(dest))


def test_concatenated_gzip_members(tmp_path, dest):
    data = tar_bytes([reg('a.txt', b'a' * 5000), reg('b.txt', b'b' * 5000)])
    archive = tmp_path / 'multi.tar.gz'
    archive.write_bytes(gzip.compress(data[:3000]) + gzip.compress(data[3000:]))
    extract_archive(archive=str(archive), dest=str(dest))
    assert (dest / 'b.txt').read_bytes() == b'b' * 5000


def test_missing_archive(tmp_path, dest):
    with pytest.raises(ExtractError, match='no such file') as caught:
        extract_archive(archive=str(tmp_path / 'nope.tar.gz'), dest=str(dest))
    assert caught.value.path == str(tmp_path / 'nope.tar.gz')


# ----------------------------------------------------------------------------------------------------------------
# streams
# ----------------------------------------------------------------------------------------------------------------


class OneWayStream:
    """Only read(): no seek, no tell, no name, like a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 999) if size and size > 0 else size)


def test_tar_stream_from_a_non_seekable_object(tmp_path):
    prev = make_release(tmp_path, 'v1', V1)[0]
    new = new_release(tmp_path, 'v2')
    stats = extract_tar_stream(fileobj=OneWayStream(tar_bytes(V2)), dest=str(new), previous=str(prev))
    assert (new / 'app' / 'changed.py').read_bytes() == b'bbbb'
    assert ino(new / 'app' / 'same.py') == ino(prev / 'app' / 'same.py')
    assert stats['linked'] == 2


def test_tar_stream_refusal_names_the_stream_member(tmp_path, dest, outside):
    before = outside_state(tmp_path, dest)
    with pytest.raises(ExtractError) as caught:
        extract_tar_stream(fileobj=OneWayStream(tar_bytes([reg('../outside/x', b'1')])), dest=str(dest))
    assert caught.value.path == '../outside/x'
    assert outside_state(tmp_path, dest) == before


def test_git_archive_stream(tmp_path, dest):
    if shutil.which('git') is None:
        pytest.skip('git is not installed')
    repo = tmp_path / 'repo'
    (repo / 'src').mkdir(parents=True)
    (repo / 'src' / 'app.py').write_text("print('v1')\n")
    (repo / 'run.sh').write_text('#!/bin/sh\n')
    (repo / 'run.sh').chmod(0o755)
    os.symlink('src/app.py', repo / 'app.py')
    git = [
        'git',
        '-C',
        str(repo),
        '-c',
        'user.name=t',
        '-c',
        'user.email=t@example.invalid',
        '-c',
        'init.defaultBranch=main',
        '-c',
        'tar.umask=022',
    ]
    subprocess.run([*git, 'init', '-q'], check=True)
    subprocess.run([*git, 'add', '-A'], check=True)
    subprocess.run([*git, 'commit', '-q', '-m', 'v1'], check=True)
    with subprocess.Popen([*git, 'archive', '--format=tar', '--prefix=proj/', 'HEAD'], stdout=subprocess.PIPE) as proc:
        stats = extract_tar_stream(fileobj=proc.stdout, dest=str(dest), strip_components=1)
    assert proc.returncode == 0
    assert listing(dest) == {'.release.json', 'src', 'src/app.py', 'run.sh', 'app.py'}
    assert os.readlink(dest / 'app.py') == 'src/app.py'
    assert mode_of(dest / 'run.sh') == 0o755
    assert stats['files'] == 2
