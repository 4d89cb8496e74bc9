# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/plugin_utils/_pack.py: the controller packs, the host's extractor unpacks."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import time
from pathlib import Path

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils._extract import ExtractError, extract_archive
from ansible_collections.atomic.deploy.plugins.plugin_utils._pack import PackError, pack_directory

MTIME = 1_600_000_000


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    path = tmp_path / 'releases' / 'new'
    path.mkdir(parents=True)
    (path / '.release.json').write_text('{}')
    return path


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob('*')}


def ino(path: Path) -> int:
    return os.lstat(path).st_ino


def make_source_tree(root: Path) -> Path:
    src = root / 'build'
    (src / 'lib' / 'deep').mkdir(parents=True)
    (src / 'empty').mkdir()
    (src / 'lib' / 'deep' / 'mod.py').write_bytes(b'x = 1\n')
    (src / 'run').write_bytes(b'#!/bin/sh\n')
    (src / 'run').chmod(0o755)
    (src / 'private').write_bytes(b'p')
    (src / 'private').chmod(0o600)
    (src / ('n' * 150)).write_bytes(b'long name')
    (src / 'caf\u00e9.txt').write_bytes(b'unicode')
    os.symlink('lib/deep/mod.py', src / 'link-to-file')
    os.symlink('lib', src / 'link-to-dir')
    os.symlink('missing', src / 'dangling')
    os.link(src / 'run', src / 'run-hardlink')
    for path in src.rglob('*'):
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)
    return src


def test_pack_directory_round_trip(tmp_path, dest):
    src = make_source_tree(tmp_path)
    buf = io.BytesIO()
    pack_directory(src=str(src), fileobj=buf)
    archive = tmp_path / 'packed.tar.gz'
    archive.write_bytes(buf.getvalue())
    with tarfile.open(archive) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert '.' not in members and 'build' not in members
    assert members['link-to-dir'].issym()  # not followed
    assert 'link-to-dir/deep' not in members
    assert members['run-hardlink'].islnk()
    stats = extract_archive(archive=str(archive), dest=str(dest))
    assert stats['symlinks'] == 3
    assert stats['hardlinks'] == 1
    assert listing(dest) - {'.release.json'} == listing(src)
    for rel in listing(src):
        a, b = src / rel, dest / rel
        sa, sb = os.lstat(a), os.lstat(b)
        assert stat.S_IFMT(sa.st_mode) == stat.S_IFMT(sb.st_mode), rel
        if stat.S_ISLNK(sa.st_mode):
            assert os.readlink(a) == os.readlink(b)
            continue
        assert stat.S_IMODE(sa.st_mode) == stat.S_IMODE(sb.st_mode), rel
        if stat.S_ISREG(sa.st_mode):
            assert a.read_bytes() == b.read_bytes()
            assert sb.st_mtime == MTIME
    assert ino(dest / 'run') == ino(dest / 'run-hardlink')


def test_pack_directory_is_reproducible(tmp_path):
    src = make_source_tree(tmp_path)
    first, second = io.BytesIO(), io.BytesIO()
    pack_directory(src=str(src), fileobj=first)
    time.sleep(0.01)
    pack_directory(src=str(src), fileobj=second)
    assert first.getvalue() == second.getvalue()
    assert first.getvalue()[3:8] == b'\0\0\0\0\0'  # gzip header: no file name flag, no timestamp
    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as tf:
        names = tf.getnames()
    assert names.index('empty') < names.index('lib') < names.index('lib/deep') < names.index('link-to-dir')


def test_pack_directory_keeps_escaping_symlinks_for_the_extractor_to_refuse(tmp_path, dest):
    src = tmp_path / 'build'
    src.mkdir()
    os.symlink('/etc/passwd', src / 'passwd')
    buf = io.BytesIO()
    pack_directory(src=str(src), fileobj=buf)
    archive = tmp_path / 'packed.tar.gz'
    archive.write_bytes(buf.getvalue())
    with pytest.raises(ExtractError, match='absolute symlink target') as caught:
        extract_archive(archive=str(archive), dest=str(dest))
    assert caught.value.path == 'passwd'
    assert not (dest / 'passwd').exists()


def test_pack_directory_refuses_bad_sources(tmp_path):
    with pytest.raises(PackError, match='does not exist') as caught:
        pack_directory(src=str(tmp_path / 'missing'), fileobj=io.BytesIO())
    assert caught.value.path == str(tmp_path / 'missing')
    (tmp_path / 'file').write_text('x')
    with pytest.raises(PackError, match='is not a directory'):
        pack_directory(src=str(tmp_path / 'file'), fileobj=io.BytesIO())


def test_pack_directory_refuses_special_files(tmp_path):
    src = tmp_path / 'build'
    src.mkdir()
    (src / 'a.txt').write_text('a')
    os.mkfifo(src / 'pipe')
    with pytest.raises(PackError, match='pipe') as caught:
        pack_directory(src=str(src), fileobj=io.BytesIO())
    assert caught.value.path == str(src / 'pipe')


def test_pack_directory_compresslevel(tmp_path):
    src = tmp_path / 'build'
    src.mkdir()
    (src / 'text').write_bytes(b'compressible text ' * 20000)
    fast, small = io.BytesIO(), io.BytesIO()
    pack_directory(src=str(src), fileobj=fast, compresslevel=1)
    pack_directory(src=str(src), fileobj=small, compresslevel=9)
    assert len(small.getvalue()) < len(fast.getvalue())
