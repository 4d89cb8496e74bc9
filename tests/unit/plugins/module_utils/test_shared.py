# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for plugins/module_utils/_shared.py: shared paths, their creation and their links into releases."""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _shared
from ansible_collections.atomic.deploy.plugins.module_utils._release import ReleaseError

NOBODY = pwd.getpwnam('nobody')
NOGROUP = grp.getgrgid(NOBODY.pw_gid)


@pytest.fixture
def root(tmp_path) -> str:
    path = tmp_path / 'app'
    (path / 'releases' / 'r1').mkdir(parents=True)
    return str(path)


def shared_of(root: str) -> str:
    return os.path.join(root, 'shared')


def mode_of(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- normalize_rel_path / parse_mode / resolve_owner -------------------------------------------


@pytest.mark.parametrize(
    ('value', 'expected'),
    [
        ('storage', 'storage'),
        ('public/uploads', 'public/uploads'),
        ('./public//uploads/', 'public/uploads'),
        ('.env', '.env'),
        ('a/./b', 'a/b'),
        ('..hidden', '..hidden'),
    ],
)
def test_normalize_rel_path_accepts(value, expected):
    assert _shared.normalize_rel_path(value, name='shared_dirs') == expected


@pytest.mark.parametrize(
    ('value', 'fragment'),
    [
        ('', 'must be non-empty relative paths'),
        ('   ', 'must be non-empty relative paths'),
        (None, 'must be non-empty relative paths'),
        (3, 'must be non-empty relative paths'),
        ('/etc', 'is absolute'),
        ('../etc', 'contains ".."'),
        ('a/../../etc', 'contains ".."'),
        ('a/..', 'contains ".."'),
        ('.', 'names the release itself'),
        ('./', 'names the release itself'),
        ('a\x00b', 'nul byte'),
    ],
)
def test_normalize_rel_path_rejects(value, fragment):
    with pytest.raises(ReleaseError) as info:
        _shared.normalize_rel_path(value, name='shared_files')
    assert fragment in str(info.value)
    assert str(info.value).startswith('shared_files ')
    assert info.value.details == {'name': 'shared_files'}


@pytest.mark.parametrize(
    ('value', 'expected'), [('2775', 0o2775), ('0755', 0o755), ('750', 0o750), (0o2770, 0o2770), ('0', 0)]
)
def test_parse_mode_accepts(value, expected):
    assert _shared.parse_mode(value, name='shared_mode') == expected


@pytest.mark.parametrize(
    ('value', 'fragment'),
    [
        ('2777', 'world-writable'),
        ('777', 'world-writable'),
        ('0002', 'world-writable'),
        (0o777, 'world-writable'),
        ('u+rwx', 'octal mode'),
        ('', 'octal mode'),
        ('12345', 'octal mode'),
        ('0o755', 'octal mode'),
        ('8', 'octal mode'),
        (0o10000, 'not a file mode'),
        (-8, 'not a file mode'),
    ],
)
def test_parse_mode_rejects(value, fragment):
    with pytest.raises(ReleaseError, match=fragment) as info:
        _shared.parse_mode(value, name='writable_mode')
    assert str(info.value).startswith('writable_mode ')


def test_resolve_owner():
    assert _shared.resolve_owner(owner=None, group=None) == (-1, -1)
    assert _shared.resolve_owner(owner='nobody', group=NOGROUP.gr_name) == (NOBODY.pw_uid, NOBODY.pw_gid)
    assert _shared.resolve_owner(owner='1234', group='5678') == (1234, 5678)
    with pytest.raises(ReleaseError, match="shared_owner 'no-such-user-x' does not exist"):
        _shared.resolve_owner(owner='no-such-user-x', group=None)
    with pytest.raises(ReleaseError, match="shared_group 'no-such-group-x' does not exist"):
        _shared.resolve_owner(owner=None, group='no-such-group-x')


# --- ensure_shared -----------------------------------------------------------------------------


def test_ensure_shared_creates_setgid_dirs_with_group(root):
    shared = shared_of(root)
    old_umask = os.umask(0o077)
    try:
        result = _shared.ensure_shared(
            root=root,
            shared=shared,
            dirs=['storage', 'public/uploads'],
            files=['.env', 'config/app.ini'],
            mode=0o2775,
            gid=NOBODY.pw_gid,
        )
    finally:
        os.umask(old_umask)
    expected_dirs = [
        shared,
        os.path.join(shared, 'storage'),
        os.path.join(shared, 'public'),
        os.path.join(shared, 'public/uploads'),
        os.path.join(shared, 'config'),
    ]
    for path in expected_dirs:
        st = os.lstat(path)
        assert stat.S_ISDIR(st.st_mode), path
        assert stat.S_IMODE(st.st_mode) == 0o2775, path
        assert st.st_gid == NOBODY.pw_gid, path
    for rel in ('.env', 'config/app.ini'):
        path = os.path.join(shared, rel)
        assert os.path.isfile(path) and os.path.getsize(path) == 0
        assert mode_of(path) == 0o660
        assert os.lstat(path).st_gid == NOBODY.pw_gid
    assert sorted(result['created']) == sorted(
        expected_dirs + [os.path.join(shared, '.env'), os.path.join(shared, 'config/app.ini')]
    )
    assert result['fixed'] == []
    assert result['warnings'] == [
        f'shared file {os.path.join(shared, ".env")} did not exist; created it empty',
        f'shared file {os.path.join(shared, "config/app.ini")} did not exist; created it empty',
    ]
    # a second run changes nothing
    again = _shared.ensure_shared(
        root=root,
        shared=shared,
        dirs=['storage', 'public/uploads'],
        files=['.env', 'config/app.ini'],
        mode=0o2775,
        gid=NOBODY.pw_gid,
    )
    assert again == {'created': [], 'fixed': [], 'warnings': []}


def test_shared_file_mode_without_group_write(root):
    _shared.ensure_shared(root=root, shared=shared_of(root), dirs=[], files=['.env'], mode=0o2755)
    assert mode_of(os.path.join(shared_of(root), '.env')) == 0o640


def test_ensure_shared_never_modifies_existing_content(root):
    shared = shared_of(root)
    os.makedirs(os.path.join(shared, 'storage', 'logs'))
    os.chmod(os.path.join(shared, 'storage'), 0o700)
    with open(os.path.join(shared, 'storage', 'logs', 'app.log'), 'w') as handle:
        handle.write('log line\n')
    os.chmod(os.path.join(shared, 'storage', 'logs'), 0o700)
    with open(os.path.join(shared, '.env'), 'w') as handle:
        handle.write('SECRET=1\n')
    os.chmod(os.path.join(shared, '.env'), 0o600)
    result = _shared.ensure_shared(root=root, shared=shared, dirs=['storage'], files=['.env'], mode=0o2775)
    # the listed dir gets its mode; what is inside it, and the existing file, stay as they were
    assert os.path.join(shared, 'storage') in result['fixed']
    assert mode_of(os.path.join(shared, 'storage')) == 0o2775
    assert mode_of(os.path.join(shared, 'storage', 'logs')) == 0o700
    with open(os.path.join(shared, 'storage', 'logs', 'app.log')) as handle:
        assert handle.read() == 'log line\n'
    with open(os.path.join(shared, '.env')) as handle:
        assert handle.read() == 'SECRET=1\n'
    assert mode_of(os.path.join(shared, '.env')) == 0o600
    assert result['warnings'] == []


def test_ensure_shared_check_mode_changes_nothing(root):
    shared = shared_of(root)
    os.makedirs(os.path.join(shared, 'storage'))
    os.chmod(os.path.join(shared, 'storage'), 0o755)
    os.chmod(shared, 0o2775)
    result = _shared.ensure_shared(
        root=root, shared=shared, dirs=['storage', 'cache'], files=['.env'], mode=0o2775, check_mode=True
    )
    assert result['created'] == [os.path.join(shared, 'cache'), os.path.join(shared, '.env')]
    assert result['fixed'] == [os.path.join(shared, 'storage')]
    assert sorted(os.listdir(shared)) == ['storage']
    assert mode_of(os.path.join(shared, 'storage')) == 0o755


@pytest.mark.parametrize(
    ('plant', 'dirs', 'files'),
    [
        ('shared', ['storage'], []),
        ('shared/storage', ['storage'], []),
        ('shared/public', ['public/uploads'], []),
        ('shared/.env', [], ['.env']),
        ('shared/config', [], ['config/app.ini']),
    ],
)
def test_ensure_shared_refuses_symlinks_leading_outside(root, tmp_path, plant, dirs, files):
    outside = tmp_path / 'outside'
    outside.mkdir()
    os.chmod(outside, 0o700)
    (outside / 'canary').write_text('alive')
    link = os.path.join(root, plant)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(str(outside if not plant.endswith('.env') else outside / 'canary'), link)
    with pytest.raises(ReleaseError, match='outside the deploy root') as info:
        _shared.ensure_shared(root=root, shared=shared_of(root), dirs=dirs, files=files, mode=0o2775)
    assert link in str(info.value)
    assert sorted(os.listdir(outside)) == ['canary']
    assert mode_of(str(outside)) == 0o700
    assert (outside / 'canary').read_text() == 'alive'


def test_ensure_shared_allows_external_links_on_request(root, tmp_path):
    outside = tmp_path / 'nfs-uploads'
    outside.mkdir()
    os.chmod(outside, 0o700)
    os.makedirs(shared_of(root))
    os.symlink(str(outside), os.path.join(shared_of(root), 'uploads'))
    result = _shared.ensure_shared(
        root=root, shared=shared_of(root), dirs=['uploads'], files=[], mode=0o2775, allow_external=True
    )
    # the link is left alone: the owner of that place manages it
    assert os.path.join(shared_of(root), 'uploads') not in result['created'] + result['fixed']
    assert mode_of(str(outside)) == 0o700


@pytest.mark.parametrize('allow_external', [False, True])
@pytest.mark.parametrize(('text', 'dirs'), [('../releases', ['public/uploads']), ('../data/uploads', ['uploads'])])
def test_ensure_shared_refuses_links_into_the_root(root, allow_external, text, dirs):
    # shared/public -> ../releases would make the deploy create releases/uploads, writable by the web user
    shared = shared_of(root)
    os.makedirs(os.path.join(root, 'data', 'uploads'))
    os.makedirs(shared)
    link = os.path.join(shared, dirs[0].split('/')[0])
    os.symlink(text, link)
    before = sorted(os.listdir(os.path.join(root, 'releases')))
    with pytest.raises(ReleaseError, match='inside the deploy root') as info:
        _shared.ensure_shared(root=root, shared=shared, dirs=dirs, files=[], mode=0o2775, allow_external=allow_external)
    assert str(info.value).startswith(f'{link} is a symlink to ')
    assert info.value.details == {'path': link}
    assert sorted(os.listdir(os.path.join(root, 'releases'))) == before
    assert os.listdir(os.path.join(root, 'data', 'uploads')) == []


def test_allowed_external_link_is_never_descended_through(root, tmp_path):
    # release_shared_allow_external lets a link stand; it never makes the deploy create or chmod below it
    outside = tmp_path / 'nfs'
    outside.mkdir()
    os.chmod(outside, 0o700)
    os.makedirs(shared_of(root))
    os.symlink(str(outside), os.path.join(shared_of(root), 'storage'))
    result = _shared.ensure_shared(
        root=root,
        shared=shared_of(root),
        dirs=['storage/app', 'storage/cache/views'],
        files=['storage/app.ini'],
        mode=0o2775,
        gid=NOGROUP.gr_gid,
        allow_external=True,
    )
    assert os.listdir(outside) == []
    assert mode_of(str(outside)) == 0o700
    assert os.lstat(outside).st_gid != NOGROUP.gr_gid
    assert result['created'] == []


def test_shared_dir_repair_acts_on_the_directory_it_opened(root, tmp_path, monkeypatch):
    # the chmod-through-a-swapped-symlink race, made deterministic: the web user swaps shared/storage for a
    # link to a root-only file between the deploy's look at it and its mode change
    victim = tmp_path / 'secret'
    victim.write_text('root only')
    os.chmod(victim, 0o600)
    shared = shared_of(root)
    os.makedirs(os.path.join(shared, 'storage'))
    os.chmod(os.path.join(shared, 'storage'), 0o755)
    real = _shared._fs.set_owner_mode
    storage = os.path.join(shared, 'storage')
    inode = os.lstat(storage).st_ino

    def swap_then_change(fd, **kwargs):
        if os.fstat(fd).st_ino == inode and not os.path.islink(storage):
            os.rename(storage, os.path.join(shared, 'moved'))
            os.symlink(str(victim), storage)
        return real(fd, **kwargs)

    monkeypatch.setattr(_shared._fs, 'set_owner_mode', swap_then_change)
    _shared.ensure_shared(root=root, shared=shared, dirs=['storage'], files=[], mode=0o2775, gid=NOGROUP.gr_gid)
    assert mode_of(str(victim)) == 0o600
    assert os.lstat(victim).st_gid != NOGROUP.gr_gid
    assert mode_of(os.path.join(shared, 'moved')) == 0o2775


def test_strict_missing_file_fails_naming_it(root):
    shared = shared_of(root)
    with pytest.raises(ReleaseError, match='shared_strict') as info:
        _shared.ensure_shared(root=root, shared=shared, dirs=[], files=['.env'], mode=0o2775, strict=True)
    assert os.path.join(shared, '.env') in str(info.value)
    assert not os.path.lexists(os.path.join(shared, '.env'))


def test_shared_file_that_is_a_directory(root):
    os.makedirs(os.path.join(shared_of(root), '.env'))
    with pytest.raises(ReleaseError, match='is a directory; list it in shared_dirs'):
        _shared.ensure_shared(root=root, shared=shared_of(root), dirs=[], files=['.env'], mode=0o2775)


def test_shared_dir_that_is_a_file(root):
    os.makedirs(shared_of(root))
    with open(os.path.join(shared_of(root), 'storage'), 'w'):
        pass
    with pytest.raises(ReleaseError, match='exists and is not a directory') as info:
        _shared.ensure_shared(root=root, shared=shared_of(root), dirs=['storage'], files=[], mode=0o2775)
    assert os.path.join(shared_of(root), 'storage') in str(info.value)


# --- link_into_release -------------------------------------------------------------------------


@pytest.mark.parametrize('style', ['relative', 'absolute'])
def test_link_text_resolves_to_the_shared_path(root, style):
    shared = shared_of(root)
    release = os.path.join(root, 'releases', 'r1')
    _shared.ensure_shared(root=root, shared=shared, dirs=['storage', 'public/uploads'], files=['.env'], mode=0o2775)
    result = _shared.link_into_release(
        release=release, shared=shared, paths=['storage', 'public/uploads', '.env'], style=style
    )
    assert result['parents'] == [os.path.join(release, 'public')]
    assert result['replaced'] == []
    for rel in ('storage', 'public/uploads', '.env'):
        link = os.path.join(release, rel)
        text = os.readlink(link)
        assert os.path.isabs(text) is (style == 'absolute')
        if style == 'relative':
            assert not text.startswith('/') and '..' in text
        assert os.path.realpath(link) == os.path.realpath(os.path.join(shared, rel))
    assert os.readlink(os.path.join(release, 'public/uploads')) == (
        '../../../shared/public/uploads' if style == 'relative' else os.path.join(shared, 'public/uploads')
    )
    # idempotent
    again = _shared.link_into_release(
        release=release, shared=shared, paths=['storage', 'public/uploads', '.env'], style=style
    )
    assert again == {'linked': [], 'replaced': [], 'parents': []}


def test_relative_links_survive_moving_the_root(root, tmp_path):
    shared = shared_of(root)
    release = os.path.join(root, 'releases', 'r1')
    _shared.ensure_shared(root=root, shared=shared, dirs=['storage'], files=[], mode=0o2775)
    _shared.link_into_release(release=release, shared=shared, paths=['storage'])
    with open(os.path.join(shared, 'storage', 'marker'), 'w') as handle:
        handle.write('here')
    moved = tmp_path / 'moved'
    os.rename(root, moved)
    with open(moved / 'releases' / 'r1' / 'storage' / 'marker') as handle:
        assert handle.read() == 'here'


def test_link_replaces_a_build_created_dir(root):
    shared = shared_of(root)
    release = os.path.join(root, 'releases', 'r1')
    _shared.ensure_shared(root=root, shared=shared, dirs=['storage'], files=['.env'], mode=0o2775)
    # the build shipped storage/ with placeholder content and a .env placeholder file
    os.makedirs(os.path.join(release, 'storage', 'framework', 'cache'))
    with open(os.path.join(release, 'storage', 'framework', 'cache', '.gitkeep'), 'w'):
        pass
    with open(os.path.join(release, '.env'), 'w') as handle:
        handle.write('placeholder')
    result = _shared.link_into_release(release=release, shared=shared, paths=['storage', '.env'])
    assert sorted(result['replaced']) == sorted([os.path.join(release, 'storage'), os.path.join(release, '.env')])
    assert os.path.islink(os.path.join(release, 'storage'))
    assert os.path.islink(os.path.join(release, '.env'))
    # shared/ itself untouched by the replacement
    assert os.listdir(os.path.join(shared, 'storage')) == []


def test_link_replaces_a_stale_link(root):
    shared = shared_of(root)
    release = os.path.join(root, 'releases', 'r1')
    os.symlink('/somewhere/else', os.path.join(release, 'storage'))
    _shared.ensure_shared(root=root, shared=shared, dirs=['storage'], files=[], mode=0o2775)
    result = _shared.link_into_release(release=release, shared=shared, paths=['storage'])
    assert result['replaced'] == [os.path.join(release, 'storage')]
    assert os.readlink(os.path.join(release, 'storage')) == '../../shared/storage'


def test_link_replacing_a_dir_with_a_planted_link_deletes_nothing_outside(root, tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'canary').write_text('alive')
    shared = shared_of(root)
    release = os.path.join(root, 'releases', 'r1')
    os.makedirs(os.path.join(release, 'storage'))
    os.symlink(str(outside), os.path.join(release, 'storage', 'evil'))
    os.symlink('/', os.path.join(release, 'storage', 'root'))
    _shared.ensure_shared(root=root, shared=shared, dirs=['storage'], files=[], mode=0o2775)
    _shared.link_into_release(release=release, shared=shared, paths=['storage'])
    assert (outside / 'canary').read_text() == 'alive'


def test_link_creates_missing_parents(root):
    shared = shared_of(root)
    release = os.path.join(root, 'releases', 'r1')
    _shared.ensure_shared(root=root, shared=shared, dirs=['a/b/c'], files=[], mode=0o2775)
    result = _shared.link_into_release(release=release, shared=shared, paths=['a/b/c'])
    assert result['parents'] == [os.path.join(release, 'a'), os.path.join(release, 'a/b')]
    assert os.path.isdir(os.path.join(release, 'a/b')) and not os.path.islink(os.path.join(release, 'a/b'))
    assert os.path.realpath(os.path.join(release, 'a/b/c')) == os.path.realpath(os.path.join(shared, 'a/b/c'))


def test_link_refuses_a_symlinked_parent(root, tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    shared = shared_of(root)
    release = os.path.join(root, 'releases', 'r1')
    os.symlink(str(outside), os.path.join(release, 'public'))
    _shared.ensure_shared(root=root, shared=shared, dirs=['public/uploads'], files=[], mode=0o2775)
    with pytest.raises(ReleaseError, match='is a symlink') as info:
        _shared.link_into_release(release=release, shared=shared, paths=['public/uploads'])
    assert os.path.join(release, 'public') in str(info.value)
    assert os.listdir(outside) == []


def test_link_refuses_a_file_parent(root):
    shared = shared_of(root)
    release = os.path.join(root, 'releases', 'r1')
    with open(os.path.join(release, 'public'), 'w'):
        pass
    with pytest.raises(ReleaseError, match='is not a directory') as info:
        _shared.link_into_release(release=release, shared=shared, paths=['public/uploads'])
    assert os.path.join(release, 'public') in str(info.value)


def test_link_check_mode_changes_nothing(root):
    shared = shared_of(root)
    release = os.path.join(root, 'releases', 'r1')
    os.makedirs(os.path.join(release, 'storage'))
    result = _shared.link_into_release(release=release, shared=shared, paths=['storage', 'x/y'], check_mode=True)
    assert result == {
        'linked': [os.path.join(release, 'storage'), os.path.join(release, 'x/y')],
        'replaced': [os.path.join(release, 'storage')],
        'parents': [os.path.join(release, 'x')],
    }
    assert sorted(os.listdir(release)) == ['storage']
    assert not os.path.islink(os.path.join(release, 'storage'))


# --- ensure_writable ---------------------------------------------------------------------------


def test_ensure_writable(root):
    release = os.path.join(root, 'releases', 'r1')
    os.makedirs(os.path.join(release, 'var'))
    os.chmod(os.path.join(release, 'var'), 0o755)
    assert _shared.ensure_writable(release=release, paths=['var/cache'], mode=0o2775, check_mode=True) == [
        os.path.join(release, 'var/cache')
    ]
    assert not os.path.exists(os.path.join(release, 'var/cache'))
    changed = _shared.ensure_writable(release=release, paths=['var/cache', 'tmp/sessions'], mode=0o2775)
    assert changed == [
        os.path.join(release, 'var/cache'),
        os.path.join(release, 'tmp'),
        os.path.join(release, 'tmp/sessions'),
    ]
    assert mode_of(os.path.join(release, 'var/cache')) == 0o2775
    assert mode_of(os.path.join(release, 'var')) == 0o755
    assert _shared.ensure_writable(release=release, paths=['var/cache', 'tmp/sessions'], mode=0o2775) == []


def test_ensure_writable_refuses_symlinks(root, tmp_path):
    release = os.path.join(root, 'releases', 'r1')
    outside = tmp_path / 'outside'
    outside.mkdir()
    os.chmod(outside, 0o700)
    os.symlink(str(outside), os.path.join(release, 'var'))
    with pytest.raises(ReleaseError, match='is a symlink') as info:
        _shared.ensure_writable(release=release, paths=['var/cache'], mode=0o2775)
    assert os.path.join(release, 'var') in str(info.value)
    assert os.listdir(outside) == [] and mode_of(str(outside)) == 0o700


def swap_after_open(monkeypatch, *, name: str, outside) -> list[str]:
    """Once open_dir has opened ``name``, replace that directory by a symlink to ``outside`` (a web user racing
    the deploy); what follows must still happen in the directory that was opened."""
    real_open_dir = _shared._fs.open_dir
    swapped: list[str] = []

    def open_then_swap(entry, *, dir_fd=None, path=None):
        fd = real_open_dir(entry, dir_fd=dir_fd, path=path)
        if entry == name and not swapped:
            os.rename(path, path + '.moved')
            os.symlink(str(outside), path)
            swapped.append(path)
        return fd

    monkeypatch.setattr(_shared._fs, 'open_dir', open_then_swap)
    return swapped


def test_link_lands_in_the_parent_it_opened_when_the_parent_is_swapped(root, tmp_path, monkeypatch):
    outside = tmp_path / 'outside'
    outside.mkdir()
    shared = shared_of(root)
    release = os.path.join(root, 'releases', 'r1')
    os.makedirs(os.path.join(release, 'public'))
    _shared.ensure_shared(root=root, shared=shared, dirs=['public/uploads'], files=[], mode=0o2775)
    swapped = swap_after_open(monkeypatch, name='public', outside=outside)
    _shared.link_into_release(release=release, shared=shared, paths=['public/uploads'])
    assert swapped == [os.path.join(release, 'public')]
    assert os.listdir(outside) == []
    assert os.path.islink(os.path.join(release, 'public.moved', 'uploads'))


def test_writable_dir_mode_lands_on_the_directory_it_opened(root, tmp_path, monkeypatch):
    outside = tmp_path / 'outside'
    outside.mkdir()
    os.chmod(outside, 0o700)
    release = os.path.join(root, 'releases', 'r1')
    os.makedirs(os.path.join(release, 'var', 'cache'))
    os.chmod(os.path.join(release, 'var', 'cache'), 0o755)
    swap_after_open(monkeypatch, name='cache', outside=outside)
    _shared.ensure_writable(release=release, paths=['var/cache'], mode=0o2775)
    assert mode_of(str(outside)) == 0o700
    assert mode_of(os.path.join(release, 'var', 'cache.moved')) == 0o2775


def test_writable_dirs_get_their_exact_mode_despite_the_umask(root):
    release = os.path.join(root, 'releases', 'r1')
    old = os.umask(0o077)
    try:
        _shared.ensure_writable(release=release, paths=['a/b'], mode=0o2775)
    finally:
        os.umask(old)
    assert mode_of(os.path.join(release, 'a')) == 0o755
    assert mode_of(os.path.join(release, 'a', 'b')) == 0o2775


def test_a_link_swapped_while_it_is_examined_is_refused_clearly(root, tmp_path, monkeypatch):
    # realpath's lstat saw a link, its readlink found a directory: EINVAL, which must not reach the user bare
    os.makedirs(shared_of(root))
    link = os.path.join(shared_of(root), 'storage')
    os.symlink(str(tmp_path), link)

    real_realpath = os.path.realpath

    def swapped(path):
        if path == link:
            raise OSError(errno.EINVAL, 'invalid argument')
        return real_realpath(path)

    monkeypatch.setattr(_shared.os.path, 'realpath', swapped)
    with pytest.raises(ReleaseError, match='changed while it was being examined') as info:
        _shared.ensure_shared(root=root, shared=shared_of(root), dirs=['storage'], files=[], mode=0o2775)
    assert info.value.details == {'path': link}
