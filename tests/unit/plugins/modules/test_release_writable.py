# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module-level tests for release_writable."""

from __future__ import annotations

import grp
import os
import pwd
import stat

from ansible_collections.atomic.deploy.plugins.module_utils import _lock
from ansible_collections.atomic.deploy.plugins.modules import release_writable

WEB = pwd.getpwnam('www-data')
WEB_GROUP = grp.getgrnam('www-data')


def test_chown_check_real_idempotent(tmp_path, run_module, build_root, snapshot):
    root = str(tmp_path / 'app')
    build_root(root, [('r1', 'complete')], current='r1')
    release = os.path.join(root, 'releases', 'r1')
    args = {
        'root': root,
        'id': 'r1',
        'writable_dirs': ['var/cache'],
        'writable_method': 'chown',
        'writable_user': 'www-data',
        'writable_group': 'www-data',
    }
    before = snapshot(root)
    result = run_module(release_writable, args, check=True)
    assert result['changed'] is True
    assert result['writable'] == [os.path.join(release, 'var'), os.path.join(release, 'var/cache')]
    assert snapshot(root) == before
    result = run_module(release_writable, args)
    assert result['changed'] is True and result['release_path'] == release
    cache = os.path.join(release, 'var/cache')
    assert result['diff']['after'][cache]['owner'] == WEB.pw_uid
    st = os.lstat(cache)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (WEB.pw_uid, WEB_GROUP.gr_gid, 0o2775)
    assert _lock.read(os.path.join(root, '.deploy', 'lock')) is None
    for check in (True, False):
        result = run_module(release_writable, args, check=check)
        assert result['changed'] is False and result['writable'] == []


def test_bad_options_name_the_variable(tmp_path, run_module, build_root):
    root = str(tmp_path / 'app')
    build_root(root, [('r1', 'complete')], current='r1')
    result = run_module(
        release_writable, {'root': root, 'id': 'r1', 'writable_dirs': ['c'], 'writable_method': 'chgrp'}, failed=True
    )
    assert result['msg'] == 'writable_method=chgrp needs writable_group'
    result = run_module(release_writable, {'root': root, 'id': 'r1', 'writable_dirs': ['../x']}, failed=True)
    assert result['msg'].startswith('writable_dirs entry ../x contains ".."')


def test_refuses_a_release_another_user_made(tmp_path, run_module, build_root):
    root = str(tmp_path / 'app')
    build_root(root, [('r1', 'complete')], current='r1')
    release = os.path.join(root, 'releases', 'r1')
    os.chown(release, WEB.pw_uid, -1)
    result = run_module(release_writable, {'root': root, 'id': 'r1', 'writable_dirs': ['cache']}, failed=True)
    assert result['msg'].startswith(f'{release} is owned by uid {WEB.pw_uid} or writable by others')
    assert not os.path.exists(os.path.join(release, 'cache'))


def test_a_symlink_planted_on_the_way_changes_nothing_outside(tmp_path, run_module, build_root):
    root = str(tmp_path / 'app')
    build_root(root, [('r1', 'complete')], current='r1')
    victim = tmp_path / 'victim'
    victim.mkdir()
    os.chmod(victim, 0o700)
    os.symlink(str(victim), os.path.join(root, 'releases', 'r1', 'var'))
    args = {
        'root': root,
        'id': 'r1',
        'writable_dirs': ['var/cache'],
        'writable_method': 'chown',
        'writable_user': 'www-data',
    }
    result = run_module(release_writable, args, failed=True)
    assert 'is a symlink' in result['msg'] and os.path.join(root, 'releases', 'r1', 'var') in result['msg']
    assert os.listdir(victim) == []
    st = os.lstat(victim)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700)
