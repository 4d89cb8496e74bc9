# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tests here import controller code only while they run (see support.modules.controller_process)."""

from __future__ import annotations

import pytest
from ansible_collections.atomic.deploy.tests.support.modules import controller_process as _controller_process

controller_process = pytest.fixture(autouse=True)(_controller_process)
