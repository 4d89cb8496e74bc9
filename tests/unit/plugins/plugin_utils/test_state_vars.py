# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every host variable the outcome rules read (``_outcome.STATE_VARS``) is set by a task of the role.

The gates find the registered results by name: a ``register:`` renamed in roles/release/tasks without
the same change in ``_outcome.py`` would leave a gate reading nothing, silently. This test reads the
task files as YAML and fails naming the variable that no task sets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.atomic.deploy.plugins.plugin_utils import _outcome

TASKS = Path(__file__).resolve().parents[4] / 'roles' / 'release' / 'tasks'
# Set by Ansible itself inside a rescue section, not by a task.
RESCUE_VARS = {'ansible_failed_task', 'ansible_failed_result'}
BLOCK_KEYS = ('block', 'rescue', 'always')


def walk(tasks: list, found: dict[str, set[str]], where: str) -> None:
    """Collect the variables tasks register or set_fact, and whether there is a rescue section."""
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        if 'register' in task:
            found['register'].add(f'{task["register"]}')
        for key in ('ansible.builtin.set_fact', 'set_fact'):
            if isinstance(task.get(key), dict):
                found['set_fact'].update(k for k in task[key] if k != 'cacheable')
        if task.get('rescue'):
            found['rescue'].add(where)
        for key in BLOCK_KEYS:
            walk(task.get(key), found, where)


def role_variables() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {'register': set(), 'set_fact': set(), 'rescue': set()}
    for path in sorted(TASKS.glob('*.yml')):
        walk(yaml.safe_load(path.read_text(encoding='utf-8')), found, path.name)
    return found


def test_the_task_files_register_results() -> None:
    found = role_variables()
    assert 'release_stage_result' in found['register'] and found['rescue']


@pytest.mark.parametrize('key', sorted(_outcome.STATE_VARS))
def test_every_state_var_is_set_by_a_task(key: str) -> None:
    name = _outcome.STATE_VARS[key]
    found = role_variables()
    if name in RESCUE_VARS:
        assert found['rescue'], f'{name} ({key}) is only set inside a rescue section, and no task file has one'
        return
    assert name in found['register'] | found['set_fact'], (
        f'_outcome.STATE_VARS[{key!r}] reads {name}, which no task in {TASKS} registers or sets'
    )
