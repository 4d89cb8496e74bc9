# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""release state=present with writable_method and shared_seed (issue 19), through the module."""

from __future__ import annotations

import io
import os
import pwd
import stat
import tarfile

import pytest
from ansible_collections.atomic.deploy.plugins.modules import release

WEB = pwd.getpwnam('www-data')


@pytest.fixture
def root(tmp_path) -> str:
    path = tmp_path / 'app'
    (path / '.deploy').mkdir(parents=True, mode=0o750)
    return str(path)


@pytest.fixture
def archive(tmp_path) -> str:
    path = tmp_path / 'app.tar.gz'
    with tarfile.open(path, 'w:gz') as tf:
        for name, content in {'index.php': 'x', 'storage/app/default.txt': 'default\n'}.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(content.encode()))
    return str(path)


def stage_args(root: str, archive: str, **extra) -> dict:
    return {
        'root': root,
        'id': 'v1',
        'source': 'archive',
        'archive': archive,
        'remote_src': True,
        'shared_dirs': ['storage'],
        'writable_dirs': ['var/cache'],
        **extra,
    }


def test_acl_writable_and_seeded_shared_dir(root, archive, run_module):
    args = stage_args(root, archive, shared_seed=['storage'], writable_method='acl', writable_user='www-data')
    result = run_module(release, args, check=True)
    assert result['changed'] is True
    assert not os.path.exists(os.path.join(root, 'shared'))
    result = run_module(release, args)
    cache = os.path.join(root, 'releases', 'v1', 'var', 'cache')
    assert result['links']['writable'] == [os.path.join(root, 'releases', 'v1', 'var'), cache]
    assert result['links']['shared_seeded'] == [os.path.join(root, 'shared', 'storage')]
    with open(os.path.join(root, 'shared', 'storage', 'app', 'default.txt')) as handle:
        assert handle.read() == 'default\n'
    assert os.getxattr(cache, 'system.posix_acl_default')
    assert stat.S_IMODE(os.lstat(cache).st_mode) == 0o2775
    # the shared copy exists now: a complete release staged again seeds nothing and changes nothing
    run_module(release, {'root': root, 'id': 'v1', 'state': 'complete'})
    for check in (True, False):
        result = run_module(release, args, check=check)
        assert result['changed'] is False
        assert result['links']['shared_seeded'] == [] and result['links']['writable'] == []


@pytest.mark.parametrize(
    ('extra', 'message'),
    [
        ({'shared_seed': ['uploads']}, 'shared_seed entry uploads is not in shared_dirs nor in shared_files'),
        ({'writable_method': 'chgrp'}, 'writable_method=chgrp needs writable_group'),
        ({'writable_method': 'acl'}, 'writable_method=acl needs writable_user or writable_group'),
        ({'writable_method': 'chown', 'writable_user': 'no-such-user-x'}, "writable_user 'no-such-user-x'"),
    ],
)
def test_bad_options_fail_before_anything_is_made(root, archive, run_module, extra, message):
    result = run_module(release, stage_args(root, archive, **extra), failed=True)
    assert result['msg'].startswith(message)
    assert os.listdir(root) == ['.deploy']
