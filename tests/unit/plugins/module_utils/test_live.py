# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_live.py: the one "is live" rule the release module and the
live-check program share, and the program's read of the disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _live, _manifest

DIGEST = 'sha256:' + 'a' * 64
OTHER = 'sha256:' + 'b' * 64


def live(**extra) -> bool:
    args = {'complete': True, 'release_id': 'v2', 'current_id': 'v2', 'source': {'content_digest': DIGEST}}
    args.update(extra)
    return _live.is_live(**args)


@pytest.mark.parametrize(
    ('extra', 'expected'),
    [
        ({}, True),
        ({'complete': False}, False),
        ({'current_id': 'v1'}, False),
        ({'content_digest': DIGEST}, True),
        ({'content_digest': OTHER}, False),  # another artifact under the same id
        ({'source': {}, 'content_digest': DIGEST}, True),  # a release from before manifests: nothing says no
        ({'source': {'checksum': 'sha256:ab'}, 'checksum': 'SHA256:AB'}, True),
        ({'source': {'checksum': 'sha256:ab'}, 'checksum': 'sha256:cd'}, False),
        ({'source': {'checksum': 'sha1:ab'}, 'checksum': 'sha256:cd'}, True),  # algorithms differ: not comparable
    ],
)
def test_the_module_rule(extra, expected):
    assert live(**extra) is expected


@pytest.mark.parametrize(
    ('extra', 'expected'),
    [
        ({'content_digest': DIGEST}, True),
        ({'content_digest': OTHER}, False),
        ({'content_digest': None}, False),  # nothing to prove it with
        ({'source': {}, 'content_digest': DIGEST}, False),  # not recorded: the module decides
        ({'source': {'content_digest': DIGEST}, 'content_digest': DIGEST, 'checksum': 'sha256:ab'}, False),
        (
            {
                'source': {'content_digest': DIGEST, 'checksum': 'sha256:ab'},
                'content_digest': DIGEST,
                'checksum': 'sha256:AB',
            },
            True,
        ),
        ({'source': {'content_digest': DIGEST}, 'content_digest': DIGEST, 'current_id': None}, False),
    ],
)
def test_the_program_rule_says_live_only_when_it_can_show_it(extra, expected):
    assert live(proven=True, **extra) is expected


def test_a_git_sha_conflicts_only_as_a_full_sha():
    source = {'git_sha': 'a' * 40}
    assert _live.artifact_conflict(source, git_version='b' * 40) == ('git sha', 'a' * 40, 'b' * 40)
    assert _live.artifact_conflict(source, git_version='main') is None
    assert live(source=source) is True


def release_tree(root: Path, *, state: str = 'complete', digest: str | None = None) -> Path:
    release = root / 'releases' / 'v2'
    release.mkdir(parents=True)
    (release / 'a').write_bytes(b'a')
    value = _manifest.record_tree(release=str(release), entries=_manifest.from_tree(root=str(release))[0])
    meta = {'id': 'v2', 'state': state, 'source': {'content_digest': digest or value}}
    (release / '.release.json').write_text(json.dumps(meta))
    return release


def test_check_reads_current_and_the_metadata(tmp_path: Path):
    release = release_tree(tmp_path)
    digest = json.loads((release / '.release.json').read_text())['source']['content_digest']
    assert _live.check(str(tmp_path), 'v2', digest) == {'live': False}  # no current yet
    os.symlink('releases/v2', tmp_path / 'current')
    found = _live.check(str(tmp_path), 'v2', digest)
    assert found['live'] is True and found['drift']['drifted'] is False
    assert _live.check(str(tmp_path), 'v2', OTHER) == {'live': False}


def test_check_refuses_metadata_behind_a_symlink(tmp_path: Path):
    release = release_tree(tmp_path)
    digest = json.loads((release / '.release.json').read_text())['source']['content_digest']
    os.symlink('releases/v2', tmp_path / 'current')
    (tmp_path / 'elsewhere.json').write_text((release / '.release.json').read_text())
    (release / '.release.json').unlink()
    os.symlink(tmp_path / 'elsewhere.json', release / '.release.json')
    assert _live.check(str(tmp_path), 'v2', digest) == {'live': False}


def test_an_unfinished_release_is_not_live(tmp_path: Path):
    release_tree(tmp_path, state='unfinished', digest=DIGEST)
    os.symlink('releases/v2', tmp_path / 'current')
    assert _live.check(str(tmp_path), 'v2', DIGEST) == {'live': False}
