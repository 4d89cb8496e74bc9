# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/plugin_utils/_controller.py: who holds the lock, and from which job."""

from __future__ import annotations

import pytest
from ansible_collections.atomic.deploy.plugins.plugin_utils import _controller


@pytest.mark.parametrize(
    ('environ', 'url'),
    [
        ({}, None),
        ({'CI_JOB_URL': 'https://gitlab.example/g/p/-/jobs/9'}, 'https://gitlab.example/g/p/-/jobs/9'),
        (
            {'GITHUB_RUN_ID': '77', 'GITHUB_REPOSITORY': 'o/r', 'GITHUB_SERVER_URL': 'https://ghe.example'},
            'https://ghe.example/o/r/actions/runs/77',
        ),
        ({'GITHUB_RUN_ID': '77', 'GITHUB_REPOSITORY': 'o/r'}, 'https://github.com/o/r/actions/runs/77'),
        ({'BUILD_URL': 'https://jenkins.example/job/app/5/'}, 'https://jenkins.example/job/app/5/'),
    ],
)
def test_ci_job_url(environ, url):
    assert _controller.ci_job_url(environ) == url


def test_owner_names_the_awx_job_from_tower_or_awx_variables(monkeypatch):
    for name in ('CI_JOB_URL', 'GITHUB_RUN_ID', 'BUILD_URL'):
        monkeypatch.delenv(name, raising=False)
    assert _controller.controller_owner({'tower_job_id': 12})['awx_job_id'] == 12
    assert _controller.controller_owner({'awx_job_id': 13, 'tower_job_id': 12})['awx_job_id'] == 13
    assert 'ci_job_url' not in _controller.controller_owner({})
    monkeypatch.setenv('BUILD_URL', 'https://jenkins.example/job/app/5/')
    assert _controller.controller_owner({})['ci_job_url'] == 'https://jenkins.example/job/app/5/'
