# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bench-only callback: when each task started and when each host finished it, as JSON.

bench/net.py enables it (ANSIBLE_CALLBACKS_ENABLED=bench_timer) and points BENCH_TIMER_OUT at a file;
the run's "where the time goes" table is computed from it by bench/netreport.py (task_breakdown). Per
task it also records the bytes on each host's veth (BENCH_TIMER_IFACES) and the switch results
(switched_at, switch_late, the agreed switch_at, the skew when the module reports one).

With BENCH_TIMER_WIRE set to a file, it also wraps the ssh connection plugin's exec_command, put_file
and fetch_file, in this process before Ansible forks its workers, so every call appends one JSON line
to that file: which module run or command it was, the bytes it handed to ssh, and the bytes that went
to and came from the host on its veth while it ran (the payload of each module run on the wire).
"""

from __future__ import annotations

import functools
import json
import os
import re
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

# what a switch result says about the rename, whatever the release module's version reports
SWITCH_KEYS = ('switched_at', 'switch_late', 'switch_skew', 'skew', 'started_at', 'switch_wait', 'switch_delay')


def read_counter(iface, which):
    try:
        with open(f'/sys/class/net/{iface}/statistics/{which}') as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return None


def command_label(cmd):
    """A short name for a command Ansible runs outside a module."""
    text = cmd if isinstance(cmd, str) else cmd.decode(errors='replace')
    if 'umask' in text and 'mkdir' in text:
        return 'make the remote temp dir'
    if 'rm -f -r' in text:
        return 'remove the remote temp dir'
    if 'chmod' in text:
        return 'chmod'
    if 'echo ~' in text:
        return 'find the home dir'
    if 'python' in text:
        return 'python program'
    return ' '.join(text.split())[:40]


def install_wire_census(*, path, ifaces):
    """Wrap the ssh connection's transfers, in this process, before Ansible forks its workers."""
    from ansible.plugins.action import ActionBase
    from ansible.plugins.loader import connection_loader

    classes = {connection_loader.get('ssh', class_only=True)}
    current = {'module': None}
    original_execute = ActionBase._execute_module

    @functools.wraps(original_execute)
    def execute_module(self, *args, **kwargs):
        name = kwargs.get('module_name') or (args[0] if args else None) or self._task.action
        previous, current['module'] = current['module'], name
        try:
            return original_execute(self, *args, **kwargs)
        finally:
            current['module'] = previous

    ActionBase._execute_module = execute_module

    def wrap(cls, method, kind):
        original = getattr(cls, method)

        @functools.wraps(original)
        def wrapper(self, *args, **kwargs):
            try:
                address = self.get_option('host')
            except Exception:
                address = None
            address = address or self._play_context.remote_addr
            iface = ifaces.get(address)
            before = (read_counter(iface, 'tx_bytes'), read_counter(iface, 'rx_bytes')) if iface else (None, None)
            started = time.time()
            try:
                return original(self, *args, **kwargs)
            finally:
                ended = time.time()
                record = {'kind': kind, 'address': address, 'start': started, 'end': ended, 'module': current['module']}
                if kind == 'exec':
                    cmd = kwargs.get('cmd', args[0] if args else '')
                    in_data = kwargs.get('in_data', args[1] if len(args) > 1 else None)
                    record['label'] = current['module'] or command_label(cmd)
                    record['in'] = len(in_data) if in_data else 0
                else:
                    local = kwargs.get('in_path', args[0] if args else '')
                    # temp names carry digests: keep the shape of the name, not the digest
                    name = re.sub(r'[0-9a-f]{16,}', '*', os.path.basename(str(local)))
                    record['label'] = f'{kind} {name}'
                    try:
                        record['in'] = os.path.getsize(local) if kind == 'put_file' else 0
                    except OSError:
                        record['in'] = None
                after = (read_counter(iface, 'tx_bytes'), read_counter(iface, 'rx_bytes')) if iface else (None, None)
                if None not in before and None not in after:
                    record['tx'], record['rx'] = after[0] - before[0], after[1] - before[1]
                # one short line per write with O_APPEND: the workers' lines do not interleave
                with open(path, 'a') as handle:
                    handle.write(json.dumps(record) + '\n')

        setattr(cls, method, wrapper)

    for cls in classes:
        for method, kind in (('exec_command', 'exec'), ('put_file', 'put_file'), ('fetch_file', 'fetch_file')):
            wrap(cls, method, kind)


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
        wire = os.environ.get('BENCH_TIMER_WIRE')
        if wire:
            addresses = json.loads(os.environ.get('BENCH_TIMER_ADDRESSES') or '{}')
            install_wire_census(path=wire, ifaces=addresses)

    def _tx(self, host, which='tx_bytes'):
        iface = self._ifaces.get(host)
        return read_counter(iface, which) if iface else None

    def _host_done(self, result, status):
        if not self._tasks:
            return
        host = result._host.get_name()
        done = {'end': time.time(), 'status': status, 'tx': self._tx(host), 'rx': self._tx(host, 'rx_bytes')}
        values = getattr(result, '_result', None) or {}
        if isinstance(values, dict) and values.get('switched_at') is not None:
            switch = {key: values[key] for key in SWITCH_KEYS if key in values}
            agreed = (values.get('invocation') or {}).get('module_args', {}).get('switch_at')
            if agreed is not None:
                switch['switch_at'] = agreed
            done['switch'] = switch
        self._tasks[-1]['hosts'][host] = done

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._tasks.append(
            {
                'name': task.get_name(),
                'start': time.time(),
                'hosts': {},
                'tx_start': {host: self._tx(host) for host in self._ifaces},
                'rx_start': {host: self._tx(host, 'rx_bytes') for host in self._ifaces},
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
