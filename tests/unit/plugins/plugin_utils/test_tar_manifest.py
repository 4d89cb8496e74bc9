# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/plugin_utils/_tar_manifest.py: the controller's manifest of a tar stream."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _extract, _manifest
from ansible_collections.atomic.deploy.plugins.plugin_utils import _tar_manifest


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tree(root: Path) -> None:
    (root / 'app' / 'lib').mkdir(parents=True)
    (root / 'app' / 'index.php').write_bytes(b'<?php echo 1;\n')
    (root / 'app' / 'lib' / 'a.py').write_bytes(b'a' * 1000)
    (root / 'bin').mkdir()
    (root / 'bin' / 'run').write_bytes(b'#!/bin/sh\n')
    os.chmod(root / 'bin' / 'run', 0o755)
    os.symlink('../app/index.php', root / 'bin' / 'index')
    (root / 'empty').mkdir()


def tar_of(root: Path, *, prefix: str = '') -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz') as tf:
        for path in sorted(root.rglob('*')):
            tf.add(path, arcname=prefix + str(path.relative_to(root)), recursive=False)
    return buf.getvalue()


def test_tar_manifest_equals_the_extracted_tree(tmp_path: Path) -> None:
    src = tmp_path / 'src'
    src.mkdir()
    make_tree(src)
    data = tar_of(src, prefix='pkg-1/')
    entries = _tar_manifest.from_tar(fileobj=io.BytesIO(data), strip_components=1)
    dest = tmp_path / 'dest'
    dest.mkdir()
    (tmp_path / 'a.tgz').write_bytes(data)
    _extract.extract_archive(archive=str(tmp_path / 'a.tgz'), dest=str(dest), strip_components=1)
    tree, records = _manifest.from_tree(root=str(dest))
    assert _manifest.digest(entries) == _manifest.digest(tree)
    assert set(records) == {e[0] for e in tree if e[1] == _manifest.FILE}
    kinds = {e[0]: e[1] for e in entries}
    assert (
        kinds['bin/index'] == _manifest.LINK
        and kinds['empty'] == _manifest.DIR
        and kinds['app/lib/a.py'] == _manifest.FILE
    )


def test_tar_manifest_follows_the_extractor_rules(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tf:
        for name, data in (('x/a', b'one'), ('x/a', b'two'), ('y', b'y')):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o4777
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo('z')
        link.type = tarfile.LNKTYPE
        link.linkname = 'y'
        tf.addfile(link)
    entries = _tar_manifest.from_tar(fileobj=io.BytesIO(buf.getvalue()))
    assert entries == [
        ['x', 'd', 0o755],
        ['x/a', 'f', 0o775, 3, sha(b'two'), 0],
        ['y', 'f', 0o775, 1, sha(b'y'), 0],
        ['z', 'f', 0o775, 1, sha(b'y'), 0],
    ]
    (tmp_path / 'a.tar').write_bytes(buf.getvalue())
    dest = tmp_path / 'd'
    dest.mkdir()
    _extract.extract_archive(archive=str(tmp_path / 'a.tar'), dest=str(dest))
    assert _manifest.digest(_manifest.from_tree(root=str(dest))[0]) == _manifest.digest(entries)


@pytest.mark.parametrize('name', ['../x', '/etc/passwd', '.release.json', 'a/../../b'])
def test_tar_manifest_refuses_what_the_extractor_refuses(name: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tf:
        info = tarfile.TarInfo(name)
        tf.addfile(info, io.BytesIO(b''))
    with pytest.raises(_manifest.ManifestError):
        _tar_manifest.from_tar(fileobj=io.BytesIO(buf.getvalue()))
