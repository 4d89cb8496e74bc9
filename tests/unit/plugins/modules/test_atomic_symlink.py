# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module-level tests for atomic_symlink: check mode, diff, idempotency, every error path."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _fs
from ansible_collections.atomic.deploy.plugins.modules import atomic_symlink


@pytest.fixture
def site(tmp_path):
    for name in ('r1', 'r2'):
        (tmp_path / 'releases' / name).mkdir(parents=True)
        (tmp_path / 'releases' / name / 'version').write_text(name)
    return tmp_path


def leftovers(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if '.tmp-' in n or '.backup-' in n)


@pytest.mark.parametrize('absolute', [False, True], ids=['relative', 'absolute'])
def test_create_check_real_idempotent(site, run_module, absolute):
    link = str(site / 'current')
    target = str(site / 'releases' / 'r1') if absolute else 'releases/r1'
    args = {'path': link, 'target': target}

    result = run_module(atomic_symlink, args, check=True)
    assert result['changed'] is True
    assert result['diff'] == {'before': {'path': link, 'target': None}, 'after': {'path': link, 'target': target}}
    assert not os.path.lexists(link)

    result = run_module(atomic_symlink, args)
    assert result['changed'] is True
    assert result['previous_target'] is None and result['backup'] is None
    assert os.readlink(link) == target
    assert (site / 'current' / 'version').read_text() == 'r1'

    for check in (True, False):
        result = run_module(atomic_symlink, args, check=check)
        assert result['changed'] is False
        assert result['previous_target'] == target
        assert result['diff']['before'] == result['diff']['after']
    assert leftovers(site) == []


def test_replace_check_then_real(site, run_module):
    link = str(site / 'current')
    os.symlink('releases/r1', link)
    args = {'path': link, 'src': 'releases/r2', 'fsync': False}
    result = run_module(atomic_symlink, args, check=True)
    assert result['changed'] is True
    assert result['diff']['before']['target'] == 'releases/r1'
    assert result['diff']['after']['target'] == 'releases/r2'
    assert os.readlink(link) == 'releases/r1'
    result = run_module(atomic_symlink, args)
    assert result['changed'] is True and result['previous_target'] == 'releases/r1'
    assert os.readlink(link) == 'releases/r2'
    assert leftovers(site) == []


def test_path_is_normalised(site, run_module):
    result = run_module(atomic_symlink, {'path': f'{site}/./current/', 'target': 'releases/r1'})
    assert result['path'] == str(site / 'current')
    assert os.readlink(site / 'current') == 'releases/r1'


def test_require_target_false_links_a_missing_target(site, run_module, assert_error):
    link = str(site / 'current')
    result = run_module(atomic_symlink, {'path': link, 'target': 'releases/r9'}, failed=True)
    msg = assert_error(result, link, 'releases/r9', str(site / 'releases' / 'r9'), 'require_target=false')
    assert msg.startswith('target releases/r9 of ')
    assert not os.path.lexists(link)
    result = run_module(atomic_symlink, {'path': link, 'target': 'releases/r9', 'require_target': False})
    assert result['changed'] is True
    assert os.readlink(link) == 'releases/r9'


def test_relative_target_resolved_against_link_directory(site, run_module, assert_error, monkeypatch):
    # the module must not resolve a relative target against its own working directory
    monkeypatch.chdir(site / 'releases')
    result = run_module(atomic_symlink, {'path': str(site / 'current'), 'target': 'r1'}, failed=True)
    assert_error(result, str(site / 'current'), str(site / 'r1'))


def test_missing_parent(site, run_module, assert_error):
    link = str(site / 'nope' / 'current')
    result = run_module(atomic_symlink, {'path': link, 'target': '/', 'require_target': False}, failed=True)
    msg = assert_error(result, str(site / 'nope'), link)
    assert msg == f'parent directory {site / "nope"} of {link} does not exist'


def test_empty_target(site, run_module, assert_error):
    link = str(site / 'current')
    assert_error(run_module(atomic_symlink, {'path': link, 'target': ''}, failed=True), link, 'target')


@pytest.mark.parametrize('kind', ['directory', 'file'])
def test_real_entry_without_force_refused(site, run_module, assert_error, kind):
    link = site / 'current'
    if kind == 'directory':
        link.mkdir()
        (link / 'index.html').write_text('old')
    else:
        link.write_text('old')
    for check in (True, False):
        result = run_module(atomic_symlink, {'path': str(link), 'target': 'releases/r1'}, check=check, failed=True)
        msg = assert_error(result, str(link), 'force=true')
        assert msg == f'refusing to replace {kind} {link} with a symlink; set force=true to adopt it'
    assert not link.is_symlink()


def test_adopt_directory_with_force(site, run_module):
    link = site / 'current'
    link.mkdir()
    (link / 'index.html').write_text('old in-place deploy')
    args = {'path': str(link), 'target': 'releases/r1', 'force': True}
    result = run_module(atomic_symlink, args, check=True)
    assert result['changed'] is True
    assert result['diff']['before']['target'] == '<directory>'
    assert result['backup'] is None
    assert not link.is_symlink()
    result = run_module(atomic_symlink, args)
    assert result['changed'] is True
    assert result['previous_target'] is None
    backup = result['backup']
    assert os.path.dirname(backup) == str(site) and os.path.basename(backup).startswith('.current.backup-')
    with open(os.path.join(backup, 'index.html')) as handle:
        assert handle.read() == 'old in-place deploy'
    assert os.readlink(link) == 'releases/r1'
    result = run_module(atomic_symlink, args)
    assert result['changed'] is False and result['backup'] is None


def test_replace_file_with_force(site, run_module):
    link = site / 'current'
    link.write_text('old')
    result = run_module(atomic_symlink, {'path': str(link), 'target': 'releases/r1', 'force': True})
    assert result['changed'] is True and result['backup'] is None
    assert os.readlink(link) == 'releases/r1'
    assert result['diff']['before']['target'] == '<file>'


def test_adopt_without_renameat2_check_mode(site, run_module, assert_error, monkeypatch):
    link = site / 'current'
    link.mkdir()
    monkeypatch.setattr(_fs, '_exchange_call', lambda: None)
    result = run_module(
        atomic_symlink, {'path': str(link), 'target': 'releases/r1', 'force': True}, check=True, failed=True
    )
    assert_error(result, str(link), 'renameat2')


def test_adopt_without_renameat2_real_run_names_the_path(site, run_module, assert_error, monkeypatch):
    link = site / 'current'
    link.mkdir()
    (link / 'index.html').write_text('old')
    monkeypatch.setattr(_fs, '_exchange_call', lambda: None)
    result = run_module(atomic_symlink, {'path': str(link), 'target': 'releases/r1', 'force': True}, failed=True)
    assert (link / 'index.html').read_text() == 'old'
    assert leftovers(site) == []
    # every error message names the path it is about
    assert_error(result, str(link), 'renameat2')


def test_os_error_is_reported_and_temp_link_removed(site, run_module, assert_error, monkeypatch):
    link = site / 'current'
    os.symlink('releases/r1', link)

    def broken_replace(src, dst):
        raise OSError(5, 'Input/output error', dst)

    monkeypatch.setattr(_fs.os, 'replace', broken_replace)
    result = run_module(atomic_symlink, {'path': str(link), 'target': 'releases/r2'}, failed=True)
    msg = assert_error(result, str(link), 'releases/r2')
    assert msg.endswith('input/output error')
    assert result['changed'] is False
    assert os.readlink(link) == 'releases/r1'
    assert leftovers(site) == []


@pytest.fixture
def world_site():
    """A site nobody can traverse (pytest's tmp_path is below a 0700 directory)."""
    top = tempfile.mkdtemp(prefix='atomic-deploy-symlink-')
    os.chmod(top, 0o755)
    os.makedirs(os.path.join(top, 'releases', 'r1'))
    os.makedirs(os.path.join(top, 'releases', 'r2'))
    try:
        yield top
    finally:
        shutil.rmtree(top)


def test_unwritable_parent_as_a_real_non_root_user(world_site, run_module, assert_error):
    link = os.path.join(world_site, 'current')
    os.symlink('releases/r1', link)
    # world_site is root's, 0755: nobody may read it but not rename inside it
    result = run_module.as_user(atomic_symlink, {'path': link, 'target': 'releases/r2'})
    msg = assert_error(result, world_site, link)
    assert msg == f'parent directory {world_site} of {link} is not writable'
    # nothing changed, and the failed task must not claim otherwise
    assert result['changed'] is False
    assert os.readlink(link) == 'releases/r1'
    assert leftovers(world_site) == []
    # check mode as nobody only reports
    result = run_module.as_user(atomic_symlink, {'path': link, 'target': 'releases/r2'}, check=True)
    assert result['rc'] == 0 and result['changed'] is True
    # and once nobody owns the directory the same call works
    os.chown(world_site, 65534, 65534)
    result = run_module.as_user(atomic_symlink, {'path': link, 'target': 'releases/r2'})
    assert result['rc'] == 0 and result['changed'] is True
    assert os.readlink(link) == 'releases/r2'
