"""Fixtures of the role tests: the collection tree, a fleet of three local hosts per test module.

A test module is one scenario: its ``step_*`` fixtures run playbooks against the same deploy roots, each
depending on the step before it, so a step that fails makes every later step's tests error with it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import COLLECTIONS_ROOT, REPO_ROOT, Fleet, remove_tree


@pytest.fixture(scope='session', autouse=True)
def collection_tree() -> Path:
    """build/collections/ansible_collections/atomic/deploy -> the checkout (scripts/collection-tree.sh)."""
    proc = subprocess.run(
        ['bash', str(REPO_ROOT / 'scripts' / 'collection-tree.sh')], capture_output=True, text=True, check=False
    )
    galaxy = COLLECTIONS_ROOT / 'ansible_collections' / 'atomic' / 'deploy' / 'galaxy.yml'
    if proc.returncode != 0 or not galaxy.is_file():
        pytest.fail(f'scripts/collection-tree.sh did not make {galaxy}: {proc.stderr}', pytrace=False)
    return COLLECTIONS_ROOT


@pytest.fixture(scope='module')
def fleet() -> Iterator[Fleet]:
    """Three hosts with fresh deploy roots under one scratch directory.

    The directory is not under pytest's tmp_path (mode 0700 for root): the web user must reach the
    shared directories. ROLE_TESTS_KEEP=1 keeps it (the playbook output of every run is in runs/).
    """
    base = Path(tempfile.mkdtemp(prefix='atomic-role-'))
    base.chmod(0o755)
    yield Fleet(base=base)
    if os.environ.get('ROLE_TESTS_KEEP') == '1':
        print(f'\nrole tests: kept {base}')
    else:
        remove_tree(base)
