# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the appstack suite: one work dir the web user can traverse, the servers, the figures table."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from _stack import Ansible, make_traversable, stop_all

FIGURES: list[dict] = []


@pytest.fixture(scope='session')
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('appstack')
    make_traversable(path)
    return path


@pytest.fixture(scope='session')
def ansible(workdir: Path) -> Ansible:
    return Ansible(workdir=workdir / 'ansible')


@pytest.fixture
def figures(request: pytest.FixtureRequest):
    """figures(configuration=..., requests=..., ...): one row of the suite's figures table."""

    def record(**values) -> None:
        FIGURES.append({'test': request.node.name, **values})
        print(f'\n[figures] {request.node.name}: ' + ', '.join(f'{k}={v}' for k, v in values.items()), flush=True)

    return record


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f'signal {signum}')


def pytest_configure(config: pytest.Config) -> None:
    # run.sh's time limit sends SIGTERM: turn it into ^C so the servers are stopped.
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_sessionfinish(session, exitstatus) -> None:
    stop_all()


COLUMNS = ('configuration', 'requests', 'non_2xx', 'stale', 'mixed', 'new_answers_s', 'all_new_s', 'live_s')


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    write = terminalreporter.write_line
    rows = [row for row in FIGURES if 'configuration' in row]
    if rows:
        write('')
        write('appstack figures (new_answers_s: switch -> first response of the new release; all_new_s: switch ->')
        write('last response of another release; live_s: how long a broken release was current)')
        write('| ' + ' | '.join(COLUMNS) + ' |')
        write('|' + '---|' * len(COLUMNS))
        for row in rows:
            write('| ' + ' | '.join(str(row.get(key, '')) for key in COLUMNS) + ' |')
    results = os.environ.get('APPSTACK_RESULTS')
    if results:
        Path(results).write_text(json.dumps(FIGURES, indent=1, default=str), encoding='utf-8')
