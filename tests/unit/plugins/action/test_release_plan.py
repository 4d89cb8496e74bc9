# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/action/release_plan.py, in the style of ansible.utils' action tests: an
ActionModule with a mocked task and connection and a real loader and templar, run() with task vars."""

from __future__ import annotations

import importlib
from unittest.mock import MagicMock

import pytest

# Controller code is imported while the tests run, not when they are collected (conftest.py).
PLUGIN = 'ansible_collections.atomic.deploy.plugins.action.release_plan'
REGISTER = '__release_plan'


def plugin():
    return importlib.import_module(PLUGIN)


def previous_plan(task_vars: dict):
    return plugin().previous_plan(task_vars)


def trust_as_template(value):
    """ansible-core 2.19+ templates only trusted strings, which variables from a playbook are."""
    try:
        from ansible.template import trust_as_template as trust
    except ImportError:  # older cores template every string
        return value
    return trust(value)


HOSTS = ['h1', 'h2']


def task_vars(**extra) -> dict:
    found = {
        'inventory_hostname': 'h1',
        'ansible_play_hosts_all': HOSTS,
        'ansible_play_batch': HOSTS,
        'ansible_forks': 5,
        'release_root': '/srv/app',
        'release_id': '',
        'release_source': 'archive',
        'release_archive': 'app.tar.gz',
        'release_keep': 5,
        'release_switch_delay': 'auto',
    }
    found.update(extra)
    return found


def action(variables: dict):
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook.play_context import PlayContext
    from ansible.template import Templar

    task = MagicMock()
    task.args = {}
    task.async_val = 0
    task.check_mode = False
    task.diff = False
    loader = DataLoader()
    return plugin().ActionModule(
        task=task,
        connection=MagicMock(),
        play_context=PlayContext(),
        loader=loader,
        templar=Templar(loader=loader, variables=variables),
        shared_loader_obj=None,
    )


def run(**extra) -> dict:
    variables = task_vars(**extra)
    return action(variables).run(task_vars=variables)


def test_needs_no_connection():
    assert plugin().ActionModule._requires_connection is False
    assert plugin().ActionModule.TRANSFERS_FILES is False


def test_plans_and_returns_the_fact():
    result = run(release_id='v1', release_migrate_command='php artisan migrate')
    assert not result.get('failed'), result
    plan = result['plan']
    assert 'ansible_facts' not in result
    assert result['changed'] is False
    assert plan['id'] == 'v1' and len(plan['token']) == 32
    assert (
        plan['batch'] == HOSTS
        and plan['migrate_host'] == 'h1'
        and plan['migrate_argv'] == ['php', 'artisan', 'migrate']
    )
    assert plan['switch_delay'] == pytest.approx(1.1)


def test_templates_the_variables():
    result = run(
        release_id=trust_as_template('{{ app_version }}'),
        app_version='v7',
        release_keep=trust_as_template('{{ 2 + 1 }}'),
    )
    assert result['plan']['id'] == 'v7', result


def test_fails_naming_every_variable():
    result = run(release_root='relative', release_keep=0, release_reload_command='kill -HUP $(cat /run/app.pid)')
    assert result['failed'] is True
    assert [p.split()[0] for p in result['problems']] == ['release_root', 'release_keep', 'release_reload_command']
    assert result['msg'] == '; '.join(result['problems'])
    assert 'plan' not in result and 'ansible_facts' not in result


def test_a_later_batch_reuses_the_plan_of_the_batch_before():
    play = ['h1', 'h2', 'h3']
    first = run(ansible_play_hosts_all=play, ansible_play_batch=['h1'])['plan']
    hostvars = {'h1': {REGISTER: {'plan': first}}, 'h2': {}, 'h3': {}}
    second = run(ansible_play_hosts_all=play, ansible_play_batch=['h2'], hostvars=hostvars)['plan']
    assert (second['id'], second['token']) == (first['id'], first['token'])
    assert second['hosts'] == ['h1', 'h2'] and second['first'] is False
    hostvars['h2'] = {REGISTER: {'plan': second}}
    third = run(ansible_play_hosts_all=play, ansible_play_batch=['h3'], hostvars=hostvars)['plan']
    assert third['token'] == first['token'] and third['hosts'] == play


class CountingHostVars(dict):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.read: list[str] = []

    def __getitem__(self, host):
        self.read.append(host)
        return super().__getitem__(host)


def test_one_batch_reads_no_hostvars():
    hostvars = CountingHostVars({'h1': {}, 'h2': {}})
    assert previous_plan({'hostvars': hostvars, 'ansible_play_hosts_all': HOSTS, 'ansible_play_batch': HOSTS}) is None
    assert hostvars.read == []


def test_the_nearest_batch_is_read_first():
    play = ['h1', 'h2', 'h3', 'h4']
    plan = {'id': 'x', 'token': 't', 'play': play, 'hosts': ['h1', 'h2']}
    hostvars = CountingHostVars(
        {'h1': {REGISTER: {'plan': {**plan, 'hosts': ['h1']}}}, 'h2': {REGISTER: {'plan': plan}}}
    )
    found = previous_plan({'hostvars': hostvars, 'ansible_play_hosts_all': play, 'ansible_play_batch': ['h3', 'h4']})
    assert found == plan and hostvars.read == ['h2']


@pytest.mark.parametrize(
    'hostvars',
    [
        None,
        {},
        {'h1': {}},
        {'h1': {REGISTER: 'garbage'}},
        {'h1': {REGISTER: {'failed': True, 'msg': 'x'}}},
        # a plan of another play (another host list)
        {'h1': {REGISTER: {'plan': {'id': 'x', 'token': 't', 'play': ['h1'], 'hosts': ['h1']}}}},
    ],
)
def test_no_previous_plan(hostvars):
    variables = {'ansible_play_hosts_all': HOSTS, 'ansible_play_batch': ['h2']}
    if hostvars is not None:
        variables['hostvars'] = hostvars
    assert previous_plan(variables) is None


def test_unknown_host_in_hostvars_is_no_previous_plan():
    class HostVars(dict):
        def __getitem__(self, key):
            raise RuntimeError('no such host')

    variables = {'hostvars': HostVars(), 'ansible_play_hosts_all': HOSTS, 'ansible_play_batch': ['h2']}
    assert previous_plan(variables) is None
