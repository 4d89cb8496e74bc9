# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/plugin_utils/_delta.py (controller side of delta staging)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _assemble as A
from ansible_collections.atomic.deploy.plugins.module_utils import _manifest as M
from ansible_collections.atomic.deploy.plugins.plugin_utils import _delta as D


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / 'cache'
    monkeypatch.setenv('ATOMIC_DEPLOY_DELTA_CACHE', str(folder))
    return folder


def make_artifact(tmp_path: Path, files: dict) -> Path:
    archive = tmp_path / 'a.tar.gz'
    with tarfile.open(archive, 'w:gz') as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return archive


def test_manifest_is_computed_once_per_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_artifact(tmp_path, {'a': b'1', 'b/c': b'2'})
    first = D.artifact_manifest(path=str(archive), kind='archive')
    assert first is not None and [e[0] for e in first['entries']] == ['a', 'b', 'b/c']

    def boom(**_kwargs):
        raise AssertionError('built twice')

    monkeypatch.setattr(D, '_build', boom)
    again = D.artifact_manifest(path=str(archive), kind='archive')
    assert again is not None and again['digest'] == first['digest']


def test_a_changed_artifact_gets_a_new_manifest(tmp_path: Path) -> None:
    archive = make_artifact(tmp_path, {'a': b'1'})
    first = D.artifact_manifest(path=str(archive), kind='archive')
    archive = make_artifact(tmp_path, {'a': b'2'})
    second = D.artifact_manifest(path=str(archive), kind='archive')
    assert first['digest'] != second['digest']


def test_zip_and_hostile_archives_have_no_manifest(tmp_path: Path) -> None:
    (tmp_path / 'z.zip').write_bytes(b'PK\x03\x04' + b'\0' * 40)
    assert D.artifact_manifest(path=str(tmp_path / 'z.zip'), kind='archive') is None
    hostile = make_artifact(tmp_path, {'../evil': b'x'})
    assert D.artifact_manifest(path=str(hostile), kind='archive') is None


def test_have_round_trip_and_missing() -> None:
    digests = [hashlib.sha256(bytes([i])).hexdigest() for i in range(5)]
    have = D.parse_have(D.format_have(digests[:3]))
    entries = [[str(i), 'f', 0o644, 1, d, 0] for i, d in enumerate(digests)]
    assert D.missing(entries, have) == set(digests[3:])
    assert D.parse_have(None) == set()


@pytest.mark.parametrize('kind', ['archive', 'directory'])
def test_bundle_holds_only_the_missing_content_and_assembles(tmp_path: Path, kind: str) -> None:
    files = {'a': b'old' * 100, 'b/c': b'new content', 'b/d': b'new content'}
    if kind == 'archive':
        path = make_artifact(tmp_path, files)
    else:
        path = tmp_path / 'dir'
        (path / 'b').mkdir(parents=True)
        for name, data in files.items():
            (path / name).write_bytes(data)
    manifest = D.artifact_manifest(path=str(path), kind=kind)
    need = {hashlib.sha256(b'new content').hexdigest()}
    bundle = D.bundle(path=str(path), kind=kind, strip_components=0, manifest=manifest, need=need)
    assert D.bundle(path=str(path), kind=kind, strip_components=0, manifest=manifest, need=need) == bundle
    with tarfile.open(bundle) as tf:
        assert tf.getnames() == ['manifest.json', f'objects/{next(iter(need))}']
    # the host side: the old content is in a complete release, the new one comes from the bundle
    old = tmp_path / 'v1'
    old.mkdir()
    (old / 'a').write_bytes(b'old' * 100)
    os.chmod(old / 'a', 0o644)
    M.record_tree(release=str(old), entries=[['a', 'f', 0o644, 300, hashlib.sha256(b'old' * 100).hexdigest(), 0]])
    work = tmp_path / 'work'
    work.mkdir()
    entries, objects = A.read_bundle(bundle=bundle, workdir=str(work))
    dest = tmp_path / 'v2'
    dest.mkdir()
    stats = A.assemble(dest=str(dest), entries=entries, have=M.inventory(releases=[str(old)]), objects=objects)
    assert stats['sent'] == 1 and stats['linked'] == 2
    assert M.digest(M.from_tree(root=str(dest))[0]) == manifest['digest']
