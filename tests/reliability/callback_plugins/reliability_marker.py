# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only callback: records the playbook's progress as JSON lines, and can pause at a task.

Enabled by the reliability harness (tests/reliability/_harness.py) through
ANSIBLE_CALLBACK_PLUGINS + ANSIBLE_CALLBACKS_ENABLED=reliability_marker. It is not part of the collection.

Environment:
  RELIABILITY_MARKER_FILE   JSON lines are appended here: {"event": "task", "n": N, "name": ...} when the
                            Nth task (handlers included) starts, {"event": "failed"|"ok", ...} per host result,
                            {"event": "end"} when the play recap is reached.
  RELIABILITY_PAUSE_AT      N: after writing the Nth task's line, block until RELIABILITY_GO_FILE exists
                            (at most 120 s). The task has not been sent to any host yet, so a harness that kills
                            the process group now kills it exactly at the boundary between task N-1 and task N.
  RELIABILITY_GO_FILE       see above.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: reliability_marker
type: aggregate
short_description: record task starts and results for the atomic.deploy reliability tests
description:
  - Test helper; see the module docstring.
options: {}
"""

_PAUSE_LIMIT = 120.0


def _text(value) -> str:
    event = getattr(value, 'event', None)
    msg = getattr(event, 'msg', None)
    return str(msg if msg is not None else value)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'reliability_marker'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._path = os.environ.get('RELIABILITY_MARKER_FILE')
        pause = os.environ.get('RELIABILITY_PAUSE_AT', '')
        self._pause_at = int(pause) if pause.isdigit() else None
        self._go = os.environ.get('RELIABILITY_GO_FILE')
        self._count = 0

    def _write(self, record: dict) -> None:
        if not self._path:
            return
        record['t'] = time.time()
        line = json.dumps(record, sort_keys=True, default=str) + '\n'
        # One O_APPEND write per record: the harness reads the file while we run.
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode('utf-8'))
        finally:
            os.close(fd)

    def _task_start(self, task, handler: bool) -> None:
        self._count += 1
        self._write(
            {'event': 'task', 'n': self._count, 'name': task.get_name(), 'action': task.action, 'handler': handler}
        )
        if self._pause_at == self._count and self._go:
            deadline = time.monotonic() + _PAUSE_LIMIT
            while not os.path.exists(self._go) and time.monotonic() < deadline:
                time.sleep(0.005)

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._task_start(task, handler=False)

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self._task_start(task, handler=True)

    def _result(self, event: str, result) -> None:
        data = getattr(result, 'result', None)
        if data is None:
            data = getattr(result, '_result', {}) or {}
        warnings = [_text(w) for w in (getattr(result, 'warnings', None) or data.get('warnings') or [])]
        self._write(
            {
                'event': event,
                'task': result.task_name if hasattr(result, 'task_name') else result._task.get_name(),
                'msg': data.get('msg'),
                'changed': bool(data.get('changed')),
                'warnings': warnings,
            }
        )

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._result('ignored' if ignore_errors else 'failed', result)

    def v2_runner_on_ok(self, result) -> None:
        self._result('ok', result)

    def v2_runner_on_unreachable(self, result) -> None:
        self._result('unreachable', result)

    def v2_playbook_on_stats(self, stats) -> None:
        self._write({'event': 'end'})
