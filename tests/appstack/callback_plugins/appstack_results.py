# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only callback: appends every task result of a run to $APPSTACK_RESULTS_FILE as JSON lines.

{"task": name, "status": "ok"|"failed"|"ignored"|"skipped"|"unreachable", "msg": ..., "changed": ...}.
Enabled by tests/appstack/_stack.py; it is not part of the collection.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: appstack_results
type: aggregate
short_description: record task results for the atomic.deploy appstack suite
description:
  - Test helper; see the module docstring.
options: {}
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'appstack_results'
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, status: str, result) -> None:
        path = os.environ.get('APPSTACK_RESULTS_FILE')
        if not path:
            return
        data = getattr(result, 'result', None)
        if data is None:
            data = getattr(result, '_result', {}) or {}
        name = result.task_name if hasattr(result, 'task_name') else result._task.get_name()
        record = {'task': name, 'status': status, 'msg': data.get('msg'), 'changed': bool(data.get('changed'))}
        with open(path, 'a', encoding='utf-8') as handle:
            handle.write(json.dumps(record, default=str) + '\n')

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._write('ignored' if ignore_errors else 'failed', result)

    def v2_runner_on_ok(self, result) -> None:
        self._write('ok', result)

    def v2_runner_on_skipped(self, result) -> None:
        self._write('skipped', result)

    def v2_runner_on_unreachable(self, result) -> None:
        self._write('unreachable', result)
