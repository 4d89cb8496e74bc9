# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The minimum target Python of the collection's modules, checked when they start.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice.

The modules and module_utils use Python 3.8 syntax and library calls (tests/config.yml,
python_requires). ansible-core 2.16 still runs modules on Python 2.7 and 3.6, and 2.17 on 3.7.
On 2.7 and 3.6 our code does not even compile, so the action plugins turn that failure into the
same message (plugins/plugin_utils/_controller.py). On 3.7 it compiles, and this module, which
_fs imports and so every module loads first, refuses before anything is done, the way
ansible.module_utils.basic refuses a Python older than ansible-core supports.
"""

from __future__ import annotations

import json
import sys

MINIMUM = (3, 8)


def message(*, interpreter: str, version: tuple) -> str:
    return (
        f'atomic.deploy modules need Python {MINIMUM[0]}.{MINIMUM[1]} or newer on the target; '
        f'{interpreter} is Python {version[0]}.{version[1]}'
    )


def refusal(*, version_info: tuple, executable: str) -> dict | None:
    """The failed module result for an interpreter older than MINIMUM, else None."""
    if tuple(version_info[:2]) >= MINIMUM:
        return None
    return {
        'failed': True,
        'msg': message(interpreter=executable, version=version_info),
        'python_version': f'{version_info[0]}.{version_info[1]}',
        'python_required': f'>={MINIMUM[0]}.{MINIMUM[1]}',
    }


_REFUSAL = refusal(version_info=tuple(sys.version_info), executable=sys.executable)
if _REFUSAL is not None:
    # No AnsibleModule exists yet: answer the way ansible.module_utils.basic refuses an old Python.
    sys.stdout.write(json.dumps(_REFUSAL) + '\n')
    raise SystemExit(1)
