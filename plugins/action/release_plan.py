# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.atomic.deploy.plugins.plugin_utils import _plan

# The fact on localhost that carries the plan from one serial batch to the next.
FACT = '__release_run'


def previous_plan(task_vars: dict) -> dict | None:
    """The plan an earlier batch left on localhost, if any."""
    hostvars = task_vars.get('hostvars')
    if hostvars is None:
        return None
    try:
        localhost = hostvars['localhost']
        facts = localhost.get('ansible_facts') or {}
        found = facts.get(FACT)
    except Exception:  # HostVars raises several kinds for an unknown host or an undefined value
        return None
    return dict(found) if isinstance(found, dict) else None


class ActionModule(ActionBase):
    """Check the role variables once and plan the deploy run, on the controller.

    Reads the role variables (``_plan.VARIABLES``) from the task vars, the way
    ansible.builtin.validate_argument_spec does, so the role needs one plain task. The plan is
    returned as ``plan`` and as the fact ``__release_run`` (for ``delegate_facts`` on localhost, where
    the next serial batch finds it).
    """

    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset()

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        values = {name: task_vars[name] for name in _plan.VARIABLES if name in task_vars}
        values = self._templar.template(values)
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
        result.update(changed=False, plan=plan, ansible_facts={FACT: plan})
        return result
