"""Helpers of the ecosystem tests: the collection as users get it.

The collection is built from the checkout with ``ansible-galaxy collection build`` once per session and
installed offline into a scratch collections path. Every Ansible command these tests run gets an
environment in which only an explicitly named collections path is searched (never the checkout, never
``~/.ansible/collections``), so a test passes only if the built tarball works.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from support import ansible as _ansible
from support.ansible import REPO_ROOT, tool

NAMESPACE = 'atomic'
NAME = 'deploy'
FQCN = f'{NAMESPACE}.{NAME}'
# Names the ecosystem tests import from here; they live in tests/support.
__all__ = ['REPO_ROOT', 'tool']


def galaxy_info() -> dict:
    return yaml.safe_load((REPO_ROOT / 'galaxy.yml').read_text(encoding='utf-8'))


def ansible_env(*, collections_path: Path, home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for an Ansible command that may only find collections in collections_path."""
    return _ansible.clean_env(
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        # ansible-core's own state (galaxy cache, tmp) goes to a scratch directory, not ~/.ansible
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / 'tmp'),
        ANSIBLE_RETRY_FILES_ENABLED='0',
        ANSIBLE_HOST_KEY_CHECKING='0',
        ANSIBLE_DEPRECATION_WARNINGS='0',
        PAGER='cat',
        **(extra or {}),
    )


def run(
    args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command (never through a shell); with check, fail the test showing its output."""
    proc = _ansible.run(args, env=env, cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(
            f'command {" ".join(args)} exited {proc.returncode} in {cwd}\n'
            f'--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}',
            pytrace=False,
        )
    return proc


class Collection:
    """The built tarball and its offline install into a scratch collections path."""

    def __init__(self, *, tarball: Path, collections_path: Path, home: Path) -> None:
        self.tarball = tarball
        self.collections_path = collections_path
        self.home = home
        self.path = collections_path / 'ansible_collections' / NAMESPACE / NAME
        self.version = str(galaxy_info()['version'])

    def env(self, **extra: str) -> dict[str, str]:
        return ansible_env(collections_path=self.collections_path, home=self.home, extra=extra)
