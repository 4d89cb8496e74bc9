# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lines the status entry point prints, from an ``atomic.deploy.releases_info`` result.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice.

Pure functions over plain dicts. In Python a free lock (``lock: null``) stays ``None`` on every
ansible-core: in a template, before 2.19, a ``None`` result became ``''`` and the lock line read
``lock     ?@? for ? since ?``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_FRACTION = re.compile(r'\.[0-9]+Z$')


def _text(value, default: str = '?') -> str:
    return default if value in (None, '') else str(value)


def lock_line(lock) -> str:
    """``lock     free``, or who holds the lock, for which release, since when (and expired)."""
    if not isinstance(lock, Mapping) or not lock:
        return 'lock     free'
    owner = lock.get('owner') if isinstance(lock.get('owner'), Mapping) else {}
    line = (
        f'lock     {_text(owner.get("user"))}@{_text(owner.get("controller"))} for {_text(lock.get("release_id"))}'
        f' since {_text(lock.get("started"))}'
    )
    # Which job to look at (or cancel) before freeing the lock with the unlock playbook.
    if owner.get('awx_job_id'):
        line += f' (awx job {owner["awx_job_id"]})'
    elif owner.get('ci_job_url'):
        line += f' ({owner["ci_job_url"]})'
    return line + (' (expired)' if lock.get('expired') else '')


def history_lines(entries) -> list[str]:
    """One line per history entry, oldest first; the first is labelled ``history``."""
    lines = []
    for index, entry in enumerate(entries or []):
        entry = entry if isinstance(entry, Mapping) else {}
        by = entry.get('by') if isinstance(entry.get('by'), Mapping) else {}
        label = 'history' if index == 0 else ''
        ts = _FRACTION.sub('Z', _text(entry.get('ts')))
        line = f'{label:<8} {ts:<20} {_text(entry.get("event")):<8} {_text(entry.get("id"))}  {_text(by.get("user"))}'
        lines.append(line.rstrip())
    return lines


def status_lines(result: Mapping, *, root: str) -> list[str]:
    """Summary, release table and history of one deploy root."""
    rollback = result.get('rollback_candidate')
    summary = [
        f'root     {root}{"" if result.get("exists") else " (does not exist)"}',
        f'current  {_text(result.get("current"), "none")}',
        f'rollback {_text(rollback, "none")}',
        lock_line(result.get('lock')),
    ]
    return summary + [str(line) for line in result.get('table') or []] + history_lines(result.get('history'))
