# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The web server's user is hostile, against the paths that change owners, modes and ACLs or remove files
for it (issue 19): writable methods (in staging and as the release_writable step with become), seeding
shared paths, and pruning with become.

Each case deploys through the real playbook as root, lets www-data (a real second user, through setpriv)
plant symlinks or swap a directory for one between two deploys, deploys again, and asserts that nothing
outside the deploy root changed: a root-only directory and file (owner, mode, ACLs, content, entries) and
/etc/passwd.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _harness import Ansible, build_archive, current_id
from support.users import as_web_user

WEB = 'www-data'


def state_of(path: Path) -> dict:
    """Everything a root-run deploy could change at ``path`` and below, read without following links."""
    found = {}
    for directory, dirs, files in os.walk(path):
        for name in ['.', *dirs, *files]:
            full = Path(directory) / name if name != '.' else Path(directory)
            st = os.lstat(full)
            acls = sorted(
                (attr, os.getxattr(full, attr, follow_symlinks=False))
                for attr in os.listxattr(full, follow_symlinks=False)
            )
            content = full.read_bytes() if stat.S_ISREG(st.st_mode) else None
            found[str(full)] = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), acls, content)
    return found


@pytest.fixture
def world() -> Iterator[Path]:
    """A directory www-data can traverse (pytest's tmp dirs are 0700), holding the deploy root and a
    root-only victim directory outside it."""
    base = Path(tempfile.mkdtemp(prefix='atomic-privilege-'))
    os.chmod(base, 0o755)
    victim = base / 'victim'
    victim.mkdir()
    (victim / 'secret').write_text('root only\n')
    os.chmod(victim / 'secret', 0o600)
    os.chmod(victim, 0o700)
    try:
        yield base
    finally:
        shutil.rmtree(base)


@pytest.fixture(scope='module')
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict:
    files = tmp_path_factory.mktemp('privilege-files')
    return {version: build_archive(dest=files / f'{version}.tar.gz', version=version) for version in ('v1', 'v2', 'v3')}


def web(*argv: str) -> None:
    done = as_web_user(*argv)
    assert done.returncode == 0, done.stderr


def outside_state(world: Path) -> dict:
    return {**state_of(world / 'victim'), **state_of(Path('/etc/passwd'))}


def deploy(ansible: Ansible, world: Path, archives: dict, version: str, **extra):
    values = {
        'release_root': str(world / 'app'),
        'release_id': version,
        'release_source': 'archive',
        'release_archive': str(archives[version].path),
        'release_shared_dirs': ['storage'],
        'release_shared_group': WEB,
        'release_keep': 1,
        'release_lock_timeout': 120,
    }
    values.update(extra)
    return ansible.deploy(**values)


@pytest.mark.parametrize(
    ('method', 'become'),
    [('chgrp', False), ('chown', False), ('acl', False), ('chown', True)],
    ids=['chgrp', 'chown', 'acl', 'chown-become'],
)
def test_writable_dir_swapped_for_a_symlink(ansible: Ansible, world: Path, archives: dict, method, become) -> None:
    writable = {
        'release_writable_dirs': ['var/cache', 'var/cache/views'],
        'release_writable_method': method,
        'release_writable_become': become,
        **({'release_writable_group': WEB} if method == 'chgrp' else {'release_writable_user': WEB}),
    }
    first = deploy(ansible, world, archives, 'v1', **writable)
    assert first.rc == 0, first.text[-3000:]
    before = outside_state(world)
    cache = world / 'app' / 'releases' / 'v1' / 'var' / 'cache'
    # the web server, in the live release: the nested writable dir becomes a link to a root-only place
    web('mv', str(cache / 'views'), str(cache / 'views.old'))
    web('ln', '-s', str(world / 'victim'), str(cache / 'views'))
    web('ln', '-s', '/etc/passwd', str(cache / 'passwd'))
    second = deploy(ansible, world, archives, 'v2', **writable)
    assert second.rc == 0, second.text[-3000:]
    # v1 again: complete and not live, so only its links and writable dirs are checked, and the link is refused
    again = deploy(ansible, world, archives, 'v1', **writable)
    assert again.rc != 0
    assert f'{cache / "views"} in the release is a symlink' in again.text, again.text[-3000:]
    assert current_id(world / 'app') == 'v2'
    assert outside_state(world) == before


def test_seeded_shared_path_planted_as_a_symlink(ansible: Ansible, world: Path, archives: dict) -> None:
    first = deploy(ansible, world, archives, 'v1', release_shared_dirs=['cache'])
    assert first.rc == 0, first.text[-3000:]
    before = outside_state(world)
    # shared/ is the web server's group's: it plants the path the next deploy adds and seeds
    web('ln', '-s', str(world / 'victim'), str(world / 'app' / 'shared' / 'public'))
    second = deploy(
        ansible, world, archives, 'v2', release_shared_dirs=['cache', 'public'], release_shared_seed=['public']
    )
    assert second.rc != 0
    assert f'{world / "app" / "shared" / "public"} is a symlink to {world / "victim"}' in second.text
    assert outside_state(world) == before
    assert current_id(world / 'app') == 'v1'


def test_prune_with_become_removes_what_the_web_user_wrote_and_nothing_outside(
    ansible: Ansible, world: Path, archives: dict, figures
) -> None:
    extra = {'release_writable_dirs': ['var/cache'], 'release_writable_group': WEB, 'release_writable_method': 'chgrp'}
    before = None
    for version in ('v1', 'v2', 'v3'):
        run = deploy(ansible, world, archives, version, release_prune_become=True, **extra)
        assert run.rc == 0, run.text[-3000:]
        # pruning found nothing it could not remove (a drift warning about the writable dir's parent is
        # another matter: the manifest does not exclude parents the writable step creates)
        assert not [w for w in run.warnings if 'prune' in w or 'cannot delete' in w], run.warnings
        if before is None:
            before = outside_state(world)
        cache = world / 'app' / 'releases' / version / 'var' / 'cache'
        # a directory and files of the web server's own, links out of the root, a directory swapped for a link
        web('mkdir', '-m', '0755', str(cache / 'data'), str(cache / 'views'))
        web('sh', '-c', f'echo compiled > {cache}/data/page.php')
        web('ln', '-s', str(world / 'victim'), str(cache / 'data' / 'victim'))
        web('ln', '-s', '/etc/passwd', str(cache / 'passwd'))
        web('mv', str(cache / 'views'), str(cache / 'views.old'))
        web('ln', '-s', str(world / 'victim'), str(cache / 'views'))
    releases = sorted(p.name for p in (world / 'app' / 'releases').iterdir() if not p.name.startswith('.'))
    figures(releases=len(releases))
    # keep 1, plus the release current left at the latest switch
    assert releases == ['v2', 'v3']
    assert outside_state(world) == before
