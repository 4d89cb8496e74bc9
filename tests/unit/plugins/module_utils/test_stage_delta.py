# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The delta flows of _stage.present: probe, assembly from a bundle, kills, reused ids, drift."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import (
    _activate,
    _assemble,
    _lock,
    _manifest,
    _release,
    _stage,
    _stage_options,
)
from ansible_collections.atomic.deploy.plugins.plugin_utils import _delta


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('ATOMIC_DEPLOY_DELTA_CACHE', str(tmp_path / 'cache'))


@pytest.fixture
def layout(tmp_path: Path) -> _release.Layout:
    return _release.Layout(str(tmp_path / 'app'))


def tarball(path: Path, files: dict) -> Path:
    with tarfile.open(path, 'w:gz') as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return path


FILES = {f'src/f{i}.txt': (f'file {i}\n' * 50).encode() for i in range(20)}


def present(layout, release_id, warnings, **options) -> dict:
    return _stage.present(
        layout=layout,
        release_id=release_id,
        options=_stage_options.StageOptions(**options),
        lock=True,
        lock_token='t0ken',
        owner={'user': 'alice'},
        warn=warnings.append,
        result={},
    )


def deploy_full(layout, release_id, archive: Path, warnings) -> dict:
    manifest = _delta.artifact_manifest(path=str(archive), kind='archive')
    result = present(
        layout, release_id, warnings, source='archive', archive=str(archive), content_digest=manifest['digest']
    )
    _activate.active(
        layout=layout, release_id=release_id, lock_token='t0ken', unlock=True, warn=warnings.append, result={}
    )
    return result


def deploy_delta(layout, release_id, archive: Path, warnings) -> tuple[dict, dict]:
    """What the action plugin does: probe, bundle of the missing content, assemble."""
    manifest = _delta.artifact_manifest(path=str(archive), kind='archive')
    common = dict(source='archive', archive=str(archive), content_digest=manifest['digest'])
    existed = os.path.exists(layout.release(release_id))
    probe = present(layout, release_id, warnings, delta_plan={'probe': True}, **common)
    assert existed or not os.path.exists(layout.release(release_id)), 'the probe creates nothing'
    need = _delta.missing(manifest['entries'], _delta.parse_have(probe['delta']['have']))
    bundle = _delta.bundle(
        path=str(archive),
        kind='archive',
        strip_components=0,
        manifest=manifest,
        need=need,
        bases=probe['delta']['bases'],
    )
    result = present(layout, release_id, warnings, delta_plan={'bundle': bundle, 'lock_acquired': False}, **common)
    _activate.active(
        layout=layout, release_id=release_id, lock_token='t0ken', unlock=True, warn=warnings.append, result={}
    )
    return probe, result


def test_probe_takes_the_lock_and_assembly_builds_the_artifact(layout, tmp_path):
    warnings: list = []
    v1 = tarball(tmp_path / 'v1.tgz', FILES)
    deploy_full(layout, 'v1', v1, warnings)
    files = dict(FILES, **{'src/f3.txt': b'changed\n'})
    v2 = tarball(tmp_path / 'v2.tgz', files)
    other = _lock.acquire  # the probe holds the lock: a second deploy is refused
    probe, result = deploy_delta(layout, 'v2', v2, warnings)
    assert probe['token'] == 't0ken' and other is _lock.acquire
    assert result['stats']['sent'] == 1 and result['stats']['linked'] == 19
    tree, _records = _manifest.from_tree(root=layout.release('v2'), exclude=('.release.json', _manifest.MANIFEST_NAME))
    assert _manifest.digest(tree) == _delta.artifact_manifest(path=str(v2), kind='archive')['digest']
    meta = _release.read_metadata(layout.release('v2'))
    assert meta['source']['content_digest'] == _manifest.digest(tree)


def test_a_second_deploy_is_refused_by_the_probe(layout, tmp_path):
    warnings: list = []
    v1 = tarball(tmp_path / 'v1.tgz', FILES)
    deploy_full(layout, 'v1', v1, warnings)
    _lock.acquire(deploy_dir=layout.deploy, token='someone-else')
    with pytest.raises(_lock.LockHeld):
        present(layout, 'v2', warnings, source='archive', archive=str(v1), delta_plan={'probe': True})


def test_kill_in_the_middle_of_assembly_never_leaves_a_source(layout, tmp_path, monkeypatch):
    warnings: list = []
    v1 = tarball(tmp_path / 'v1.tgz', FILES)
    deploy_full(layout, 'v1', v1, warnings)
    v2 = tarball(tmp_path / 'v2.tgz', dict(FILES, **{'src/new.txt': b'new\n'}))
    placed = []
    real = _assemble._place

    def dying(*args, **kwargs):
        if len(placed) == 10:
            os._exit(9)  # a SIGKILL: no cleanup, no history, the lock stays
        placed.append(1)
        return real(*args, **kwargs)

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child dies inside the assembly
        monkeypatch.setattr(_assemble, '_place', dying)
        try:
            deploy_delta(layout, 'v2', v2, warnings)
        finally:
            os._exit(1)
    _pid, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 9
    files = [n for _d, _s, names in os.walk(layout.release('v2')) for n in names]
    assert 10 <= len(files) < 21, files  # half written
    assert os.readlink(layout.current) == 'releases/v1'
    releases, _ignored = _release.list_releases(layout)
    assert _release.find(releases, 'v2').state == _release.UNFINISHED
    # the next deploy: the half-built release is not a source, the result is exact
    probe, result = deploy_delta(layout, 'v2', v2, warnings)
    assert result['rebuilt'] is True
    tree, _records = _manifest.from_tree(root=layout.release('v2'), exclude=('.release.json', _manifest.MANIFEST_NAME))
    assert _manifest.digest(tree) == _delta.artifact_manifest(path=str(v2), kind='archive')['digest']


def test_reused_id_with_another_artifact_fails_and_the_same_stays_a_noop(layout, tmp_path):
    warnings: list = []
    v1 = tarball(tmp_path / 'v1.tgz', FILES)
    deploy_full(layout, 'v1', v1, warnings)
    v2 = tarball(tmp_path / 'v2.tgz', dict(FILES, **{'src/f1.txt': b'other\n'}))
    digest = _delta.artifact_manifest(path=str(v2), kind='archive')['digest']
    with pytest.raises(_release.ReleaseError, match='release v1 already exists .* under a new id'):
        present(layout, 'v1', warnings, source='archive', archive=str(v2), content_digest=digest)
    same = _delta.artifact_manifest(path=str(v1), kind='archive')['digest']
    result = present(layout, 'v1', warnings, source='archive', archive=str(v1), content_digest=same)
    assert result['live'] is True and result.get('changed') is not True


def test_a_deploy_warns_when_current_has_drifted(layout, tmp_path):
    warnings: list = []
    v1 = tarball(tmp_path / 'v1.tgz', FILES)
    deploy_full(layout, 'v1', v1, warnings)
    Path(layout.release('v1'), 'src', 'f2.txt').write_bytes(b'hot-patched\n')
    present(layout, 'v2', warnings, source='archive', archive=str(v1))
    assert any('release v1 (current) has drifted' in w and 'changed src/f2.txt' in w for w in warnings), warnings
