# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared paths as on macOS and FreeBSD: setgid refused with EPERM, a root reached through a symlink."""

from __future__ import annotations

import os
import stat

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _fs, _shared
from ansible_collections.atomic.deploy.plugins.module_utils._release import ReleaseError


def assert_setgid_explained(message: str, path: str) -> None:
    assert message.startswith(f'cannot set the setgid bit of {path} (mode 2775)'), message
    assert 'not in its group' in message and '(0)' in message
    assert 'add the deploy user to that group' in message and 'writable_mode 0775' in message


def test_setgid_refused_with_eperm_is_explained(tmp_path, platform, deploy_user_not_in_group):
    path = str(tmp_path / 'shared')
    with pytest.raises(_fs.FsError) as info:
        _fs.ensure_dir(path=path, mode=0o2775)
    assert_setgid_explained(str(info.value), path)
    assert info.value.path == path


def test_setgid_dropped_silently_on_linux_is_not_a_change_on_every_run(tmp_path, deploy_user_not_in_group):
    # Linux: fchmod(2775) "succeeds" without the bit, so the mode differs again on the next run.
    path = str(tmp_path / 'shared')
    for _run in range(2):
        with pytest.raises(_fs.FsError) as info:
            _fs.ensure_dir(path=path, mode=0o2775)
        assert_setgid_explained(str(info.value), path)
    assert not stat.S_IMODE(os.stat(path).st_mode) & stat.S_ISGID


def test_setgid_refusal_comes_before_staging_in_check_mode(tmp_path, platform, deploy_user_not_in_group):
    root = tmp_path / 'www'
    (root / 'shared').mkdir(parents=True)
    os.chmod(root / 'shared', 0o755)
    with pytest.raises(ReleaseError) as info:
        _shared.ensure_shared(
            root=str(root), shared=str(root / 'shared'), dirs=['storage'], files=[], mode=0o2775, check_mode=True
        )
    assert_setgid_explained(str(info.value), str(root / 'shared'))
    assert os.listdir(root / 'shared') == []


def test_setgid_as_a_member_of_the_group_is_set(tmp_path, platform):
    path = str(tmp_path / 'shared')
    assert _fs.ensure_dir(path=path, mode=0o2775) is True
    assert _fs.ensure_dir(path=path, mode=0o2775) is False
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o2775


def test_symlinked_root_link_into_the_root_is_refused(linked_root, platform):
    # /var/www -> /private/var/www: a link in shared/ into the root is inside it, whichever way the root is spelt.
    root = linked_root
    os.makedirs(os.path.join(root, 'shared'))
    os.makedirs(os.path.join(root, 'releases'))
    os.symlink(os.path.join(root, 'releases'), os.path.join(root, 'shared', 'storage'))
    with pytest.raises(ReleaseError, match='inside the deploy root'):
        _shared.ensure_shared(
            root=root, shared=os.path.join(root, 'shared'), dirs=['storage'], files=[], mode=0o755, allow_external=True
        )


def test_symlinked_root_shared_dirs_are_made_inside(linked_root, platform):
    root = linked_root
    outcome = _shared.ensure_shared(
        root=root, shared=os.path.join(root, 'shared'), dirs=['storage/logs'], files=['.env'], mode=0o755
    )
    assert os.path.isdir(os.path.join(os.path.realpath(root), 'shared', 'storage', 'logs'))
    assert os.path.join(root, 'shared', 'storage', 'logs') in outcome['created']


def test_setgid_writable_dir_refusal_names_the_path(tmp_path, platform, deploy_user_not_in_group):
    release = tmp_path / 'releases' / 'r1'
    release.mkdir(parents=True)
    with pytest.raises(_fs.FsError) as info:
        _shared.ensure_writable(release=str(release), paths=['storage/cache'], mode=0o2775)
    assert_setgid_explained(str(info.value), str(release / 'storage' / 'cache'))
