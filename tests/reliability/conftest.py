# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures and reporting for the reliability suites (tests/reliability/run.sh runs one suite per pytest).

Every test records its figures with the ``figures`` fixture; at the end the suite prints them and a line
``<suite>: N passed, N failed``, and writes the counts to $RELIABILITY_RESULTS (JSON) for run.sh.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from _harness import DEPLOY_PLAYBOOK, Ansible, kill_registered

_FIGURES: list[tuple[str, dict]] = []


@pytest.fixture(scope='session')
def ansible(tmp_path_factory: pytest.TempPathFactory) -> Ansible:
    return Ansible(workdir=tmp_path_factory.mktemp('ansible'))


@pytest.fixture
def figures(request: pytest.FixtureRequest):
    """figures(name=value, ...): figures this test reports; printed now and in the suite summary."""

    def record(**values) -> None:
        _FIGURES.append((request.node.name, values))
        print(f'\n[figures] {request.node.name}: ' + ', '.join(f'{k}={v}' for k, v in values.items()), flush=True)

    return record


@pytest.fixture(scope='session')
def deploy_playbook() -> Path:
    if not DEPLOY_PLAYBOOK.is_file():
        pytest.fail(f'{DEPLOY_PLAYBOOK} does not exist: the reliability suites drive the real deploy playbook')
    return DEPLOY_PLAYBOOK


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f'signal {signum}')


def pytest_configure(config: pytest.Config) -> None:
    # run.sh's time limit sends SIGTERM: turn it into ^C so fixtures unmount and stop what they started.
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_sessionfinish(session, exitstatus) -> None:
    kill_registered()


def _suite(config: pytest.Config) -> str:
    return os.environ.get('RELIABILITY_SUITE') or 'reliability'


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    stats = terminalreporter.stats
    passed = len(stats.get('passed', []))
    failed = len(stats.get('failed', [])) + len(stats.get('error', []))
    suite = _suite(config)
    terminalreporter.write_line('')
    for name, values in _FIGURES:
        terminalreporter.write_line(f'{suite} figures {name}: ' + ', '.join(f'{k}={v}' for k, v in values.items()))
    terminalreporter.write_line(f'{suite}: {passed} passed, {failed} failed')
    results = os.environ.get('RELIABILITY_RESULTS')
    if results:
        Path(results).write_text(
            json.dumps({'suite': suite, 'passed': passed, 'failed': failed, 'figures': _FIGURES}, default=str),
            encoding='utf-8',
        )
