# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side helpers for the collection's action plugins.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice.
"""

from __future__ import annotations

import getpass
import os
import socket

from ansible import context
from ansible.plugins.action import ActionBase


def controller_owner(task_vars: dict) -> dict:
    """Who runs this deploy, as the controller knows it (AWX's extra vars win over the OS user)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    owner = {
        'user': task_vars.get('awx_user_name') or task_vars.get('tower_user_name') or user,
        'controller': socket.gethostname(),
    }
    # ansible-playbook passes its playbooks as a tuple; ad-hoc `ansible` puts the host pattern there.
    playbooks = (context.CLIARGS or {}).get('args')
    if isinstance(playbooks, (list, tuple)) and playbooks:
        owner['playbook'] = ','.join(os.path.basename(str(p)) for p in playbooks)
    elif isinstance(playbooks, str):
        owner['playbook'] = '(ad-hoc)'
    for key in ('awx_job_id', 'awx_job_template_name', 'awx_workflow_job_id'):
        value = task_vars.get(key) or task_vars.get(key.replace('awx_', 'tower_'))
        if value not in (None, ''):
            owner[key] = value
    return owner


class OwnerActionBase(ActionBase):
    """Run the module of the same name with ``owner`` filled in from the controller."""

    TRANSFERS_FILES = False

    def module_args(self, task_vars: dict) -> dict:
        args = dict(self._task.args)
        owner = controller_owner(task_vars)
        owner.update(args.get('owner') or {})
        args['owner'] = owner
        return args

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        result.update(
            self._execute_module(
                module_name=self._task.resolved_action, module_args=self.module_args(task_vars), task_vars=task_vars
            )
        )
        return result
