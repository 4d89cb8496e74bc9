# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tests here import controller code (ansible.errors, ansible.template) only while they run.

Importing it marks the process as the controller (ansible-core 2.19+: module_utils then send module
warnings to the display instead of the module result), which would change what the module tests of the
same pytest run see. The flag is set for these tests and put back after each one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def controller_process() -> Iterator[None]:
    try:
        from ansible.module_utils import _internal
    except ImportError:  # ansible-core before 2.19 has no such flag
        yield
        return
    before = _internal.is_controller
    import ansible._internal  # noqa: F401  (sets the flag on its first import)

    _internal.is_controller = True
    try:
        yield
    finally:
        _internal.is_controller = before
