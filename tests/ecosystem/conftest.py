"""Session fixtures of the ecosystem tests: the collection built from the checkout and installed offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import NAME, NAMESPACE, REPO_ROOT, Collection, ansible_env, galaxy_info, run, tool


@pytest.fixture(scope='session')
def built_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ansible-galaxy collection build`` of the checkout, as a release would make it."""
    dist = tmp_path_factory.mktemp('dist')
    home = tmp_path_factory.mktemp('ansible-home')
    env = ansible_env(collections_path=dist / 'none', home=home)
    run([tool('ansible-galaxy'), 'collection', 'build', str(REPO_ROOT), '--output-path', str(dist)], env=env, cwd=dist)
    version = galaxy_info()['version']
    tarball = dist / f'{NAMESPACE}-{NAME}-{version}.tar.gz'
    if not tarball.is_file():
        pytest.fail(f'ansible-galaxy collection build wrote no {tarball}', pytrace=False)
    return tarball


@pytest.fixture(scope='session')
def collection(built_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Collection:
    """The tarball installed offline into a fresh collections path, the only one Ansible may search."""
    root = tmp_path_factory.mktemp('installed')
    installed = Collection(tarball=built_tarball, collections_path=root / 'collections', home=root / 'ansible-home')
    installed.collections_path.mkdir()
    (installed.home / 'tmp').mkdir(parents=True)
    run(
        [
            tool('ansible-galaxy'),
            'collection',
            'install',
            '--offline',
            '-p',
            str(installed.collections_path),
            str(built_tarball),
        ],
        env=installed.env(),
        cwd=root,
    )
    manifest = installed.path / 'MANIFEST.json'
    if not manifest.is_file():
        pytest.fail(f'ansible-galaxy collection install left no {manifest}', pytrace=False)
    found = json.loads(manifest.read_text(encoding='utf-8'))['collection_info']['version']
    if found != installed.version:
        pytest.fail(f'installed {manifest} has version {found}, galaxy.yml says {installed.version}', pytrace=False)
    return installed
