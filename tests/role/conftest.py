"""Fixtures of the role tests: the collection tree, a fleet of three local hosts per test module.

The tests of a module with STEPS = True are the steps of one scenario, run in file order against the same deploy roots:
each step runs a playbook and checks what it did. When a step fails, the later steps of its module fail
at once naming it, instead of failing on the state it left.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import COLLECTIONS_ROOT, REPO_ROOT, Fleet, remove_tree

@pytest.fixture(scope="session", autouse=True)
def collection_tree() -> Path:
    """build/collections/ansible_collections/atomic/deploy -> the checkout (scripts/collection-tree.sh)."""
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "collection-tree.sh")], capture_output=True, text=True, check=False
    )
    galaxy = COLLECTIONS_ROOT / "ansible_collections" / "atomic" / "deploy" / "galaxy.yml"
    if proc.returncode != 0 or not galaxy.is_file():
        pytest.fail(f"scripts/collection-tree.sh did not make {galaxy}: {proc.stderr}", pytrace=False)
    return COLLECTIONS_ROOT


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """Three hosts with fresh deploy roots under one scratch directory.

    The directory is not under pytest's tmp_path (mode 0700 for root): the web user must reach the
    shared directories. ROLE_TESTS_KEEP=1 keeps it (the playbook output of every run is in runs/).
    """
    base = Path(tempfile.mkdtemp(prefix="atomic-role-"))
    base.chmod(0o755)
    yield Fleet(base=base)
    if os.environ.get("ROLE_TESTS_KEEP") == "1":
        print(f"\nrole tests: kept {base}")
    else:
        remove_tree(base)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and call.when in {"setup", "call"} and getattr(item.module, "STEPS", False):
        item.module.__dict__.setdefault("_failed_step", item.name)
    return report


@pytest.fixture(autouse=True)
def earlier_steps_passed(request: pytest.FixtureRequest) -> None:
    if not getattr(request.module, "STEPS", False):
        return
    failed = request.module.__dict__.get("_failed_step")
    if failed is not None:
        pytest.fail(f"an earlier step of this scenario failed ({failed}): its state is not the one this step needs")
