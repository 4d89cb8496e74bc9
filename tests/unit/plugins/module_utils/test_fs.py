# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for plugins/module_utils/_fs.py: swaps, adoption, atomic writes, directories, deletion."""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _fs
from ansible_collections.atomic.deploy.tests.support.users import run_as

NOBODY = pwd.getpwnam('nobody')


def temp_entries(directory) -> list[str]:
    """Names in ``directory`` that look like a temp or backup link of this module."""
    return sorted(name for name in os.listdir(directory) if '.tmp-' in name or '.backup-' in name)


def make_releases(tmp_path) -> tuple[str, str, str]:
    for name in ('a', 'b'):
        (tmp_path / 'releases' / name).mkdir(parents=True)
        (tmp_path / 'releases' / name / 'version').write_text(name)
    return str(tmp_path / 'current'), 'releases/a', 'releases/b'


# --- swap_symlink / stage_symlink / commit_symlink ---------------------------------------------


def test_swap_symlink_creates_and_replaces(tmp_path):
    link, first, second = make_releases(tmp_path)
    _fs.swap_symlink(path=link, target=first)
    assert os.readlink(link) == first
    assert (tmp_path / 'current' / 'version').read_text() == 'a'
    _fs.swap_symlink(path=link, target=second, fsync=False)
    assert os.readlink(link) == second
    assert (tmp_path / 'current' / 'version').read_text() == 'b'
    assert temp_entries(tmp_path) == []


def test_swap_symlink_keeps_link_text_exactly(tmp_path):
    link = str(tmp_path / 'current')
    # a dangling, oddly spelled target: the text is written as given, not normalised
    _fs.swap_symlink(path=link, target='./releases//x/../y')
    assert os.readlink(link) == './releases//x/../y'


def test_stage_then_commit(tmp_path):
    link, first, second = make_releases(tmp_path)
    _fs.swap_symlink(path=link, target=first)
    tmp = _fs.stage_symlink(path=link, target=second)
    # staged: the temp link sits next to current, current is untouched
    assert os.path.dirname(tmp) == str(tmp_path)
    assert os.path.basename(tmp).startswith('.current.tmp-')
    assert os.readlink(tmp) == second
    assert os.readlink(link) == first
    _fs.commit_symlink(tmp=tmp, path=link)
    assert os.readlink(link) == second
    assert not os.path.lexists(tmp)


def test_stage_names_are_unique(tmp_path):
    link = str(tmp_path / 'current')
    staged = {_fs.stage_symlink(path=link, target='x') for _n in range(50)}
    assert len(staged) == 50


def test_commit_failure_removes_temp_link_and_keeps_current(tmp_path, monkeypatch):
    link, first, second = make_releases(tmp_path)
    _fs.swap_symlink(path=link, target=first)
    tmp = _fs.stage_symlink(path=link, target=second)

    def broken_replace(src, dst):
        raise OSError(errno.EIO, 'injected failure', dst)

    monkeypatch.setattr(_fs.os, 'replace', broken_replace)
    with pytest.raises(OSError, match='injected failure'):
        _fs.commit_symlink(tmp=tmp, path=link)
    assert not os.path.lexists(tmp)
    assert os.readlink(link) == first
    assert temp_entries(tmp_path) == []


def test_swap_failure_leaves_no_temp_link(tmp_path, monkeypatch):
    link, first, second = make_releases(tmp_path)
    _fs.swap_symlink(path=link, target=first)

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(_fs.os, 'replace', interrupted)
    with pytest.raises(KeyboardInterrupt):
        _fs.swap_symlink(path=link, target=second)
    assert temp_entries(tmp_path) == []
    assert os.readlink(link) == first


def test_swap_over_directory_fails_and_cleans_up(tmp_path):
    # os.replace of a link over a non-empty directory fails: the directory stays, the temp link goes
    (tmp_path / 'current').mkdir()
    (tmp_path / 'current' / 'keep').write_text('x')
    with pytest.raises(OSError):
        _fs.swap_symlink(path=str(tmp_path / 'current'), target='elsewhere')
    assert (tmp_path / 'current' / 'keep').read_text() == 'x'
    assert temp_entries(tmp_path) == []


def test_make_temp_link_gives_up_naming_the_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(_fs, 'temp_path', lambda *, directory, prefix: os.path.join(directory, 'always-the-same'))
    (tmp_path / 'always-the-same').symlink_to('x')
    with pytest.raises(_fs.FsError) as info:
        _fs.stage_symlink(path=str(tmp_path / 'current'), target='y')
    assert str(tmp_path) in str(info.value)
    assert info.value.path == str(tmp_path)


def test_read_link(tmp_path):
    (tmp_path / 'link').symlink_to('some/where')
    (tmp_path / 'file').write_text('')
    assert _fs.read_link(str(tmp_path / 'link')) == 'some/where'
    assert _fs.read_link(str(tmp_path / 'file')) is None
    assert _fs.read_link(str(tmp_path / 'missing')) is None
    assert _fs.read_link(str(tmp_path / 'file' / 'below')) is None


@pytest.mark.parametrize(
    ('link', 'text', 'expected'),
    [
        ('/srv/app/current', 'releases/1', '/srv/app/releases/1'),
        ('/srv/app/current', '/srv/app/releases/1', '/srv/app/releases/1'),
        ('/srv/app/current', '../other/releases/1', '/srv/other/releases/1'),
        ('/srv/app/current', './releases//1/', '/srv/app/releases/1'),
    ],
)
def test_resolve_link_target(link, text, expected):
    assert _fs.resolve_link_target(link=link, text=text) == expected


@pytest.mark.parametrize(
    ('root', 'path', 'inside'),
    [
        ('/srv/app', '/srv/app', True),
        ('/srv/app', '/srv/app/shared/x', True),
        ('/srv/app/', '/srv/app/x', True),
        ('/srv/app', '/srv/application', False),
        ('/srv/app', '/srv/app/../etc', False),
        ('/srv/app', '/', False),
    ],
)
def test_is_within(root, path, inside):
    assert _fs.is_within(root=root, path=path) is inside


# --- adopt_directory / exchange ----------------------------------------------------------------


def test_adopt_directory_exchanges_with_renameat2(tmp_path):
    link, first, _second = make_releases(tmp_path)
    old = tmp_path / 'current'
    old.mkdir()
    (old / 'index.html').write_text('old in-place deploy')
    backup = _fs.adopt_directory(path=link, target=first)
    assert os.readlink(link) == first
    assert os.path.dirname(backup) == str(tmp_path)
    assert os.path.basename(backup).startswith('.current.backup-')
    assert not os.path.islink(backup)
    assert (tmp_path / os.path.basename(backup) / 'index.html').read_text() == 'old in-place deploy'
    # the only temp-looking entry left is the backup itself
    assert temp_entries(tmp_path) == [os.path.basename(backup)]


def test_adopt_directory_without_renameat2_changes_nothing(tmp_path, monkeypatch):
    link, first, _second = make_releases(tmp_path)
    (tmp_path / 'current').mkdir()
    (tmp_path / 'current' / 'index.html').write_text('old')
    monkeypatch.setattr(_fs, '_exchange_call', lambda: None)
    assert _fs.exchange_supported() is False
    with pytest.raises(_fs.FsError, match='renameat2') as info:
        _fs.adopt_directory(path=link, target=first)
    assert info.value.path == link
    assert not os.path.islink(link)
    assert (tmp_path / 'current' / 'index.html').read_text() == 'old'
    assert temp_entries(tmp_path) == []


def test_exchange_unsupported_filesystem_is_an_fserror(tmp_path, monkeypatch):
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()

    def fake_renameat2(*_args):
        return -1

    monkeypatch.setattr(_fs, '_exchange_call', lambda: (fake_renameat2, 2, -100, 'renameat2(RENAME_EXCHANGE)'))
    monkeypatch.setattr(_fs.ctypes, 'get_errno', lambda: errno.EINVAL)
    with pytest.raises(_fs.FsError, match='does not support renameat2') as info:
        _fs.exchange(first=str(tmp_path / 'a'), second=str(tmp_path / 'b'))
    assert str(tmp_path / 'b') in str(info.value)


def test_exchange_other_errors_are_oserrors(tmp_path):
    # the real call with a missing first path: ENOENT, reported with the path
    (tmp_path / 'b').mkdir()
    with pytest.raises(OSError) as info:
        _fs.exchange(first=str(tmp_path / 'missing'), second=str(tmp_path / 'b'))
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == str(tmp_path / 'b')


def test_exchange_is_real_on_this_kernel(tmp_path):
    assert _fs.exchange_supported()
    (tmp_path / 'a').write_text('A')
    (tmp_path / 'b').write_text('B')
    _fs.exchange(first=str(tmp_path / 'a'), second=str(tmp_path / 'b'))
    assert (tmp_path / 'a').read_text() == 'B'
    assert (tmp_path / 'b').read_text() == 'A'


# --- atomic_write / append_line ----------------------------------------------------------------


def test_atomic_write_content_mode_and_no_temp(tmp_path):
    target = tmp_path / 'meta.json'
    old_umask = os.umask(0o077)
    try:
        _fs.atomic_write(path=str(target), data=b'first', mode=0o644)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b'first'
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    _fs.atomic_write(path=str(target), data=b'second' * 100000, mode=0o640, fsync=False)
    assert target.read_bytes() == b'second' * 100000
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert temp_entries(tmp_path) == []


def test_atomic_write_failure_keeps_old_content_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / 'meta.json'
    target.write_bytes(b'old')

    def broken_fsync(fd):
        raise OSError(errno.ENOSPC, 'no space left on device')

    monkeypatch.setattr(_fs.os, 'fsync', broken_fsync)
    with pytest.raises(OSError, match='no space'):
        _fs.atomic_write(path=str(target), data=b'new')
    assert target.read_bytes() == b'old'
    assert temp_entries(tmp_path) == []


def test_atomic_write_replaces_a_symlink_instead_of_following_it(tmp_path):
    victim = tmp_path / 'victim'
    victim.write_bytes(b'untouched')
    (tmp_path / 'meta.json').symlink_to(victim)
    _fs.atomic_write(path=str(tmp_path / 'meta.json'), data=b'new')
    assert victim.read_bytes() == b'untouched'
    assert not (tmp_path / 'meta.json').is_symlink()
    assert (tmp_path / 'meta.json').read_bytes() == b'new'


def test_append_line_adds_newlines(tmp_path):
    path = str(tmp_path / 'history.jsonl')
    _fs.append_line(path=path, line=b'one')
    _fs.append_line(path=path, line=b'two\n', fsync=False)
    assert (tmp_path / 'history.jsonl').read_bytes() == b'one\ntwo\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_append_line_after_torn_line_starts_a_fresh_line(tmp_path):
    path = tmp_path / 'history.jsonl'
    path.write_bytes(b'{"a":1}\n{"b":')
    _fs.append_line(path=str(path), line=b'{"c":3}')
    assert path.read_bytes().split(b'\n') == [b'{"a":1}', b'{"b":', b'{"c":3}', b'']


def test_append_line_refuses_a_symlink(tmp_path):
    victim = tmp_path / 'victim'
    victim.write_bytes(b'')
    (tmp_path / 'history.jsonl').symlink_to(victim)
    with pytest.raises(OSError) as info:
        _fs.append_line(path=str(tmp_path / 'history.jsonl'), line=b'x')
    assert info.value.errno == errno.ELOOP
    assert victim.read_bytes() == b''


# --- ensure_dir --------------------------------------------------------------------------------


def test_ensure_dir_creates_with_setgid_mode_despite_umask(tmp_path):
    path = str(tmp_path / 'shared')
    old_umask = os.umask(0o077)
    try:
        assert _fs.ensure_dir(path=path, mode=0o2775) is True
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o2775
    assert _fs.ensure_dir(path=path, mode=0o2775) is False


def test_ensure_dir_fixes_mode_and_group(tmp_path):
    path = tmp_path / 'shared'
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    assert _fs.ensure_dir(path=str(path), mode=0o2770, gid=NOBODY.pw_gid) is True
    st = os.lstat(path)
    assert stat.S_IMODE(st.st_mode) == 0o2770
    assert st.st_gid == NOBODY.pw_gid
    assert _fs.ensure_dir(path=str(path), mode=0o2770, gid=NOBODY.pw_gid) is False


def test_ensure_dir_never_follows_a_symlink(tmp_path):
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    os.chmod(elsewhere, 0o700)
    (tmp_path / 'shared').symlink_to(elsewhere)
    with pytest.raises(_fs.FsError, match='is a symlink') as info:
        _fs.ensure_dir(path=str(tmp_path / 'shared'), mode=0o2775, gid=NOBODY.pw_gid)
    assert info.value.path == str(tmp_path / 'shared')
    st = os.lstat(elsewhere)
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert st.st_gid == 0


def test_ensure_dir_when_another_process_creates_it_first(tmp_path, monkeypatch):
    # two deploys creating ROOT/.deploy at once: the one that loses the mkdir must carry on
    path = str(tmp_path / '.deploy')
    real_mkdir = os.mkdir

    def mkdir_after_the_other_process(target, mode=0o777, *, dir_fd=None):
        real_mkdir(target, 0o700, dir_fd=dir_fd)  # the other process wins the race
        real_mkdir(target, mode, dir_fd=dir_fd)

    monkeypatch.setattr(_fs.os, 'mkdir', mkdir_after_the_other_process)
    _fs.ensure_dir(path=path, mode=0o750)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o750


def test_ensure_dir_refuses_a_file(tmp_path):
    (tmp_path / 'shared').write_text('')
    with pytest.raises(_fs.FsError, match='not a directory') as info:
        _fs.ensure_dir(path=str(tmp_path / 'shared'), mode=0o755)
    assert str(tmp_path / 'shared') in str(info.value)


# --- undeletable (real non-root checks) --------------------------------------------------------


@pytest.fixture
def world_dir() -> Iterator[str]:
    """A directory nobody can reach (pytest's tmp_path lives below a 0700 directory)."""
    path = tempfile.mkdtemp(prefix='atomic-deploy-fs-')
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def as_nobody(func: Callable[[], object]) -> object:
    """Run ``func`` in a forked child with uid/gid nobody; return its JSON-able result."""
    return run_as('nobody', func)


def chown_tree(path: str, uid: int, gid: int) -> None:
    os.lchown(path, uid, gid)
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(top, name), uid, gid)


def test_undeletable_as_root_is_empty(tmp_path):
    (tmp_path / 'r' / 'd').mkdir(parents=True)
    (tmp_path / 'r' / 'd' / 'f').write_text('')
    os.chmod(tmp_path / 'r' / 'd', 0o500)
    assert _fs.undeletable(str(tmp_path / 'r')) == []


def test_undeletable_as_nobody_reports_foreign_directories(world_dir):
    release = os.path.join(world_dir, 'release')
    os.makedirs(os.path.join(release, 'app'))
    os.makedirs(os.path.join(release, 'cache'))
    with open(os.path.join(release, 'app', 'index.php'), 'w') as handle:
        handle.write('<?php')
    with open(os.path.join(release, 'cache', 'web-user-file'), 'w') as handle:
        handle.write('x')
    chown_tree(world_dir, NOBODY.pw_uid, NOBODY.pw_gid)
    # the web server (root here) owns cache/ with 0755: nobody cannot delete what is inside it
    os.lchown(os.path.join(release, 'cache'), 0, 0)
    os.lchown(os.path.join(release, 'cache', 'web-user-file'), 0, 0)

    problems = as_nobody(lambda: _fs.undeletable(release))
    assert problems == [os.path.join(release, 'cache')]

    # the report is right: deleting as nobody really fails there, and only there
    def try_delete():
        failed = []

        def handler(_func, path, _exc):
            failed.append(path)

        shutil.rmtree(release, **({'onexc': handler} if sys.version_info >= (3, 12) else {'onerror': handler}))
        return failed

    failed = as_nobody(try_delete)
    assert failed and all(p.startswith(os.path.join(release, 'cache')) or p == release for p in failed)
    assert not os.path.exists(os.path.join(release, 'app'))


def test_undeletable_as_nobody_empty_for_own_tree(world_dir):
    release = os.path.join(world_dir, 'release')
    os.makedirs(os.path.join(release, 'a', 'b'))
    with open(os.path.join(release, 'a', 'b', 'f'), 'w') as handle:
        handle.write('x')
    os.symlink('/', os.path.join(release, 'a', 'root-link'))
    chown_tree(world_dir, NOBODY.pw_uid, NOBODY.pw_gid)
    assert as_nobody(lambda: _fs.undeletable(release)) == []
    assert as_nobody(lambda: _fs.remove_tree(release)) == []
    assert not os.path.lexists(release)


def test_undeletable_as_nobody_sticky_parent(world_dir):
    # a sticky directory owned by root: nobody may only delete its own entries there
    sticky = os.path.join(world_dir, 'sticky')
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    mine = os.path.join(sticky, 'mine')
    theirs = os.path.join(sticky, 'theirs')
    os.mkdir(mine)
    os.mkdir(theirs)
    os.lchown(mine, NOBODY.pw_uid, NOBODY.pw_gid)
    os.chmod(theirs, 0o777)
    assert as_nobody(lambda: _fs.undeletable(mine)) == []
    assert as_nobody(lambda: _fs.undeletable(theirs)) == [theirs]


def test_undeletable_as_nobody_unwritable_parent(world_dir):
    parent = os.path.join(world_dir, 'releases')
    release = os.path.join(parent, 'r1')
    os.makedirs(release)
    os.lchown(release, NOBODY.pw_uid, NOBODY.pw_gid)
    # releases/ belongs to root, 0755: nobody cannot unlink r1 from it
    assert as_nobody(lambda: _fs.undeletable(release)) == [release]


# --- remove_tree -------------------------------------------------------------------------------


def test_remove_tree_never_follows_planted_symlinks(tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    canary = outside / 'canary'
    canary.write_text('alive')
    release = tmp_path / 'root' / 'releases' / 'r1'
    (release / 'sub').mkdir(parents=True)
    (release / 'sub' / 'file').write_text('x')
    (release / 'to-root').symlink_to('/')
    (release / 'sub' / 'to-outside').symlink_to(outside)
    (release / 'to-canary').symlink_to(canary)
    assert _fs.remove_tree(str(release)) == []
    assert not os.path.lexists(release)
    assert canary.read_text() == 'alive'
    assert os.path.isdir('/etc') and os.path.exists('/etc/passwd')


def test_remove_tree_of_a_symlink_unlinks_only_the_link(tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'canary').write_text('alive')
    (tmp_path / 'link').symlink_to(outside)
    assert _fs.remove_tree(str(tmp_path / 'link')) == []
    assert not os.path.lexists(tmp_path / 'link')
    assert (outside / 'canary').read_text() == 'alive'


def test_remove_tree_of_a_file(tmp_path):
    (tmp_path / 'f').write_text('x')
    assert _fs.remove_tree(str(tmp_path / 'f')) == []
    assert not (tmp_path / 'f').exists()


def test_discard_is_quiet_for_missing_paths(tmp_path):
    _fs.discard(str(tmp_path / 'missing'))
    (tmp_path / 'link').symlink_to('x')
    _fs.discard(str(tmp_path / 'link'))
    assert not os.path.lexists(tmp_path / 'link')


def test_fsync_dir_tolerates_einval(tmp_path, monkeypatch):
    def refusing(fd):
        raise OSError(errno.EINVAL, 'invalid argument')

    monkeypatch.setattr(_fs.os, 'fsync', refusing)
    _fs.fsync_dir(str(tmp_path))

    def failing(fd):
        raise OSError(errno.EIO, 'input/output error')

    monkeypatch.setattr(_fs.os, 'fsync', failing)
    with pytest.raises(OSError):
        _fs.fsync_dir(str(tmp_path))
