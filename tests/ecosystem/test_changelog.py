"""antsibull-changelog accepts the collection's changelog configuration, changelog.yaml and fragments."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from helpers import REPO_ROOT, ansible_env, run, tool

FRAGMENTS = REPO_ROOT / 'changelogs' / 'fragments'


def lint(*, root: Path, home: Path) -> tuple[int, str]:
    proc = run(
        [tool('antsibull-changelog'), 'lint'],
        env=ansible_env(collections_path=home / 'none', home=home),
        cwd=root,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_changelog_lint_passes(tmp_path: Path) -> None:
    rc, output = lint(root=REPO_ROOT, home=tmp_path)
    assert rc == 0 and output.strip() == '', f'antsibull-changelog lint in {REPO_ROOT} failed:\n{output}'


def test_changelog_yaml_lint_passes(tmp_path: Path) -> None:
    proc = run(
        [tool('antsibull-changelog'), 'lint-changelog-yaml', 'changelogs/changelog.yaml'],
        env=ansible_env(collections_path=tmp_path / 'none', home=tmp_path),
        cwd=REPO_ROOT,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and output.strip() == '', f'changelogs/changelog.yaml is not valid:\n{output}'


def test_ecosystem_fragment_is_present_and_well_formed() -> None:
    path = FRAGMENTS / 'ecosystem.yml'
    data = yaml.safe_load(path.read_text(encoding='utf-8'))
    assert isinstance(data, dict) and data, f'{path} holds no sections'
    entries = [entry for section in data.values() for entry in section]
    assert entries, f'{path} has no entries'
    for entry in entries:
        assert entry.startswith('atomic.deploy - '), f'{path}: entry does not start with the component: {entry!r}'
        assert entry.rstrip().endswith('.'), f'{path}: entry does not end with a full stop: {entry!r}'


def test_lint_catches_a_broken_fragment(tmp_path: Path) -> None:
    """The lint run above is only worth something if lint fails on a bad fragment in the same layout."""
    copy = tmp_path / 'collection'
    copy.mkdir()
    shutil.copy2(REPO_ROOT / 'galaxy.yml', copy / 'galaxy.yml')
    shutil.copytree(REPO_ROOT / 'changelogs', copy / 'changelogs', ignore=shutil.ignore_patterns('.plugin-cache.yaml'))
    bad = copy / 'changelogs' / 'fragments' / 'broken.yml'
    bad.write_text(
        '---\nnot_a_section:\n  - atomic.deploy - an entry in a section antsibull-changelog does not know.\n',
        encoding='utf-8',
    )
    rc, output = lint(root=copy, home=tmp_path / 'home')
    assert rc != 0 and 'broken.yml' in output, f'antsibull-changelog lint accepted {bad}:\n{output}'
