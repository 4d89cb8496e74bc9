# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running a module's main() in-process, the same way on every ansible-core from 2.16 on."""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Iterator

try:
    from ansible.module_utils.testing import patch_module_args as _patch_args
except ImportError:  # ansible-core < 2.19 has no public helper: set what AnsibleModule reads
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes

    @contextlib.contextmanager
    def _patch_args(args: dict) -> Iterator[None]:
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved


@contextlib.contextmanager
def patch_module_args(args: dict) -> Iterator[None]:
    """Module arguments for an in-process main(), run as in a module process.

    Once controller code is imported into the test process (an action plugin test collected by the
    same pytest), ansible-core 2.19+ considers the process a controller and sends module warnings to
    the display instead of the result; a module process never is one.
    """
    try:
        from ansible.module_utils import _internal
    except ImportError:  # ansible-core < 2.17
        _internal = None
    saved = getattr(_internal, 'is_controller', None)
    if saved is not None:
        _internal.is_controller = False
    try:
        with _patch_args(args):
            yield
    finally:
        if saved is not None:
            _internal.is_controller = saved


def controller_process() -> Iterator[None]:
    """For tests that import controller code (ansible.errors, ansible.template): only while they run.

    Importing it marks the process as the controller (ansible-core 2.19+: module_utils then send
    module warnings to the display instead of the module result), which would change what the module
    tests of the same pytest run see. The flag is set for such a test and put back after it; a
    conftest turns this into an autouse fixture for its directory.
    """
    try:
        from ansible.module_utils import _internal
    except ImportError:  # ansible-core before 2.18 has no such package
        yield
        return
    if not hasattr(_internal, 'is_controller'):  # 2.18 has the package but not the flag
        yield
        return
    before = _internal.is_controller
    import ansible._internal  # noqa: F401  (sets the flag on its first import)

    _internal.is_controller = True
    try:
        yield
    finally:
        _internal.is_controller = before


__all__ = ['controller_process', 'patch_module_args', 'preload_module_serializers']


def preload_module_serializers() -> None:
    """Import now what AnsibleModule (2.19+) loads lazily: a child that dropped its privileges may not
    be able to read the interpreter's files any more. Older cores have nothing to load."""
    for profile in ('legacy', 'modern'):
        for direction in ('c2m', 'm2c'):
            with contextlib.suppress(ImportError):
                importlib.import_module(f'ansible.module_utils._internal._json._profiles._module_{profile}_{direction}')
