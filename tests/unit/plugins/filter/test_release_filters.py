# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the release role's filters (plugins/filter/release_role.py, one FilterModule with a
``<name>.yml`` documentation file per filter): each is registered under its name, documented, and passes
plain data through to plugin_utils; hostvars is a plain dict of host -> variables here."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

TOKEN = 'tok'
PLAN = {
    'id': 'v2',
    'token': TOKEN,
    'batch': ['h1', 'h2'],
    'hosts': ['h1', 'h2'],
    'migrate_host': '',
    'pre': False,
    'checks': False,
}
STAGED = {'changed': True, 'created': True, 'live': False, 'token': TOKEN}
SWITCHED = {'changed': True, 'token': TOKEN, 'switched_at': 1.0, 'current_before': 'v1', 'unlocked': True}
NAMES = [
    'release_argv',
    'release_blockers',
    'release_command_failure',
    'release_failure_message',
    'release_holding',
    'release_outcome',
    'release_result_message',
    'release_stats',
    'release_status_lines',
    'release_switch_delay',
    'release_switch_instant',
]


def filter_error():
    from ansible.errors import AnsibleFilterError

    return AnsibleFilterError


def filters() -> dict:
    module = importlib.import_module('ansible_collections.atomic.deploy.plugins.filter.release_role')
    return module.FilterModule().filters()


def load(name: str):
    return filters()[name]


def test_one_filter_module_registers_every_filter():
    assert sorted(filters()) == NAMES
    directory = Path(importlib.import_module('ansible_collections.atomic.deploy.plugins.filter').__path__[0])
    assert sorted(path.name for path in directory.glob('*.py')) == ['release_role.py']


@pytest.mark.parametrize('name', NAMES)
def test_each_filter_has_its_documentation_file(name):
    module = importlib.import_module('ansible_collections.atomic.deploy.plugins.filter.release_role')
    docs = yaml.safe_load(Path(module.__file__).with_name(f'{name}.yml').read_text(encoding='utf-8'))
    assert docs['DOCUMENTATION']['name'] == name
    assert f'atomic.deploy.{name}' in docs['EXAMPLES'] and docs['RETURN']['_value']


def test_blockers_read_hostvars():
    hostvars = {
        'h1': {'release_stage_result': STAGED},
        'h2': {'release_stage_result': {'failed': True, 'msg': 'checksum mismatch'}},
    }
    assert load('release_blockers')(hostvars, PLAN, 'pre') == [
        {'host': 'h2', 'cause': 'stage', 'msg': 'staging failed on host h2: checksum mismatch'}
    ]
    with pytest.raises(filter_error(), match='phase must be pre or post'):
        load('release_blockers')(hostvars, PLAN, 'during')


def test_outcome_adds_the_messages():
    hostvars = {
        'h1': {
            'release_stage_result': STAGED,
            'release_switch_result': {**SWITCHED, 'unlocked': False},
            'ansible_failed_task': {'name': 'Check the application URL after the switch'},
            'ansible_failed_result': {'failed': True, 'msg': 'Status code was 500'},
            'release_rollback_result': {'changed': True, 'current': 'v1'},
        }
    }
    plan = {**PLAN, 'batch': ['h1'], 'checks': True}
    found = load('release_outcome')(hostvars, plan, 'h1')
    assert found['rollback_target'] == 'v1' and found['holding'] is True
    assert found['switched'] is True
    assert found['failed_reason'] == 'was live without a previous release to roll back to: ' + found['reason']
    message = load('release_failure_message')(found, plan, hostvars['h1']['release_rollback_result'])
    assert message == (
        'release v2 failed after the switch: Check the application URL after the switch failed on host h1: '
        'Status code was 500; rolled back to v1: current points at v1 on host h1, release v2 is marked failed'
    )


def test_result_message():
    result = {
        'failed': True,
        'msg': 'One or more items failed',
        'results': [{'item': 'php-fpm', 'failed': True, 'msg': 'Could not find the requested service php-fpm: host'}],
    }
    assert load('release_result_message')(result) == 'php-fpm: Could not find the requested service php-fpm: host'


def test_holding_over_plain_results():
    holding = load('release_holding')
    assert holding(PLAN, STAGED, [SWITCHED, None, None]) is False
    assert holding(PLAN, STAGED, [{**SWITCHED, 'unlocked': False}]) is True
    assert holding(PLAN, STAGED, [{'skipped': True}, None, {'changed': True, 'token': TOKEN}]) is False
    assert holding(PLAN, STAGED, [None, None, None], True) is False


def test_stats():
    hostvars = {'h1': {'release_switch_result': SWITCHED}, 'h2': {'release_switch_result': {'skipped': True}}}
    assert load('release_stats')(hostvars, PLAN) == {
        'release_deployed_id': 'v2',
        'release_previous_id': 'v1',
        'release_switched_hosts': ['h1'],
        'release_switch_skew': None,
        'release_switch_delay': None,
    }


def test_argv_and_its_refusal():
    argv = load('release_argv')
    assert argv('systemctl reload nginx', 'release_reload_command') == ['systemctl', 'reload', 'nginx']
    assert argv(['kill', '-HUP', 12]) == ['kill', '-HUP', '12']
    with pytest.raises(filter_error(), match=r"release_reload_command 'kill \$\(cat x\)' contains shell syntax"):
        argv('kill $(cat x)', 'release_reload_command')


def test_switch_delay():
    delay = load('release_switch_delay')
    assert delay('auto', 1, 5) == 0.0
    assert delay('auto', '8', '10') == pytest.approx(2.9)
    assert delay(0.25, 3, 5) == 0.25
    with pytest.raises(filter_error(), match='release_switch_delay must not be negative'):
        delay(-1, 3, 5)


def test_command_failure():
    result = {'rc': 1, 'msg': 'non-zero return code', 'stderr_lines': ['boom']}
    assert load('release_command_failure')(result, 'migrations', 'h1') == (
        'migrations failed on host h1: non-zero return code (rc 1): boom'
    )


def test_status_lines():
    result = {'exists': True, 'current': 'v2', 'rollback_candidate': None, 'lock': None, 'table': ['t'], 'history': []}
    assert load('release_status_lines')(result, '/srv/app') == [
        'root     /srv/app',
        'current  v2',
        'rollback none',
        'lock     free',
        't',
    ]


def test_switch_instant_is_measured_from_the_staging_results_in_hostvars(monkeypatch):
    module = importlib.import_module('ansible_collections.atomic.deploy.plugins.filter.release_role')
    monkeypatch.setattr(module.time, 'time', lambda: 1000.0)
    hostvars = {
        'h1': {'release_stage_result': {**STAGED, 'dispatched_at': 990.0, 'started_at': 990.2}},
        'h2': {'release_stage_result': {**STAGED, 'dispatched_at': 990.05, 'started_at': 990.4}},
    }
    found = load('release_switch_instant')(hostvars, {**PLAN, 'switch_delay': 1.1, 'switch_delay_auto': True})
    assert found == {'switch_at': pytest.approx(1000.75), 'switch_delay': 0.75, 'dispatch_spread': 0.4}
