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
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19 has no public helper: set what AnsibleModule reads
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes

    @contextlib.contextmanager
    def patch_module_args(args: dict) -> Iterator[None]:  # type: ignore[no-redef]
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved


__all__ = ['patch_module_args', 'preload_module_serializers']


def preload_module_serializers() -> None:
    """Import now what AnsibleModule (2.19+) loads lazily: a child that dropped its privileges may not
    be able to read the interpreter's files any more. Older cores have nothing to load."""
    for profile in ('legacy', 'modern'):
        for direction in ('c2m', 'm2c'):
            with contextlib.suppress(ImportError):
                importlib.import_module(f'ansible.module_utils._internal._json._profiles._module_{profile}_{direction}')
