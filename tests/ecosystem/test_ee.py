"""The collection in an execution environment (EE).

``ansible-builder create`` turns execution-environment/execution-environment.yml into a build context
without network access (it runs in a network namespace of its own). The context is then checked the way
the image build would use it: its galaxy stage installs the collection offline from the copied tarball,
and its own introspect script reads the installed collection's meta/execution-environment.yml.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import NAME, NAMESPACE, REPO_ROOT, Collection, ansible_env, galaxy_info, run, tool

EE_DIR = REPO_ROOT / 'execution-environment'


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def offline_prefix() -> list[str]:
    """Run a command in a new network namespace: only a loopback interface that is down."""
    unshare = shutil.which('unshare')
    if unshare is None:
        pytest.fail(
            'unshare (util-linux) not found: cannot prove ansible-builder create needs no network', pytrace=False
        )
    probe = subprocess.run([unshare, '-n', 'true'], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.fail(
            f'unshare -n does not work here ({probe.stderr.strip()}); it needs root or user namespaces', pytrace=False
        )
    return [unshare, '-n']


@pytest.fixture(scope='module')
def context(built_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout-shaped scratch dir (execution-environment/ + the tarball at the root), then create."""
    work = tmp_path_factory.mktemp('ee')
    shutil.copytree(EE_DIR, work / 'execution-environment')
    shutil.copy2(built_tarball, work / built_tarball.name)
    home = work / 'home'
    run(
        [
            *offline_prefix(),
            tool('ansible-builder'),
            'create',
            '-f',
            'execution-environment/execution-environment.yml',
            '-c',
            'context',
            '--output-filename',
            'Containerfile',
            '-v',
            '3',
        ],
        env=ansible_env(collections_path=work / 'none', home=home),
        cwd=work,
        timeout=120,
    )
    return work / 'context'


def test_definition_matches_the_collection_version() -> None:
    """The EE definition names the tarball of the version galaxy.yml builds."""
    definition = yaml.safe_load((EE_DIR / 'execution-environment.yml').read_text(encoding='utf-8'))
    version = galaxy_info()['version']
    expected = f'{NAMESPACE}-{NAME}-{version}.tar.gz'
    assert definition['version'] == 3, 'execution-environment/execution-environment.yml is not ansible-builder v3'
    sources = [Path(entry['src']).name for entry in definition['additional_build_files']]
    assert expected in sources, f'execution-environment.yml copies {sources}, not {expected} (galaxy.yml {version})'
    names = [Path(entry['name']).name for entry in definition['dependencies']['galaxy']['collections']]
    assert names == [expected], f'execution-environment.yml installs {names}, not {expected}'


def test_create_writes_containerfile(context: Path) -> None:
    containerfile = context / 'Containerfile'
    assert containerfile.is_file(), f'ansible-builder create wrote no {containerfile}'
    text = containerfile.read_text(encoding='utf-8')
    for needle in (
        'FROM $EE_BASE_IMAGE AS base',
        'ansible-galaxy collection install',
        '-r requirements.yml',
        'introspect.py introspect',
        'ansible-core==2.19.14',
        'ansible-runner==',
    ):
        assert needle in text, f'{containerfile} does not contain {needle!r}'


def test_context_carries_the_collection_tarball(context: Path, built_tarball: Path) -> None:
    requirements = context / '_build' / 'requirements.yml'
    data = yaml.safe_load(requirements.read_text(encoding='utf-8'))
    entries = data['collections']
    assert [entry.get('type') for entry in entries] == ['file'], f'{requirements} does not install one file: {data}'
    copied = context / '_build' / entries[0]['name']
    assert copied.is_file(), f'{requirements} names {entries[0]["name"]}, which is not in the context'
    assert sha256(copied) == sha256(built_tarball), f'{copied} differs from the built {built_tarball}'


@pytest.fixture(scope='module')
def image_collections(context: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the Containerfile's galaxy stage does (WORKDIR /build, install -r requirements.yml), offline."""
    target = tmp_path_factory.mktemp('usr-share-ansible') / 'collections'
    target.mkdir()
    run(
        [
            *offline_prefix(),
            tool('ansible-galaxy'),
            'collection',
            'install',
            '--offline',
            '-r',
            'requirements.yml',
            '--collections-path',
            str(target),
        ],
        env=ansible_env(collections_path=target, home=target.parent / 'home'),
        cwd=context / '_build',
    )
    return target


def test_galaxy_stage_installs_the_collection(image_collections: Path) -> None:
    manifest = image_collections / 'ansible_collections' / NAMESPACE / NAME / 'MANIFEST.json'
    assert manifest.is_file(), f'the galaxy stage of the context did not install {NAMESPACE}.{NAME}: no {manifest}'
    meta = image_collections / 'ansible_collections' / NAMESPACE / NAME / 'meta' / 'execution-environment.yml'
    assert meta.is_file(), f'the installed collection has no {meta}, so ansible-builder cannot read its needs'


def test_introspect_reads_the_collection_requirements(context: Path, image_collections: Path, tmp_path: Path) -> None:
    """The context's own introspect script (the builder stage) merges what the collection declares."""
    bindep = tmp_path / 'bindep.txt'
    pip = tmp_path / 'requirements.txt'
    run(
        [
            tool('python3'),
            str(context / '_build' / 'scripts' / 'introspect.py'),
            'introspect',
            str(image_collections),
            f'--write-bindep={bindep}',
            f'--write-pip={pip}',
        ],
        env=ansible_env(collections_path=image_collections, home=tmp_path / 'home'),
        cwd=tmp_path,
    )
    ours = f'# from collection {NAMESPACE}.{NAME}'
    system = [line for line in bindep.read_text(encoding='utf-8').splitlines() if line.endswith(ours)]
    packages = sorted(line.split()[0] for line in system)
    assert packages == ['git'], f'{bindep}: atomic.deploy should need exactly git, got {system}'
    python = pip.read_text(encoding='utf-8').splitlines() if pip.exists() else []
    assert not [line for line in python if line.endswith(ours)], f'{pip}: atomic.deploy should need no pip package'


def test_collection_meta_declares_its_files(collection: Collection) -> None:
    """meta/execution-environment.yml of the installed copy names files that the tarball contains."""
    meta = collection.path / 'meta' / 'execution-environment.yml'
    data = yaml.safe_load(meta.read_text(encoding='utf-8'))
    assert data['version'] == 1, f'{meta}: version must be 1 (the collection metadata format)'
    for kind in ('python', 'system'):
        relative = data['dependencies'][kind]
        assert not Path(relative).is_absolute(), f'{meta}: dependencies.{kind} must be relative to the collection'
        assert (collection.path / relative).is_file(), f'{meta}: dependencies.{kind} names {relative}, not installed'
