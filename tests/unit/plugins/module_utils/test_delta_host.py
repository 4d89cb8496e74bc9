# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_delta_host.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _delta_host, _manifest, _release


def release(tmp_path: Path, source: dict, state: str = _release.COMPLETE) -> _release.Release:
    return _release.Release(release_id='v1', path=str(tmp_path), state=state, meta={'source': source, 'state': state})


@pytest.mark.parametrize(
    ('recorded', 'asked', 'what'),
    [
        ({'content_digest': 'sha256:aa'}, {'content_digest': 'sha256:bb'}, 'content manifest'),
        ({'checksum': 'sha256:aa'}, {'checksum': 'sha256:bb'}, 'checksum'),
        ({'git_sha': 'a' * 40}, {'git_version': 'b' * 40}, 'git sha'),
    ],
)
def test_reused_id_with_another_artifact_is_named(tmp_path: Path, recorded: dict, asked: dict, what: str) -> None:
    message = _delta_host.identity_conflict(release=release(tmp_path, recorded), **asked)
    assert message is not None
    assert message.startswith('release v1 already exists')
    assert what in message and 'under a new id' in message
    old = next(iter(recorded.values()))
    new = next(iter(asked.values()))
    assert old in message and new in message


@pytest.mark.parametrize(
    ('recorded', 'asked'),
    [
        ({'content_digest': 'sha256:aa'}, {'content_digest': 'sha256:aa'}),
        ({}, {'content_digest': 'sha256:aa'}),  # made before manifests: nothing known
        ({'checksum': 'md5:aa'}, {'checksum': 'sha256:bb'}),  # not comparable
        ({'git_sha': 'a' * 40}, {'git_version': 'main'}),  # a branch cannot be compared unfetched
    ],
)
def test_same_or_unknown_identity_is_no_conflict(tmp_path: Path, recorded: dict, asked: dict) -> None:
    assert _delta_host.identity_conflict(release=release(tmp_path, recorded), **asked) is None


def test_write_manifest_refuses_a_tree_that_is_not_the_artifact(tmp_path: Path) -> None:
    (tmp_path / 'a').write_bytes(b'a')
    with pytest.raises(_manifest.ManifestError, match='does not match the artifact'):
        _delta_host.write_manifest(release=str(tmp_path), entries=None, exclude=[], content_digest='sha256:' + '0' * 64)
    value = _delta_host.write_manifest(release=str(tmp_path), entries=None, exclude=[], content_digest=None)
    assert _manifest.read(str(tmp_path))['digest'] == value


def test_drift_warning_names_the_files(tmp_path: Path) -> None:
    (tmp_path / 'a').write_bytes(b'a')
    _delta_host.write_manifest(release=str(tmp_path), entries=None, exclude=[], content_digest=None)
    assert _delta_host.drift_warning(release=release(tmp_path, {}))[0] is None
    (tmp_path / 'b').write_bytes(b'b')
    warning, report = _delta_host.drift_warning(release=release(tmp_path, {}))
    assert warning is not None and 'added b' in warning and report['added'] == ['b']


def test_probe_reports_content_and_bases_of_complete_releases_only(tmp_path: Path) -> None:
    done = tmp_path / 'done'
    done.mkdir()
    (done / 'a').write_bytes(b'a')
    value = _delta_host.write_manifest(release=str(done), entries=None, exclude=[], content_digest=None)
    half = tmp_path / 'half'
    half.mkdir()
    (half / 'b').write_bytes(b'b')
    _delta_host.write_manifest(release=str(half), entries=None, exclude=[], content_digest=None)
    releases = [
        _release.Release(release_id='done', path=str(done), state=_release.COMPLETE, meta={}),
        _release.Release(release_id='half', path=str(half), state=_release.UNFINISHED, meta={}),
    ]
    found = _delta_host.probe(releases=releases)
    import hashlib

    assert found['have'] == hashlib.sha256(b'a').hexdigest()[: _delta_host.PREFIX_LEN]
    assert found['bases'] == [value]
