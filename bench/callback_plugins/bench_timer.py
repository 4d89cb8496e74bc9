# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bench-only callback: when each task started and when each host finished it, as JSON.

bench/net.py enables it (ANSIBLE_CALLBACKS_ENABLED=bench_timer) and points BENCH_TIMER_OUT at a file;
the run's "where the time goes" table is computed from it by bench/net.py (task_breakdown).
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timer
type: aggregate
short_description: record task start and per-host end times for bench/net.py
description:
  - Writes a JSON document to the file named by the environment variable E(BENCH_TIMER_OUT).
author: atomic.deploy contributors
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_timer'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._started = time.time()
        self._tasks = []
        # {inventory host: interface}: the bytes each task sent to each host, from the interface counters
        self._ifaces = json.loads(os.environ.get('BENCH_TIMER_IFACES') or '{}')

    def _tx(self, host):
        iface = self._ifaces.get(host)
        if not iface:
            return None
        try:
            with open(f'/sys/class/net/{iface}/statistics/tx_bytes') as handle:
                return int(handle.read())
        except (OSError, ValueError):
            return None

    def _host_done(self, result, status):
        if not self._tasks:
            return
        host = result._host.get_name()
        self._tasks[-1]['hosts'][host] = {'end': time.time(), 'status': status, 'tx': self._tx(host)}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._tasks.append(
            {
                'name': task.get_name(),
                'start': time.time(),
                'hosts': {},
                'tx_start': {host: self._tx(host) for host in self._ifaces},
            }
        )

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_runner_on_ok(self, result):
        self._host_done(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._host_done(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._host_done(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._host_done(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get('BENCH_TIMER_OUT')
        if not path:
            return
        with open(path, 'w') as handle:
            json.dump({'started': self._started, 'ended': time.time(), 'tasks': self._tasks}, handle)
