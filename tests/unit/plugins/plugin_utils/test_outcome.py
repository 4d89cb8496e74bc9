# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/plugin_utils/_outcome.py over plain dicts: every blocker cause before and after
the switch, every rescue path (gate reasons, own failure, rollback target, lock), the final messages and
the AWX stats."""

from __future__ import annotations

import pytest
from ansible_collections.atomic.deploy.plugins.plugin_utils import _outcome

TOKEN = 'tok'
PLAN = {
    'id': 'v2',
    'token': TOKEN,
    'batch': ['h1', 'h2'],
    'hosts': ['h1', 'h2'],
    'migrate_host': '',
    'pre': True,
    'checks': True,
}
STAGED = {
    'changed': True,
    'created': True,
    'live': False,
    'token': TOKEN,
    'release_path': '/srv/releases/v2',
    'current_before': 'v1',
}
SWITCHED = {'changed': True, 'token': TOKEN, 'switched_at': 1.0, 'current_before': 'v1', 'unlocked': False}


def plan(**extra) -> dict:
    return {**PLAN, **extra}


def state(**extra) -> dict:
    """A host that staged, prepared and switched to v2 and passed its checks."""
    return {'stage': STAGED, 'switch': SWITCHED, 'prepared': TOKEN, 'verified': TOKEN, **extra}


FAILED_HOOK = {
    'failed_task': {'name': 'Run the hook', 'action': 'ansible.builtin.command'},
    'failed_result': {'failed': True, 'msg': 'hook said no'},
}


# --- before the switch ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('host_state', 'cause', 'msg'),
    [
        ({'stage': None}, _outcome.STAGE, 'staging failed on host h2: it did not stage'),
        ({'stage': {}}, _outcome.STAGE, 'staging failed on host h2: it did not stage'),
        (
            {'stage': {'failed': True, 'msg': 'checksum mismatch'}},
            _outcome.STAGE,
            'staging failed on host h2: checksum mismatch',
        ),
        (
            {'stage': {'unreachable': True, 'msg': 'ssh: no route'}},
            _outcome.STAGE,
            'staging failed on host h2: ssh: no route',
        ),
        (
            {'prepared': '', **FAILED_HOOK},
            _outcome.PREPARE,
            'host h2 failed in the pre-activation steps: Run the hook: hook said no',
        ),
        (
            {'prepared': 'earlier-run', 'failed_task': None, 'failed_result': None},
            _outcome.PREPARE,
            'host h2 failed in the pre-activation steps: unknown task: see its error above',
        ),
    ],
)
def test_pre_blocker_causes(host_state, cause, msg):
    found = _outcome.blockers(phase='pre', plan=plan(), states={'h1': state(), 'h2': state(**host_state)})
    assert found == [{'host': 'h2', 'cause': cause, 'msg': msg}]


def test_pre_blockers_none_when_every_host_is_ready():
    assert _outcome.blockers(phase='pre', plan=plan(), states={'h1': state(), 'h2': state()}) == []


def test_live_release_never_blocks():
    live = {'stage': {'live': True, 'changed': False}, 'prepared': None, 'switch': None}
    for phase in ('pre', 'post'):
        assert _outcome.blockers(phase=phase, plan=plan(), states={'h1': state(), 'h2': live}) == []


def test_without_pre_steps_an_unprepared_host_is_ready():
    assert (
        _outcome.blockers(phase='pre', plan=plan(pre=False), states={'h1': state(prepared=None), 'h2': state()}) == []
    )


def test_failed_migration_is_named_once():
    migrate = {'changed': True, 'rc': 3, 'msg': 'non-zero return code', 'stderr_lines': [f'line {i}' for i in range(7)]}
    stopped = {
        'prepared': None,
        'migrate': migrate,
        'failed_task': {'name': 'Stop when the migrations failed'},
        'failed_result': {'failed': True, 'msg': 'x'},
    }
    found = _outcome.blockers(
        phase='pre', plan=plan(migrate_host='h1'), states={'h1': state(**stopped), 'h2': state(**stopped)}
    )
    assert found == [
        {
            'host': 'h1',
            'cause': _outcome.MIGRATE,
            'msg': 'migrations failed on host h1: non-zero return code (rc 3): '
            'line 2 / line 3 / line 4 / line 5 / line 6',
        }
    ]


@pytest.mark.parametrize('migrate', [{'skipped': True}, {'rc': 0, 'changed': True}, None])
def test_migration_that_did_not_fail_is_not_the_cause(migrate):
    host = state(prepared=None, migrate=migrate, **FAILED_HOOK)
    found = _outcome.blockers(phase='pre', plan=plan(migrate_host='h1'), states={'h1': host, 'h2': state()})
    assert [r['cause'] for r in found] == [_outcome.PREPARE]


def test_blockers_follow_the_batch_order_and_missing_hosts_count():
    found = _outcome.blockers(
        phase='pre', plan=plan(batch=['h2', 'h1', 'h9']), states={'h1': state(stage=None), 'h2': state()}
    )
    assert [(r['host'], r['cause']) for r in found] == [('h1', _outcome.STAGE), ('h9', _outcome.STAGE)]


# --- after the switch -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('host_state', 'cause', 'msg'),
    [
        ({'switch': None}, _outcome.SWITCH, 'switch failed on host h2: it did not switch'),
        ({'switch': {'skipped': True}}, _outcome.SWITCH, 'switch failed on host h2: it did not switch'),
        (
            {'switch': {**SWITCHED, 'token': 'earlier-run'}},
            _outcome.SWITCH,
            'switch failed on host h2: it did not switch',
        ),
        (
            {'switch': {'failed': True, 'token': TOKEN, 'msg': 'lock lost'}},
            _outcome.SWITCH,
            'switch failed on host h2: lock lost',
        ),
        (
            {
                'verified': None,
                'failed_task': {'name': 'Check the application URL after the switch'},
                'failed_result': {'failed': True, 'msg': 'Status code was 500'},
            },
            _outcome.VERIFY,
            'post-activation steps failed on host h2: Check the application URL after the switch: Status code was 500',
        ),
    ],
)
def test_post_blocker_causes(host_state, cause, msg):
    found = _outcome.blockers(phase='post', plan=plan(), states={'h1': state(), 'h2': state(**host_state)})
    assert found == [{'host': 'h2', 'cause': cause, 'msg': msg}]


def test_without_checks_an_unverified_host_passes():
    assert (
        _outcome.blockers(phase='post', plan=plan(checks=False), states={'h1': state(verified=None), 'h2': state()})
        == []
    )


def test_unknown_phase():
    with pytest.raises(KeyError):
        _outcome.blockers(phase='later', plan=plan(), states={})


# --- messages of failed results -------------------------------------------------------------------


@pytest.mark.parametrize(
    ('result', 'expected'),
    [
        ({'failed': True, 'msg': 'boom'}, 'boom'),
        ({'failed': True}, 'see its error above'),
        (None, 'see its error above'),
        (
            {
                'failed': True,
                'msg': 'One or more items failed',
                'results': [
                    {'item': 'nginx', 'changed': True},
                    {
                        '__release_service': 'php-fpm',
                        'ansible_loop_var': '__release_service',
                        'failed': True,
                        'msg': 'Service is in unknown state',
                    },
                    {'failed': True, 'msg': 'Could not find the requested service x', 'item': 'x'},
                ],
            },
            'php-fpm: Service is in unknown state; x: Could not find the requested service x',
        ),
        (
            {'failed': True, 'msg': 'One or more items failed', 'results': [{'failed': False}]},
            'One or more items failed',
        ),
    ],
)
def test_result_message(result, expected):
    assert _outcome.result_message(result) == expected


@pytest.mark.parametrize(
    ('result', 'expected'),
    [
        (
            {'rc': 1, 'msg': 'non-zero return code', 'stderr_lines': ['no such table']},
            'reload failed on host h1: non-zero return code (rc 1): no such table',
        ),
        (
            {'msg': '[Errno 2] No such file or directory'},
            'reload failed on host h1: [Errno 2] No such file or directory (rc none)',
        ),
        ({'rc': 2, 'stderr_lines': []}, 'reload failed on host h1:  (rc 2)'),
    ],
)
def test_command_failure(result, expected):
    assert _outcome.command_failure(result, what='reload', host='h1') == expected


# --- the rescue -----------------------------------------------------------------------------------


def test_rescue_before_the_switch_uses_the_gate():
    gate = {
        'token': TOKEN,
        'blockers': [{'host': 'h2', 'cause': _outcome.STAGE, 'msg': 'staging failed on host h2: x'}],
    }
    found = _outcome.outcome(host='h1', plan=plan(), state=state(switch={'skipped': True}, gate=gate, post_gate=gate))
    assert found['switched'] is False and found['rollback_target'] == ''
    assert found['reasons'] == gate['blockers'] and found['reason'] == 'staging failed on host h2: x'
    assert found['holding'] is True and found['mark_failed'] is True
    assert _outcome.failed_reason(result=found) == 'not switched: staging failed on host h2: x'
    assert _outcome.final_message(plan=plan(), result=found) == (
        'release v2 was not switched on any host: staging failed on host h2: x; current still points at v1 on host h1'
    )


def test_rescue_after_the_switch_uses_the_post_gate_and_rolls_back():
    pre = {'token': TOKEN, 'blockers': []}
    post = {
        'token': TOKEN,
        'blockers': [{'host': 'h2', 'cause': _outcome.VERIFY, 'msg': 'post-activation steps failed: 500'}],
    }
    found = _outcome.outcome(host='h1', plan=plan(), state=state(gate=pre, post_gate=post))
    assert found['switched'] is True and found['rollback_target'] == 'v1'
    assert found['reason'] == 'post-activation steps failed: 500'
    assert found['mark_failed'] is False, 'the rollback marks the release failed'
    rollback = {'changed': True, 'current': 'v1', 'rolled_back_from': 'v2'}
    assert _outcome.final_message(plan=plan(), result=found, rollback=rollback) == (
        'release v2 failed after the switch: post-activation steps failed: 500; rolled back to v1: current points at '
        'v1 on host h1, release v2 is marked failed'
    )
    after = _outcome.final_message(
        plan=plan(), result=found, rollback=rollback, after_rollback='Reload failed on host h1: x'
    )
    assert after.endswith('release v2 is marked failed; after the rollback, Reload failed on host h1: x')


def test_gates_of_an_earlier_run_do_not_count():
    old = {'token': 'earlier', 'blockers': [{'host': 'h2', 'cause': _outcome.STAGE, 'msg': 'old news'}]}
    found = _outcome.outcome(
        host='h1', plan=plan(), state=state(gate=old, post_gate=old, stage={'failed': True, 'msg': 'disk full'})
    )
    assert found['reasons'] == [{'host': 'h1', 'cause': _outcome.STAGE, 'msg': 'staging failed on host h1: disk full'}]


def test_own_failure_after_the_switch_on_a_single_host():
    host = state(
        verified=None,
        failed_task={'name': 'Check the application URL after the switch'},
        failed_result={'failed': True, 'msg': 'Status code was -1'},
    )
    found = _outcome.outcome(host='h1', plan=plan(batch=['h1']), state=host)
    assert found['reasons'] == [
        {
            'host': 'h1',
            'cause': _outcome.VERIFY,
            'msg': 'Check the application URL after the switch failed on host h1: Status code was -1',
        }
    ]
    assert found['switched'] is True and found['rollback_target'] == 'v1'


def test_first_deploy_that_fails_after_the_switch_has_nothing_to_roll_back_to():
    host = state(switch={**SWITCHED, 'current_before': None}, **FAILED_HOOK)
    found = _outcome.outcome(host='h1', plan=plan(batch=['h1']), state=host)
    assert found['rollback_target'] == '' and found['mark_failed'] is True
    assert _outcome.failed_reason(result=found).startswith('was live without a previous release to roll back to: ')
    assert _outcome.final_message(plan=plan(), result=found, rollback={'skipped': True}).endswith(
        'not rolled back: there is no previous release, current still points at it on host h1 (marked failed)'
    )


def test_reactivated_release_is_not_rolled_back_to_itself():
    host = state(switch={**SWITCHED, 'current_before': 'v2'}, **FAILED_HOOK)
    assert _outcome.outcome(host='h1', plan=plan(), state=host)['rollback_target'] == ''


def test_reactivated_release_is_not_marked_failed_when_not_switched():
    host = state(stage={**STAGED, 'created': False}, switch={'skipped': True}, prepared=None, **FAILED_HOOK)
    assert _outcome.outcome(host='h1', plan=plan(), state=host)['mark_failed'] is False


@pytest.mark.parametrize(
    ('host_state', 'host_plan', 'cause', 'msg'),
    [
        (
            {'stage': {'failed': True, 'msg': 'lock held by bob'}},
            {},
            _outcome.STAGE,
            'staging failed on host h1: lock held by bob',
        ),
        (
            {
                'prepared': None,
                'switch': {'skipped': True},
                'migrate': {'rc': 1, 'msg': 'non-zero return code', 'stderr_lines': ['no such table']},
            },
            {'migrate_host': 'h1'},
            _outcome.MIGRATE,
            'migrations failed on host h1: non-zero return code (rc 1): no such table',
        ),
        (
            {'prepared': None, 'switch': {'skipped': True}, **FAILED_HOOK},
            {},
            _outcome.PREPARE,
            'Run the hook failed on host h1: hook said no',
        ),
        (
            {
                'switch': {'failed': True, 'msg': 'lock lost'},
                'failed_task': {'name': 'Switch current to release v2'},
                'failed_result': {'failed': True, 'msg': 'lock lost'},
            },
            {},
            _outcome.SWITCH,
            'Switch current to release v2 failed on host h1: lock lost',
        ),
        (
            {'switch': {'skipped': True}, 'failed_task': {'name': 'Agree'}, 'failed_result': {'failed': True}},
            {'pre': False},
            _outcome.ERROR,
            'Agree failed on host h1: unknown error',
        ),
        ({'verified': None, **FAILED_HOOK}, {}, _outcome.VERIFY, 'Run the hook failed on host h1: hook said no'),
    ],
)
def test_every_own_failure(host_state, host_plan, cause, msg):
    found = _outcome.outcome(host='h1', plan=plan(batch=['h1'], **host_plan), state=state(**host_state))
    assert found['reasons'] == [{'host': 'h1', 'cause': cause, 'msg': msg}]


# --- the lock -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('host_state', 'check_mode', 'expected'),
    [
        ({'switch': {**SWITCHED, 'unlocked': False}}, False, True),
        ({'switch': {**SWITCHED, 'unlocked': True}}, False, False),
        ({'switch': {**SWITCHED, 'unlocked': True, 'token': 'earlier'}}, False, True),
        ({'switch': {'skipped': True}, 'marked': {'unlocked': True, 'token': TOKEN}}, False, False),
        ({'unlock': {'changed': True, 'token': TOKEN}}, False, False),
        ({'unlock': {'failed': True, 'token': TOKEN}}, False, True),
        ({'unlock': {'skipped': True}}, False, True),
        ({'unlock': {'changed': True, 'token': 'earlier'}}, False, True),
        ({'stage': {'failed': True}}, False, False),
        ({'stage': None}, False, False),
        ({'stage': {'live': True}}, False, False),
        ({}, True, False),
    ],
)
def test_holding(host_state, check_mode, expected):
    assert _outcome.holding(plan=plan(), state=state(**host_state), check_mode=check_mode) is expected


# --- AWX stats ------------------------------------------------------------------------------------


def test_stats_name_the_switched_hosts_of_every_batch():
    states = {
        'h1': state(),
        'h2': state(switch={**SWITCHED, 'current_before': 'v0'}),
        'h3': state(switch={'skipped': True}),
        'h4': state(switch={**SWITCHED, 'token': 'earlier'}),
    }
    found = _outcome.stats(plan=plan(hosts=['h1', 'h2', 'h3', 'h4']), states=states)
    assert found == {'release_deployed_id': 'v2', 'release_previous_id': 'v1', 'release_switched_hosts': ['h1', 'h2']}


def test_stats_of_a_first_deploy_have_an_empty_previous_id():
    found = _outcome.stats(plan=plan(), states={'h1': state(switch={**SWITCHED, 'current_before': None})})
    assert found == {'release_deployed_id': 'v2', 'release_previous_id': '', 'release_switched_hosts': ['h1']}


# --- reading host variables -----------------------------------------------------------------------


class Undefined:
    """Stands in for Ansible's undefined values, which the pure module recognises by type name."""


def test_host_state_reads_the_role_variables():
    values = {'release_stage_result': STAGED, '__release_prepared': TOKEN, 'release_switch_result': Undefined()}
    found = _outcome.host_state(values)
    assert found['stage'] == STAGED and found['prepared'] == TOKEN
    assert found['switch'] is None and found['failed_task'] is None
    assert set(found) == set(_outcome.STATE_VARS)


def test_states_of_unknown_hosts_are_empty():
    class Broken(dict):
        def get(self, key, default=None):
            raise RuntimeError('template error')

    found = _outcome.states({'h1': Broken()}, ['h1', 'h2'])
    assert all(value is None for value in found['h1'].values())
    assert all(value is None for value in found['h2'].values())
