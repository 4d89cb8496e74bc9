"""Fixtures for tests/deployed and tests/rolled_back, which molecule runs at separate verify steps
(molecule.yml test_sequence). Loading this file also puts tests/ on sys.path for the helper modules."""

from __future__ import annotations

import pytest
import testinfra
from hostprobe import Snapshot, take_snapshot
from nginxchecks import ROOT, fetch_version


@pytest.fixture(scope='module')
def snap(host: testinfra.host.Host) -> Snapshot:
    return take_snapshot(host=host, root=ROOT)


@pytest.fixture(scope='module')
def served_version(host: testinfra.host.Host) -> str:
    return fetch_version(host=host)
