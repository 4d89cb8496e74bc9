# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gates and the outcome of a deploy: why a batch cannot switch or must roll back, what a
failed host rolls back to, whether it still holds the lock, and what the run reports.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice.

Pure functions over plain dicts. Each host is described by a *state*: the results the role
registered on it and the markers it set (see :data:`STATE_VARS`). A reason is a record
``{host, cause, msg}``; causes are the constants below, so the role's flow branches on the cause,
never on the text of a message.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.atomic.deploy.plugins.plugin_utils import _switch

# Causes of a blocker record.
STAGE = 'stage'  # staging failed (fetch, shared links, lock held by another deploy ...)
MIGRATE = 'migrate'  # the migration command failed
PREPARE = 'prepare'  # a pre-activation step (hook, health check command) failed
SWITCH = 'switch'  # the switch of current failed, or did not happen
VERIFY = 'verify'  # a post-activation step (reload, hook, URL check) failed
ERROR = 'error'  # any other task failed
PRE_CAUSES = (STAGE, MIGRATE, PREPARE)
POST_CAUSES = (SWITCH, VERIFY)

# state key -> the host variable the role keeps it in.
STATE_VARS = {
    'stage': 'release_stage_result',
    'switch': 'release_switch_result',
    'migrate': 'release_migrate_result',
    'rollback': 'release_rollback_result',
    'prepared': '__release_prepared',
    'verified': '__release_verified',
    'gate': '__release_gate',
    'post_gate': '__release_post_gate',
    'marked': '__release_failed_result',
    'unlock': '__release_unlock_result',
    'failed_task': 'ansible_failed_task',
    'failed_result': 'ansible_failed_result',
}


def _map(value) -> dict:
    return value if isinstance(value, Mapping) else {}


def failed(result) -> bool:
    """Ansible's ``is failed`` (and unreachable) for a registered result."""
    result = _map(result)
    return bool(result.get('failed')) or bool(result.get('unreachable'))


def skipped(result) -> bool:
    return bool(_map(result).get('skipped'))


def result_message(result, *, default: str = 'see its error above') -> str:
    """The message of a failed result; for a loop, the message of each failed item.

    A loop's own ``msg`` (``One or more items failed``) says nothing: the items carry the cause. A
    command's exit status and the last lines of its stderr are added to its ``non-zero return code``.
    """
    result = _map(result)
    items = result.get('results')
    if isinstance(items, list):
        found = []
        for item in items:
            item = _map(item)
            if not failed(item):
                continue
            label = item.get(item.get('ansible_loop_var') or 'item')
            text = result_message(item, default='failed')
            found.append(f'{label}: {text}' if label not in (None, '') else text)
        if found:
            return '; '.join(found)
    text = _plain_message(result, default=default)
    rc = result.get('rc')
    if isinstance(rc, int) and not isinstance(rc, bool) and rc != 0:
        text += f' (rc {rc}){_stderr_tail(result)}'
    return text


def _plain_message(result: dict, *, default: str) -> str:
    msg = result.get('msg')
    return default if msg in (None, '') else str(msg)


def _stderr_tail(result: dict) -> str:
    lines = result.get('stderr_lines') or []
    if isinstance(lines, list) and lines:
        return ': ' + ' / '.join(str(line) for line in lines[-5:])
    return ''


def command_failure(result, *, what: str, host: str) -> str:
    """``<what> failed on host <host>: <msg> (rc N): <last lines of stderr>``."""
    result = _map(result)
    rc = result.get('rc')
    text = f'{_plain_message(result, default="")} (rc {"none" if rc is None else rc}){_stderr_tail(result)}'
    return f'{what} failed on host {host}: {text}'


def _record(*, host: str, cause: str, msg: str) -> dict:
    return {'host': host, 'cause': cause, 'msg': msg}


def _task_name(state: dict) -> str:
    return str(_map(state.get('failed_task')).get('name') or 'unknown task')


def migration_failed(*, plan: dict, state: dict) -> bool:
    """The migration of this batch ran and failed (its result is registered on every host)."""
    result = _map(state.get('migrate'))
    return bool(plan.get('migrate_host')) and bool(result) and not skipped(result) and result.get('rc') != 0


def stage_blocker(*, host: str, state: dict) -> dict | None:
    stage = state.get('stage')
    if not isinstance(stage, Mapping) or not stage or failed(stage):
        return _record(
            host=host,
            cause=STAGE,
            msg=f'staging failed on host {host}: {result_message(stage, default="it did not stage")}',
        )
    return None


def migrate_blocker(*, plan: dict, state: dict) -> dict:
    host = plan['migrate_host']
    return _record(host=host, cause=MIGRATE, msg=command_failure(state.get('migrate'), what='migrations', host=host))


def pre_blocker(*, host: str, plan: dict, state: dict) -> dict | None:
    """Why ``host`` cannot switch, read at the gate before the switch (None: it is ready)."""
    found = stage_blocker(host=host, state=state)
    if found or _map(state.get('stage')).get('live'):
        return found
    if plan.get('pre') and state.get('prepared') != plan['token']:
        # Every host stops when the migrations failed: that is the one reason, named once.
        if migration_failed(plan=plan, state=state):
            return migrate_blocker(plan=plan, state=state)
        return _record(
            host=host,
            cause=PREPARE,
            msg=f'host {host} failed in the pre-activation steps: {_task_name(state)}: '
            f'{result_message(state.get("failed_result"))}',
        )
    return None


def post_blocker(*, host: str, plan: dict, state: dict) -> dict | None:
    """Why ``host`` must roll back, read after the switch (None: it switched and passed its checks)."""
    if _map(state.get('stage')).get('live'):
        return None
    switch = _map(state.get('switch'))
    if switch.get('token') != plan['token'] or failed(switch):
        return _record(
            host=host,
            cause=SWITCH,
            msg=f'switch failed on host {host}: {result_message(switch, default="it did not switch")}',
        )
    if plan.get('checks') and state.get('verified') != plan['token']:
        return _record(
            host=host,
            cause=VERIFY,
            msg=f'post-activation steps failed on host {host}: {_task_name(state)}: '
            f'{result_message(state.get("failed_result"))}',
        )
    return None


def _unique(records: list[dict]) -> list[dict]:
    seen = set()
    out = []
    for record in records:
        key = (record['host'], record['cause'], record['msg'])
        if key not in seen:
            seen.add(key)
            out.append(record)
    return out


def blockers(*, phase: str, plan: dict, states: Mapping) -> list[dict]:
    """Every reason, host by host in batch order, why the batch cannot switch (``phase='pre'``) or
    must roll back (``phase='post'``). ``states``: host -> state."""
    check = {'pre': pre_blocker, 'post': post_blocker}[phase]
    found = []
    for host in plan['batch']:
        record = check(host=host, plan=plan, state=_map(states.get(host)))
        if record:
            found.append(record)
    return _unique(found)


def switched(*, plan: dict, state: dict) -> bool:
    """This host switched current to the release in this run."""
    switch = _map(state.get('switch'))
    return switch.get('token') == plan['token'] and switch.get('switched_at') is not None and not failed(switch)


def rollback_target(*, plan: dict, state: dict) -> str:
    """The release to roll back to: the one current pointed at before this run's switch ('' for none)."""
    if not switched(plan=plan, state=state):
        return ''
    before = _map(state.get('switch')).get('current_before')
    return '' if before in (None, '', plan['id']) else str(before)


def _unlocked(result, *, token: str) -> bool:
    result = _map(result)
    return bool(result.get('unlocked')) and result.get('token') == token


def holding(*, plan: dict, state: dict, check_mode: bool = False) -> bool:
    """This host still holds the deploy lock this run took."""
    token = plan['token']
    stage = state.get('stage')
    if check_mode or not isinstance(stage, Mapping) or not stage or failed(stage):
        return False
    # A live release is not staged again: staging took no lock.
    if stage.get('live'):
        return False
    if _unlocked(state.get('switch'), token=token) or _unlocked(state.get('marked'), token=token):
        return False
    unlock = _map(state.get('unlock'))
    return not (unlock and not failed(unlock) and not skipped(unlock) and unlock.get('token') == token)


def own_failure(*, host: str, plan: dict, state: dict) -> dict:
    """The reason of this host's own failure, when no gate of the batch named one."""
    found = stage_blocker(host=host, state=state)
    if found:
        return found
    if migration_failed(plan=plan, state=state):
        return migrate_blocker(plan=plan, state=state)
    if switched(plan=plan, state=state):
        cause = VERIFY
    elif failed(state.get('switch')):
        cause = SWITCH
    else:
        cause = PREPARE if plan.get('pre') else ERROR
    text = result_message(state.get('failed_result'), default='unknown error')
    return _record(host=host, cause=cause, msg=f'{_task_name(state)} failed on host {host}: {text}')


def _gate_blockers(gate, *, token: str) -> list[dict]:
    gate = _map(gate)
    if gate.get('token') != token:
        return []
    return [dict(record) for record in gate.get('blockers') or [] if isinstance(record, Mapping)]


def outcome(*, host: str, plan: dict, state: dict, check_mode: bool = False) -> dict:
    """What a failed deploy does on ``host``: roll back or not, to what, why; and the lock."""
    token = plan['token']
    reasons = _gate_blockers(state.get('post_gate'), token=token) or _gate_blockers(state.get('gate'), token=token)
    if not reasons:
        reasons = [own_failure(host=host, plan=plan, state=state)]
    is_switched = switched(plan=plan, state=state)
    before = _map(state.get('stage')).get('current_before')
    return {
        'host': host,
        'switched': is_switched,
        'current_before': '' if before in (None, '') else str(before),
        'rollback_target': rollback_target(plan=plan, state=state),
        'holding': holding(plan=plan, state=state, check_mode=check_mode),
        'reasons': reasons,
        'reason': '; '.join(record['msg'] for record in reasons),
        # A staged release that the rollback does not mark failed is marked by the role.
        'mark_failed': bool(_map(state.get('stage')).get('created')) and not rollback_target(plan=plan, state=state),
    }


def failed_reason(*, result: dict) -> str:
    """The reason the role records when it marks the release failed."""
    prefix = 'was live without a previous release to roll back to: ' if result['switched'] else 'not switched: '
    return prefix + result['reason']


def final_message(*, plan: dict, result: dict, rollback=None, after_rollback: str = '') -> str:
    """The message a failed deploy ends with on every host: what failed and where, what was rolled
    back, where current points now, and what failed after the rollback."""
    release = plan['id']
    host = result.get('host') or 'this host'
    if not result['switched']:
        where = result.get('current_before') or 'nothing'
        text = f'release {release} was not switched on any host: {result["reason"]}'
        text += f'; current still points at {where} on host {host}'
    else:
        rollback = _map(rollback)
        text = f'release {release} failed after the switch: {result["reason"]}; '
        if rollback.get('changed') and not failed(rollback):
            now = rollback.get('current')
            text += f'rolled back to {now}: current points at {now} on host {host}, release {release} is marked failed'
        else:
            text += (
                f'not rolled back: there is no previous release, current still points at it on host {host}'
                ' (marked failed)'
            )
    if after_rollback:
        text += f'; after the rollback, {after_rollback}'
    return text


def stats(*, plan: dict, states: Mapping) -> dict:
    """The AWX artifacts of the run (``set_stats`` data): the hosts that switched to the release
    in any batch so far, the release that was current before on the first of them ('' for a first
    deploy), and, for this batch, the skew of the renames and the wait agreed before them (None
    when fewer than two hosts switched together)."""
    hosts = [h for h in plan['hosts'] if switched(plan=plan, state=_map(states.get(h)))]
    previous = []
    for host in hosts:
        before = _map(_map(states.get(host)).get('switch')).get('current_before')
        if before not in (None, '') and before not in previous:
            previous.append(str(before))
    batch = [_map(states.get(h)) for h in plan.get('batch') or () if h in hosts]
    gate = _map(batch[0].get('gate')) if batch else {}
    return {
        'release_deployed_id': plan['id'],
        'release_previous_id': previous[0] if previous else '',
        'release_switched_hosts': hosts,
        # The coordinated switch of this batch: the spread of the renames, and the wait agreed before it.
        'release_switch_skew': _switch.skew(_map(state.get('switch')) for state in batch),
        'release_switch_delay': gate.get('switch_delay') if gate.get('token') == plan.get('token') else None,
    }


def host_state(values) -> dict:
    """A host's state from its host variables (any mapping, such as ``hostvars[host]``)."""
    state = {}
    for key, name in STATE_VARS.items():
        try:
            value = values.get(name) if values is not None else None
        except Exception:  # an undefined or broken value counts as absent
            value = None
        state[key] = value if _defined(value) else None
    return state


def _defined(value) -> bool:
    # Ansible's Undefined types are not importable here (pure module): recognise them by name.
    return value is not None and 'Undefined' not in type(value).__name__


def states(hostvars, hosts) -> dict:
    """host -> state, for ``hosts`` read from ``hostvars`` (missing hosts get an empty state)."""
    found = {}
    for host in hosts:
        try:
            values = hostvars[host]
        except Exception:  # a host that is not in the inventory
            values = None
        found[host] = host_state(values)
    return found
