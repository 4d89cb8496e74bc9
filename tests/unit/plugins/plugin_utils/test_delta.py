# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/plugin_utils/_delta.py (controller side of delta staging)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _assemble, _manifest
from ansible_collections.atomic.deploy.plugins.plugin_utils import _delta


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
    first = _delta.artifact_manifest(path=str(archive), kind='archive')
    assert first is not None and [e[0] for e in first['entries']] == ['a', 'b', 'b/c']

    def boom(**_kwargs):
        raise AssertionError('built twice')

    monkeypatch.setattr(_delta, '_build', boom)
    again = _delta.artifact_manifest(path=str(archive), kind='archive')
    assert again is not None and again['digest'] == first['digest']


def test_a_changed_artifact_gets_a_new_manifest(tmp_path: Path) -> None:
    archive = make_artifact(tmp_path, {'a': b'1'})
    first = _delta.artifact_manifest(path=str(archive), kind='archive')
    archive = make_artifact(tmp_path, {'a': b'2'})
    second = _delta.artifact_manifest(path=str(archive), kind='archive')
    assert first['digest'] != second['digest']


def test_zip_and_hostile_archives_have_no_manifest(tmp_path: Path) -> None:
    (tmp_path / 'z.zip').write_bytes(b'PK\x03\x04' + b'\0' * 40)
    assert _delta.artifact_manifest(path=str(tmp_path / 'z.zip'), kind='archive') is None
    hostile = make_artifact(tmp_path, {'../evil': b'x'})
    assert _delta.artifact_manifest(path=str(hostile), kind='archive') is None


def test_have_round_trip_and_missing() -> None:
    digests = [hashlib.sha256(bytes([i])).hexdigest() for i in range(5)]
    have = _delta.parse_have(_delta.format_have(digests[:3]))
    entries = [[str(i), 'f', 0o644, 1, d, 0] for i, d in enumerate(digests)]
    assert _delta.missing(entries, have) == set(digests[3:])
    assert _delta.parse_have(None) == set()


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
    manifest = _delta.artifact_manifest(path=str(path), kind=kind)
    need = {hashlib.sha256(b'new content').hexdigest()}
    bundle = _delta.bundle(path=str(path), kind=kind, strip_components=0, manifest=manifest, need=need)
    assert _delta.bundle(path=str(path), kind=kind, strip_components=0, manifest=manifest, need=need) == bundle
    with tarfile.open(bundle) as tf:
        assert tf.getnames() == ['manifest.json', f'objects/{next(iter(need))}']
    # the host side: the old content is in a complete release, the new one comes from the bundle
    old = tmp_path / 'v1'
    old.mkdir()
    (old / 'a').write_bytes(b'old' * 100)
    os.chmod(old / 'a', 0o644)
    _manifest.record_tree(
        release=str(old), entries=[['a', 'f', 0o644, 300, hashlib.sha256(b'old' * 100).hexdigest(), 0]]
    )
    work = tmp_path / 'work'
    work.mkdir()
    entries, objects = _assemble.read_bundle(bundle=bundle, workdir=str(work))
    dest = tmp_path / 'v2'
    dest.mkdir()
    stats = _assemble.assemble(
        dest=str(dest), entries=entries, have=_manifest.inventory(releases=[str(old)]), objects=objects
    )
    assert stats['sent'] == 1 and stats['linked'] == 2
    assert _manifest.digest(_manifest.from_tree(root=str(dest))[0]) == manifest['digest']


def test_bundle_sends_the_manifest_as_a_difference_from_a_known_base(tmp_path: Path) -> None:
    files = {f'f{i}': bytes([i]) * 100 for i in range(50)}
    v1 = make_artifact(tmp_path, files)
    first = _delta.artifact_manifest(path=str(v1), kind='archive')
    old = tmp_path / 'v1'
    old.mkdir()
    for name, data in files.items():
        (old / name).write_bytes(data)
    _manifest.record_tree(release=str(old), entries=first['entries'])
    (tmp_path / 'v2').mkdir()
    files['f3'] = b'changed'
    v2 = make_artifact(tmp_path / 'v2', files)
    second = _delta.artifact_manifest(path=str(v2), kind='archive')
    need = {hashlib.sha256(b'changed').hexdigest()}
    full = _delta.bundle(path=str(v2), kind='archive', strip_components=0, manifest=second, need=need)
    small = _delta.bundle(
        path=str(v2), kind='archive', strip_components=0, manifest=second, need=need, bases=[first['digest']]
    )
    with tarfile.open(small) as tf:
        handle = tf.extractfile('manifest.json')
        assert handle is not None
        doc = json.loads(handle.read())
    assert doc['base'] == first['digest'] and [e[0] for e in doc['upsert']] == ['f3'] and doc['remove'] == []
    assert os.path.getsize(small) < os.path.getsize(full)
    work = tmp_path / 'work'
    work.mkdir()
    with pytest.raises(_manifest.ManifestError, match='no complete release here'):
        _assemble.read_bundle(bundle=small, workdir=str(work))
    work2 = tmp_path / 'work2'
    work2.mkdir()
    entries, objects = _assemble.read_bundle(
        bundle=small, workdir=str(work2), bases={first['digest']: first['entries']}
    )
    dest = tmp_path / 'dest'
    dest.mkdir()
    _assemble.assemble(dest=str(dest), entries=entries, have=_manifest.inventory(releases=[str(old)]), objects=objects)
    assert _manifest.digest(_manifest.from_tree(root=str(dest))[0]) == second['digest']


def test_live_check_script_runs_standalone(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = tmp_path / 'root'
    release = root / 'releases' / 'v1'
    release.mkdir(parents=True)
    (release / 'a').write_bytes(b'a')
    value = _manifest.record_tree(release=str(release), entries=_manifest.from_tree(root=str(release))[0])
    meta = {'id': 'v1', 'state': 'complete', 'source': {'content_digest': value}}
    (release / '.release.json').write_text(json.dumps(meta))
    os.symlink('releases/v1', root / 'current')

    def run(digest: str) -> dict:
        script = _delta.live_check_script(root=str(root), release_id='v1', content_digest=digest, checksum=None)
        done = subprocess.run([sys.executable, '-'], input=script, capture_output=True, text=True, check=True)
        return json.loads(done.stdout)

    assert run(value)['live'] is True and run(value)['drift']['drifted'] is False
    assert run('sha256:' + '0' * 64) == {'live': False}
    (release / 'a').write_bytes(b'b')
    assert run(value)['drift']['changed'] == ['a']
