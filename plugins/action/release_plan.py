# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.atomic.deploy.plugins.plugin_utils import _controller, _plan

# The result every host of a batch registers (run_once registers it on each of them).
REGISTER = '__release_plan'


def previous_plan(task_vars: dict) -> dict | None:
    """The plan an earlier serial batch of this play registered, if any.

    Serial batches take the play's hosts in order, so the host just before this batch's first host
    ran the latest batch: its plan lists every host of the run so far. Hosts are read from the nearest
    one backwards, and only the hosts before this batch: a run in one batch reads none.
    """
    hostvars = task_vars.get('hostvars')
    play = [str(host) for host in task_vars.get('ansible_play_hosts_all') or []]
    batch = {str(host) for host in task_vars.get('ansible_play_batch') or []}
    if hostvars is None or not batch:
        return None
    first = min((play.index(host) for host in batch if host in play), default=len(play))
    for host in reversed(play[:first]):
        try:
            registered = hostvars[host].get(REGISTER)
        except Exception:  # HostVars raises several kinds for an unknown host or an undefined value
            continue
        plan = registered.get('plan') if isinstance(registered, dict) else None
        if isinstance(plan, dict) and list(plan.get('play') or []) == play:
            return dict(plan)
    return None


class ActionModule(ActionBase):
    """Check the role variables once and plan the deploy run, on the controller.

    Reads the role variables (``_plan.VARIABLES``) from the task vars, the way
    ansible.builtin.validate_argument_spec does, so the role needs one plain task (``run_once``,
    registered as ``__release_plan`` on every host of the batch). The next serial batch finds the
    plan on the hosts of the batch before it (``previous_plan``).
    """

    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(('overrides',))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        values = {name: task_vars[name] for name in _plan.VARIABLES if name in task_vars}
        values = self._templar.template(values)
        overrides = self._task.args.get('overrides') or {}
        if not isinstance(overrides, dict):
            result.update(
                failed=True, msg=f'overrides must be a dict of role variables, got {type(overrides).__name__}'
            )
            return result
        unknown = sorted(set(overrides) - set(_plan.VARIABLES))
        if unknown:
            result.update(failed=True, msg=f'overrides names variables the plan does not read: {", ".join(unknown)}')
            return result
        values.update(overrides)
        try:
            plan = _plan.make_plan(
                values=values,
                play_hosts=list(task_vars.get('ansible_play_hosts_all') or []),
                batch=list(task_vars.get('ansible_play_batch') or []),
                forks=int(task_vars.get('ansible_forks') or 5),
                previous=previous_plan(task_vars),
            )
        except _plan.PlanError as exc:
            result.update(failed=True, msg=str(exc), problems=exc.problems)
            return result
        # Who runs the deploy, for the notification (release_notify_url).
        plan['by'] = _controller.controller_owner(task_vars)
        result.update(changed=False, plan=plan)
        return result
