# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/plugin_utils/_status.py: the status lines, a free lock on every ansible-core."""

from __future__ import annotations

import pytest
from ansible_collections.atomic.deploy.plugins.plugin_utils import _status

LOCK = {
    'owner': {'user': 'alice', 'controller': 'ctl'},
    'release_id': 'v3',
    'started': '2026-01-10T08:30:22.123456Z',
    'expired': False,
}


@pytest.mark.parametrize(
    ('lock', 'line'),
    [
        (None, 'lock     free'),
        ('', 'lock     free'),
        ({}, 'lock     free'),
        (LOCK, 'lock     alice@ctl for v3 since 2026-01-10T08:30:22.123456Z'),
        ({**LOCK, 'expired': True}, 'lock     alice@ctl for v3 since 2026-01-10T08:30:22.123456Z (expired)'),
        ({'owner': None, 'corrupt': True}, 'lock     ?@? for ? since ?'),
        (
            {**LOCK, 'owner': {'user': 'awx', 'controller': 'tower', 'awx_job_id': 4242}},
            'lock     awx@tower for v3 since 2026-01-10T08:30:22.123456Z (awx job 4242)',
        ),
        (
            {**LOCK, 'owner': {'user': 'ci', 'controller': 'runner', 'ci_job_url': 'https://ci.example/jobs/7'}},
            'lock     ci@runner for v3 since 2026-01-10T08:30:22.123456Z (https://ci.example/jobs/7)',
        ),
    ],
)
def test_lock_line(lock, line):
    assert _status.lock_line(lock) == line


def test_history_lines():
    entries = [
        {'ts': '2026-01-10T08:30:22.123456Z', 'event': 'deploy', 'id': 'v1', 'by': {'user': 'alice'}},
        {'ts': '2026-01-11T09:00:00.5Z', 'event': 'rollback', 'id': 'v0', 'by': None},
        {},
    ]
    assert _status.history_lines(entries) == [
        'history  2026-01-10T08:30:22Z deploy   v1  alice',
        '         2026-01-11T09:00:00Z rollback v0  ?',
        '         ?                    ?        ?  ?',
    ]
    assert _status.history_lines(None) == []


def test_status_lines():
    result = {
        'exists': False,
        'current': None,
        'rollback_candidate': 'v1',
        'lock': LOCK,
        'table': ['  release  state', '* v2       complete'],
        'history': [{'ts': '2026-01-10T08:30:22.1Z', 'event': 'deploy', 'id': 'v2', 'by': {'user': 'bob'}}],
    }
    assert _status.status_lines(result, root='/srv/app') == [
        'root     /srv/app (does not exist)',
        'current  none',
        'rollback v1',
        'lock     alice@ctl for v3 since 2026-01-10T08:30:22.123456Z',
        '  release  state',
        '* v2       complete',
        'history  2026-01-10T08:30:22Z deploy   v2  bob',
    ]
