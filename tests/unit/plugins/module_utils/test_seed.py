# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for shared_seed (_seed.py through _shared.ensure_shared) and writable methods (_shared.ensure_writable)."""

from __future__ import annotations

import grp
import os
import pwd
import stat

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _perm, _shared
from ansible_collections.atomic.deploy.plugins.module_utils._release import ReleaseError

WEB = pwd.getpwnam('www-data')
WEB_GROUP = grp.getgrnam('www-data')


@pytest.fixture
def root(tmp_path):
    path = tmp_path / 'app'
    release = path / 'releases' / 'r1'
    (release / 'storage' / 'framework' / 'views').mkdir(parents=True)
    (release / 'storage' / 'framework' / '.gitignore').write_text('*\n')
    (release / 'storage' / 'default.png').write_bytes(b'png' * 1000)
    os.chmod(release / 'storage' / 'default.png', 0o666)
    (release / 'config').mkdir()
    (release / 'config' / 'app.ini').write_text('debug = false\n')
    return path


def seed(root, *, dirs=('storage',), files=(), check_mode=False, gid=-1):
    return _shared.ensure_shared(
        root=str(root),
        shared=str(root / 'shared'),
        dirs=list(dirs),
        files=list(files),
        mode=0o2775,
        gid=gid,
        seed=list(dirs) + list(files),
        release=str(root / 'releases' / 'r1'),
        check_mode=check_mode,
    )


def tree(path) -> dict:
    found = {}
    for directory, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(directory, name)
            st = os.lstat(full)
            content = None if stat.S_ISDIR(st.st_mode) else open(full, 'rb').read()
            found[os.path.relpath(full, path)] = (stat.S_IMODE(st.st_mode), st.st_gid, content)
    return found


def test_a_missing_shared_dir_starts_as_a_copy_of_the_release(root):
    shared = root / 'shared'
    planned = seed(root, check_mode=True, gid=WEB_GROUP.gr_gid)
    assert planned['seeded'] == [str(shared / 'storage')]
    assert not shared.exists()
    result = seed(root, gid=WEB_GROUP.gr_gid)
    assert result['seeded'] == [str(shared / 'storage')]
    assert str(shared / 'storage') in result['created']
    assert tree(shared / 'storage') == {
        'framework': (0o2775, WEB_GROUP.gr_gid, None),
        'framework/views': (0o2775, WEB_GROUP.gr_gid, None),
        'framework/.gitignore': (0o644, WEB_GROUP.gr_gid, b'*\n'),
        # group write kept, write for others dropped
        'default.png': (0o664, WEB_GROUP.gr_gid, b'png' * 1000),
    }
    # a copy: the release keeps its content, and nothing temporary is left beside it
    assert (root / 'releases' / 'r1' / 'storage' / 'default.png').read_bytes() == b'png' * 1000
    assert sorted(os.listdir(shared)) == ['storage']


def test_an_existing_shared_path_is_never_written(root):
    shared = root / 'shared'
    (shared / 'storage').mkdir(parents=True)
    (shared / 'storage' / 'default.png').write_bytes(b'the users own')
    (shared / 'config').mkdir()
    (shared / 'config' / 'app.ini').write_text('debug = true\n')
    result = seed(root, files=['config/app.ini'])
    assert result['seeded'] == []
    assert os.listdir(shared / 'storage') == ['default.png']
    assert (shared / 'storage' / 'default.png').read_bytes() == b'the users own'
    assert (shared / 'config' / 'app.ini').read_text() == 'debug = true\n'


def test_a_missing_shared_file_is_seeded_and_not_reported_empty(root):
    result = seed(root, dirs=(), files=['config/app.ini'])
    assert result['seeded'] == [str(root / 'shared' / 'config' / 'app.ini')]
    assert result['warnings'] == []
    assert (root / 'shared' / 'config' / 'app.ini').read_text() == 'debug = false\n'


def test_a_path_the_release_lacks_starts_empty_as_before(root):
    result = seed(root, dirs=['uploads'], files=['.env'])
    assert result['seeded'] == []
    assert os.listdir(root / 'shared' / 'uploads') == []
    assert (root / 'shared' / '.env').read_bytes() == b''
    assert result['warnings'] == [f'shared file {root / "shared" / ".env"} did not exist; created it empty']


def test_without_seed_a_shared_dir_starts_empty(root):
    result = _shared.ensure_shared(root=str(root), shared=str(root / 'shared'), dirs=['storage'], files=[], mode=0o2775)
    assert 'seeded' not in result
    assert os.listdir(root / 'shared' / 'storage') == []


def test_symlinks_in_the_release_content_are_never_followed_nor_copied(root, tmp_path):
    secret = tmp_path / 'secret'
    secret.mkdir()
    (secret / 'key').write_text('root only')
    os.chmod(secret / 'key', 0o600)
    storage = root / 'releases' / 'r1' / 'storage'
    os.symlink(secret, storage / 'linked-dir')
    os.symlink(secret / 'key', storage / 'linked-file')
    result = seed(root)
    copied = tree(root / 'shared' / 'storage')
    assert 'linked-dir' not in copied and 'linked-file' not in copied
    assert not any('root only' in str(value[2]) for value in copied.values())
    assert result['warnings'] == [
        f'seeding {root / "shared" / "storage"}: {storage / "linked-dir"} in the release is a symlink; not copied',
        f'seeding {root / "shared" / "storage"}: {storage / "linked-file"} in the release is a symlink; not copied',
    ]


def test_a_release_path_that_is_a_symlink_is_not_seeded(root, tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'passwd').write_text('x')
    os.symlink(outside, root / 'releases' / 'r1' / 'uploads')
    result = seed(root, dirs=['uploads'])
    assert result['seeded'] == []
    assert os.listdir(root / 'shared' / 'uploads') == []
    assert 'is a symlink' in result['warnings'][0]


# --- ensure_writable with a method ----------------------------------------------------------------


def test_writable_chgrp_through_the_walk(root):
    release = root / 'releases' / 'r1'
    grant = _perm.make_grant(method='chgrp', mode=0o2775, group='www-data')
    diff: list = []
    assert _shared.ensure_writable(
        release=str(release), paths=['var/cache'], mode=0o2775, grant=grant, check_mode=True
    ) == [str(release / 'var'), str(release / 'var/cache')]
    assert not (release / 'var').exists()
    changed = _shared.ensure_writable(release=str(release), paths=['var/cache'], mode=0o2775, grant=grant, diff=diff)
    assert changed == [str(release / 'var'), str(release / 'var/cache')]
    st = os.lstat(release / 'var/cache')
    assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (WEB_GROUP.gr_gid, 0o2775)
    assert os.lstat(release / 'var').st_gid != WEB_GROUP.gr_gid  # only the writable dir itself
    assert diff[0]['path'] == str(release / 'var/cache') and diff[0]['after']['group'] == WEB_GROUP.gr_gid
    assert _shared.ensure_writable(release=str(release), paths=['var/cache'], mode=0o2775, grant=grant) == []


def test_writable_acl_error_names_the_path(root, monkeypatch):
    release = root / 'releases' / 'r1'
    (release / 'cache').mkdir()
    monkeypatch.delattr(os, 'setxattr')
    grant = _perm.Grant(method='acl', mode=0o2775, uid=WEB.pw_uid)
    with pytest.raises(ReleaseError) as info:
        _shared.ensure_writable(release=str(release), paths=['cache'], mode=0o2775, grant=grant)
    assert str(info.value).startswith(f'{release / "cache"}: writable_method=acl needs Linux POSIX ACLs')


@pytest.mark.parametrize('method', ['chmod', 'chgrp', 'chown', 'acl'])
def test_writable_dir_swapped_for_a_symlink_changes_nothing_outside(root, tmp_path, method):
    victim = tmp_path / 'victim'
    victim.mkdir()
    os.chmod(victim, 0o700)
    release = root / 'releases' / 'r1'
    (release / 'var').mkdir()
    os.symlink(victim, release / 'var' / 'cache')
    grant = _perm.make_grant(
        method=method,
        mode=0o2775,
        user='www-data' if method in ('chown', 'acl') else None,
        group='www-data' if method == 'chgrp' else None,
    )
    with pytest.raises(ReleaseError, match='is a symlink'):
        _shared.ensure_writable(release=str(release), paths=['var/cache'], mode=0o2775, grant=grant)
    st = os.lstat(victim)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o700, 0, 0)
    assert os.listxattr(victim) == []
