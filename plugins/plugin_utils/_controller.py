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
import re
import shlex
import socket

from ansible import context
from ansible.plugins.action import ActionBase
from ansible_collections.atomic.deploy.plugins.module_utils import _python

# The modules need Python 3.8 on the target; on 2.7 and 3.6, which ansible-core 2.16 still
# supports, our code does not compile, so the module cannot say so itself (module_utils/_python.py).
MIN_TARGET_PYTHON = _python.MINIMUM
# What an older interpreter leaves in a failed module result: a SyntaxError from compiling our code,
# or ansible-core's own minimum check in basic.py (2.17-2.19 and 2.20+ word it differently).
_OLD_PYTHON_SIGNS = ('SyntaxError', 'requires a minimum of Python', 'or newer on the target')
# A traceback names the interpreter's library directory: .../lib/python3.7/runpy.py
_LIBRARY_VERSION = re.compile(r'/python(\d+)\.(\d+)/')
_PROBE = 'import sys; sys.stdout.write("%d.%d" % sys.version_info[:2])'


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
    job = ci_job_url(os.environ)
    if job:
        owner['ci_job_url'] = job
    return owner


def ci_job_url(environ) -> str | None:
    """The web page of the CI job that runs ansible-playbook (GitLab, GitHub Actions, Jenkins), if any:
    after a cancelled job, whoever finds its lock can see which job left it."""
    if environ.get('CI_JOB_URL'):
        return str(environ['CI_JOB_URL'])
    if environ.get('GITHUB_RUN_ID') and environ.get('GITHUB_REPOSITORY'):
        server = environ.get('GITHUB_SERVER_URL') or 'https://github.com'
        return f'{server}/{environ["GITHUB_REPOSITORY"]}/actions/runs/{environ["GITHUB_RUN_ID"]}'
    if environ.get('BUILD_URL'):
        return str(environ['BUILD_URL'])
    return None


def failure_text(result: dict) -> str | None:
    """The text of a failed module result that hints at a too old target Python, else None."""
    if not result.get('failed') or 'python_required' in result:  # no hint, or the module said it already
        return None
    text = '\n'.join(str(result.get(key) or '') for key in ('module_stderr', 'module_stdout', 'msg', 'exception'))
    return text if any(sign in text for sign in _OLD_PYTHON_SIGNS) else None


def version_in_traceback(text: str) -> tuple[int, int] | None:
    found = _LIBRARY_VERSION.search(text)
    return (int(found.group(1)), int(found.group(2))) if found else None


class TargetPythonActionBase(ActionBase):
    """Run the module of the same name; a failure that comes from a target Python older than the
    modules need becomes one clear message instead of a traceback."""

    TRANSFERS_FILES = False

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

    def module_args(self, task_vars: dict) -> dict:
        return dict(self._task.args)

    def _execute_module(self, *args, **kwargs):
        result = super()._execute_module(*args, **kwargs)
        text = failure_text(result)
        if text is None:
            return result
        interpreter = self._target_interpreter(kwargs.get('task_vars') or {})
        version = version_in_traceback(text) or self._probe_version(interpreter)
        if version is None or version >= MIN_TARGET_PYTHON:
            return result
        explained = {key: value for key, value in result.items() if key not in ('exception', 'module_stdout')}
        explained.update(_python.refusal(version_info=version, executable=interpreter))
        return explained

    def _target_interpreter(self, task_vars: dict) -> str:
        if self._discovered_interpreter:
            return str(self._discovered_interpreter)
        host_vars = task_vars
        if self._task.delegate_to:
            host_vars = (task_vars.get('ansible_delegated_vars') or {}).get(self._task.delegate_to) or task_vars
        value = host_vars.get('ansible_python_interpreter')
        if value:
            return str(self._templar.template(value))
        facts = host_vars.get('ansible_facts') or {}
        return str(facts.get('discovered_interpreter_python') or 'python')

    def _probe_version(self, interpreter: str) -> tuple[int, int] | None:
        """One extra command, run only after such a failure: ask the interpreter its version."""
        command = ' '.join([*(shlex.quote(part) for part in shlex.split(interpreter)), '-c', shlex.quote(_PROBE)])
        try:
            probe = self._low_level_execute_command(command)
        except Exception:  # a connection problem: keep the original failure
            return None
        found = re.fullmatch(r'(\d+)\.(\d+)', str(probe.get('stdout', '')).strip())
        return (int(found.group(1)), int(found.group(2))) if found and probe.get('rc') == 0 else None


class OwnerActionBase(TargetPythonActionBase):
    """Run the module of the same name with ``owner`` filled in from the controller."""

    TRANSFERS_FILES = False

    def module_args(self, task_vars: dict) -> dict:
        args = dict(self._task.args)
        owner = controller_owner(task_vars)
        owner.update(args.get('owner') or {})
        args['owner'] = owner
        return args
