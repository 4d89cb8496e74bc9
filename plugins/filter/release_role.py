# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filters of the release role, one FilterModule (like ansible-core's filter/core.py).

Each filter is a thin wrapper over pure code in plugin_utils (``_outcome``, ``_plan``, ``_status``); its
documentation is the ``<name>.yml`` file beside this one, as ansible-core and community.general do.
"""

from __future__ import annotations

import time

from ansible.errors import AnsibleFilterError
from ansible_collections.atomic.deploy.plugins.plugin_utils import _outcome, _plan, _status, _switch


def release_argv(command, name='command'):
    try:
        return _plan.command_argv(command, name=str(name))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def release_blockers(hostvars, plan, phase):
    if phase not in ('pre', 'post'):
        raise AnsibleFilterError(f'release_blockers: phase must be pre or post, got {phase!r}')
    return _outcome.blockers(phase=phase, plan=plan, states=_outcome.states(hostvars, plan['batch']))


def release_command_failure(result, what, host):
    return _outcome.command_failure(result, what=str(what), host=str(host))


def release_failure_message(outcome, plan, rollback=None, after_rollback=''):
    return _outcome.final_message(plan=plan, result=outcome, rollback=rollback, after_rollback=after_rollback or '')


def release_holding(plan, stage, results, check_mode=False):
    switch, marked, unlock = (list(results or []) + [None, None, None])[:3]
    state = {'stage': stage, 'switch': switch, 'marked': marked, 'unlock': unlock}
    return _outcome.holding(plan=plan, state=state, check_mode=bool(check_mode))


def release_outcome(hostvars, plan, host, check_mode=False):
    state = _outcome.states(hostvars, [host])[host]
    result = _outcome.outcome(host=host, plan=plan, state=state, check_mode=bool(check_mode))
    result['failed_reason'] = _outcome.failed_reason(result=result)
    return result


def release_result_message(result):
    return _outcome.result_message(result)


def release_stats(hostvars, plan):
    return _outcome.stats(plan=plan, states=_outcome.states(hostvars, plan['hosts']))


def release_status_lines(result, root):
    return _status.status_lines(result, root=str(root))


def release_switch_instant(hostvars, plan):
    batch = list(plan['batch'])
    stage = [state['stage'] for state in _outcome.states(hostvars, batch).values()]
    return _switch.instant(now=time.time(), plan=plan, stage_results=stage)


def release_switch_delay(delay, batch, forks):
    try:
        return _plan.switch_delay(delay, batch=int(batch), forks=int(forks))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """The release role's filters."""

    def filters(self):
        return {
            'release_argv': release_argv,
            'release_blockers': release_blockers,
            'release_command_failure': release_command_failure,
            'release_failure_message': release_failure_message,
            'release_holding': release_holding,
            'release_outcome': release_outcome,
            'release_result_message': release_result_message,
            'release_stats': release_stats,
            'release_status_lines': release_status_lines,
            'release_switch_delay': release_switch_delay,
            'release_switch_instant': release_switch_instant,
        }
