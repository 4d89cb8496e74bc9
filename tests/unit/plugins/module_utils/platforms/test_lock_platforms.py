# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_lock.py as on macOS and FreeBSD: a symlinked record (EMLINK on FreeBSD), flock refused (NFS)."""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _lock, _release


@pytest.fixture
def deploy_dir(tmp_path) -> str:
    path = tmp_path / '.deploy'
    path.mkdir()
    return str(path)


def test_symlinked_lock_reads_as_a_symlink_and_steal_clears_it(deploy_dir, tmp_path, platform):
    victim = tmp_path / 'victim'
    victim.write_text('not a lock')
    os.symlink(victim, os.path.join(deploy_dir, 'lock'))
    assert _lock.read(os.path.join(deploy_dir, 'lock'))['reason'] == 'the lock is a symlink'
    with pytest.raises(_lock.LockHeld, match='the lock is a symlink'):
        _lock.acquire(deploy_dir=deploy_dir, token='mine')
    outcome = _lock.acquire(deploy_dir=deploy_dir, token='mine', steal=True)
    assert outcome['changed'] is True and 'stole' in outcome['warning']
    assert not os.path.islink(os.path.join(deploy_dir, 'lock'))
    assert json.loads(open(os.path.join(deploy_dir, 'lock')).read())['token'] == 'mine'
    assert victim.read_text() == 'not a lock'


def test_flock_not_supported_names_the_lock_and_nfs(deploy_dir, flock_unsupported):
    with pytest.raises(_release.ReleaseError) as info:
        _lock.acquire(deploy_dir=deploy_dir, token='mine')
    message = str(info.value)
    assert os.path.join(deploy_dir, 'lock.guard') in message
    assert 'NFS without locking is not supported' in message
    assert message.startswith('cannot lock ')
    assert not os.path.exists(os.path.join(deploy_dir, 'lock'))


def test_flock_without_lock_daemon_is_explained_too(deploy_dir, platform, monkeypatch):
    def refuse(fd, operation):
        raise platform.error('ENOLCK')

    monkeypatch.setattr(_lock.fcntl, 'flock', refuse)
    with pytest.raises(_release.ReleaseError, match='lock.guard: the file system refuses flock'):
        _lock.release(deploy_dir=deploy_dir, token=None)
