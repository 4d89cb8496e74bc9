# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Nothing under releases/ counts unless the deploy user made it (SECURITY.md, "the web user is hostile")."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _delta_host, _manifest, _release

OTHER = 65534  # nobody: "another user"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='planting files of another user needs root')


def make(root: Path, release_id: str, *, state: str = 'complete', second: int = 0) -> Path:
    path = root / 'releases' / release_id
    path.mkdir(parents=True)
    meta = {'format': 1, 'id': release_id, 'state': state, 'started': f'2026-01-01T00:00:{second:02d}.000000Z'}
    _release.write_metadata(release_path=str(path), meta=meta, fsync=False)
    return path


@pytest.fixture
def layout(tmp_path: Path) -> _release.Layout:
    make(tmp_path, 'v1', second=1)
    make(tmp_path, 'v2', second=2)
    os.symlink('releases/v2', tmp_path / 'current')
    return _release.Layout(str(tmp_path))


def listing(layout: _release.Layout) -> tuple[list[str], list[str], dict]:
    untrusted: list = []
    releases, ignored = _release.list_releases(layout, untrusted)
    return [r.id for r in releases], ignored, {u['path']: u['reason'] for u in untrusted}


@needs_root
def test_a_release_directory_of_another_user_is_not_a_release(layout: _release.Layout) -> None:
    forged = make(Path(layout.root), 'forged', second=1)
    os.chown(forged, OTHER, OTHER)
    ids, ignored, untrusted = listing(layout)
    assert ids == ['v1', 'v2'] and 'forged' in ignored
    assert untrusted == {str(forged): f'owned by uid {OTHER}, not by the deploy user (uid 0) or root'}
    assert _release.read_metadata(str(forged)) is None


@needs_root
def test_metadata_another_user_wrote_makes_the_directory_untrusted(layout: _release.Layout) -> None:
    forged = make(Path(layout.root), 'forged', second=1)
    os.chown(forged / '.release.json', OTHER, OTHER)
    ids, _ignored, untrusted = listing(layout)
    assert ids == ['v1', 'v2']
    assert untrusted[str(forged)].startswith(f'.release.json is owned by uid {OTHER}')


@pytest.mark.parametrize(
    ('what', 'mode', 'why'),
    [
        ('dir', 0o2775, 'writable by group'),
        ('dir', 0o757, 'writable by every user'),
        ('meta', 0o664, '.release.json is writable by group'),
        ('meta', 0o646, '.release.json is writable by every user'),
    ],
)
def test_a_release_anyone_else_can_write_is_not_a_release(layout: _release.Layout, what: str, mode: int, why) -> None:
    forged = make(Path(layout.root), 'forged', second=3)
    os.chmod(forged if what == 'dir' else forged / '.release.json', mode)
    ids, _ignored, untrusted = listing(layout)
    assert ids == ['v1', 'v2'], 'a newer forged release would be listed (and become the newest)'
    assert untrusted[str(forged)].startswith(why)


def test_an_untrusted_release_is_never_the_rollback_candidate(layout: _release.Layout) -> None:
    forged = make(Path(layout.root), 'forged', second=1)
    os.chmod(forged, 0o777)
    releases, _ignored = _release.list_releases(layout)
    assert _release.rollback_candidate(releases, 'v2').id == 'v1'


def test_releases_dir_anyone_can_write_holds_no_release(layout: _release.Layout) -> None:
    os.chmod(layout.releases, 0o777)
    ids, _ignored, untrusted = listing(layout)
    assert ids == [] and untrusted == {layout.releases: 'writable by every user'}
    assert _release.leftovers(layout) == []


def test_leftovers_are_only_the_deploy_users_own(layout: _release.Layout) -> None:
    own = Path(layout.releases) / '.tmp-v3-abc'
    own.mkdir()
    planted = Path(layout.releases) / '.trash-v0-def'
    planted.mkdir()
    os.chmod(planted, 0o777)
    os.symlink('/etc', Path(layout.releases) / '.trash-link')
    assert _release.leftovers(layout) == [str(own)]
    _ids, _ignored, untrusted = listing(layout)
    assert untrusted == {str(planted): 'writable by every user'}


def test_metadata_is_private_and_old_releases_are_made_private(layout: _release.Layout) -> None:
    v1 = Path(layout.release('v1'))
    assert stat.S_IMODE(os.lstat(v1 / '.release.json').st_mode) == 0o600
    os.chmod(v1 / '.release.json', 0o644)  # as written before the rule
    (v1 / _manifest.MANIFEST_NAME).write_text('{}')
    os.chmod(v1 / _manifest.MANIFEST_NAME, 0o644)
    ids, _ignored, untrusted = listing(layout)
    assert ids == ['v1', 'v2'] and untrusted == {}, 'an old release (0644 metadata) keeps working'
    assert _release.make_private(str(v1)) == [str(v1 / '.release.json'), str(v1 / _manifest.MANIFEST_NAME)]
    for name in ('.release.json', _manifest.MANIFEST_NAME):
        assert stat.S_IMODE(os.lstat(v1 / name).st_mode) == 0o600
    assert _release.make_private(str(v1)) == []


def test_make_private_never_follows_a_link(layout: _release.Layout, tmp_path: Path) -> None:
    outside = tmp_path / 'outside.json'
    outside.write_text(json.dumps({'x': 1}))
    os.chmod(outside, 0o644)
    v1 = Path(layout.release('v1'))
    os.unlink(v1 / '.release.json')
    os.symlink(str(outside), v1 / '.release.json')
    assert _release.make_private(str(v1)) == []
    assert stat.S_IMODE(os.lstat(outside).st_mode) == 0o644


def test_a_deploy_dir_anyone_else_can_write_is_refused(layout: _release.Layout) -> None:
    _release.ensure_deploy_dir(layout)
    tmp = Path(layout.tmp)
    tmp.mkdir()
    os.chmod(tmp, 0o2775)  # as a deploy would make it through a link in shared/ (the web user's group)
    with pytest.raises(_release.ReleaseError, match='is not trusted \\(writable by group'):
        _delta_host.stage_from_bundle(
            tmp=str(tmp), dest=str(tmp / 'x'), bundle=str(tmp / 'b'), releases=[], release_id='v3', dedupe=True
        )
    assert os.listdir(tmp) == [], 'nothing may be made in a directory the web user can write'
    os.chmod(tmp, 0o750)
    _release.require_trusted(str(tmp), what='delta work dirs')


def test_prune_never_removes_nor_enters_an_untrusted_directory(layout: _release.Layout) -> None:
    from ansible_collections.atomic.deploy.plugins.module_utils import _prune

    old = make(Path(layout.root), 'v0', second=0)
    forged = make(Path(layout.root), 'forged', second=0)
    os.chmod(forged, 0o2777)
    trash = Path(layout.releases) / '.trash-x-abc'
    trash.mkdir()
    os.chmod(trash, 0o777)
    outcome = _prune.prune(layout=layout, current='v2', keep=2, protect=[])
    assert outcome['removed'] == ['v0'] and not old.exists()
    assert forged.is_dir() and (forged / '.release.json').is_file() and trash.is_dir()
    assert {u['path'] for u in outcome['untrusted']} == {str(forged), str(trash)}


def _chown_tree(path: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)):
            os.lchown(name, uid, uid)


@pytest.fixture
def deploy_user_root(tmp_path: Path):
    """A root a deploy user (nobody here) deployed to without become: everything is that user's."""
    root = tmp_path / 'app'
    make(root, 'v1', second=1)
    make(root, 'v2', second=2)
    os.symlink('releases/v2', root / 'current')
    (root / '.deploy').mkdir(mode=0o755)
    _chown_tree(root, OTHER)
    yield root
    _manifest.adopt_deploy_owner(str(tmp_path))  # leave no adopted owner behind for other tests


@needs_root
def test_root_trusts_the_releases_of_the_user_that_owns_dot_deploy(deploy_user_root: Path) -> None:
    # prune, rollback or status with become, after deploys without it
    ids, _ignored, untrusted = listing(_release.Layout(str(deploy_user_root)))
    assert ids == ['v1', 'v2'] and untrusted == {}
    assert _manifest.deploy_ids() == (OTHER, OTHER)


@needs_root
@pytest.mark.parametrize('spoil', ['group-writable .deploy', 'group-writable root', '.deploy a symlink', 'no .deploy'])
def test_root_adopts_no_owner_from_a_dot_deploy_others_could_make(deploy_user_root: Path, spoil: str) -> None:
    deploy = deploy_user_root / '.deploy'
    if spoil == 'group-writable .deploy':
        deploy.chmod(0o775)
    elif spoil == 'group-writable root':
        deploy_user_root.chmod(0o775)
    else:
        deploy.rmdir()
        if spoil == '.deploy a symlink':
            os.symlink('releases', deploy)
    ids, _ignored, untrusted = listing(_release.Layout(str(deploy_user_root)))
    assert ids == [] and list(untrusted) == [str(deploy_user_root / 'releases')]
    assert _manifest.deploy_ids() == (0, 0)
