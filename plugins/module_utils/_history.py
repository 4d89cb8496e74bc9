# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The deploy history: ROOT/.deploy/history.jsonl, one JSON object per line, append-only.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: plain pytest tests it.
"""

from __future__ import annotations

import json
import os
import socket

from ansible_collections.atomic.deploy.plugins.module_utils import _fs, _release

EVENTS = ('deploy', 'activate', 'rollback', 'failed')
_TAIL_BLOCK = 64 * 1024


def append(*, path: str, event: str, release_id: str | None, fsync: bool = True, **fields) -> dict:
    """Append one entry and return it. Never rewrites earlier lines."""
    if event not in EVENTS:
        raise ValueError(f'unknown history event {event!r}')
    entry = {'ts': _release.iso(), 'event': event, 'id': release_id}
    entry.update({key: value for key, value in fields.items() if value is not None})
    line = json.dumps(entry, sort_keys=True, separators=(',', ':')).encode('utf-8')
    _fs.append_line(path=path, line=line, fsync=fsync)
    return entry


def record(
    *, layout: _release.Layout, event: str, release_id: str | None, owner: dict | None, fsync: bool = True, **fields
) -> dict:
    """The one history recorder of the collection's modules: append to ``layout.history`` with the
    host and who deployed (``owner``), creating ROOT/.deploy for standalone use."""
    _release.ensure_deploy_dir(layout)
    return append(
        path=layout.history,
        event=event,
        release_id=release_id,
        fsync=fsync,
        host=socket.gethostname(),
        by=owner or None,
        **fields,
    )


def _parse(lines: list[bytes]) -> list[dict]:
    entries = []
    for raw in lines:
        raw = raw.strip()
        if not raw:
            continue
        try:
            entry = json.loads(raw.decode('utf-8'))
        except (ValueError, UnicodeDecodeError):
            # A torn line from a crash mid-write (or a hand edit): skip it, keep the rest.
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def read(*, path: str, last: int | None = None) -> list[dict]:
    """Entries oldest first; only the last ``last`` ones when given (read from the file's end)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    except FileNotFoundError:
        return []
    with os.fdopen(fd, 'rb') as handle:
        if last is None:
            return _parse(handle.read().split(b'\n'))
        if last <= 0:
            return []
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        data = b''
        position = end
        # Read blocks backwards until enough whole lines are in hand (one extra for a torn line).
        while position > 0 and data.count(b'\n') <= last + 1:
            step = min(_TAIL_BLOCK, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
        lines = data.split(b'\n')
        if position > 0:
            lines = lines[1:]  # the first piece may be a partial line
        return _parse(lines)[-last:]
