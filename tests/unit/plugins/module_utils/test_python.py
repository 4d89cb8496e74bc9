# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for plugins/module_utils/_python.py: the minimum target Python the modules refuse below."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _python


@pytest.mark.parametrize('version', [(2, 7, 18), (3, 6, 15), (3, 7, 16)])
def test_older_pythons_are_refused_with_one_clear_message(version):
    result = _python.refusal(version_info=version, executable='/usr/bin/python3')
    assert result == {
        'failed': True,
        'msg': (
            'atomic.deploy modules need Python 3.8 or newer on the target; '
            f'/usr/bin/python3 is Python {version[0]}.{version[1]}'
        ),
        'python_version': f'{version[0]}.{version[1]}',
        'python_required': '>=3.8',
    }


@pytest.mark.parametrize('version', [(3, 8, 0), (3, 13, 1), (4, 0, 0)])
def test_supported_pythons_pass(version):
    assert _python.refusal(version_info=version, executable='/usr/bin/python3') is None


def test_importing_on_an_old_python_prints_the_failed_result_and_exits(tmp_path):
    # What a module process on Python 3.7 sees: the import of _python (through _fs) ends it.
    source = _python.__file__
    code = f'import sys; sys.version_info = (3, 7, 16, "final", 0); exec(open({source!r}).read())'
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result['failed'] is True and result['python_version'] == '3.7', result
    assert result['msg'].startswith('atomic.deploy modules need Python 3.8 or newer on the target; '), result
