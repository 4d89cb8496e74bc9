# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for the target-Python part of plugins/plugin_utils/_controller.py: a module result from a
target Python older than 3.8 (a SyntaxError, or ansible-core's own minimum check) becomes one message."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from ansible.plugins.action import ActionBase
from ansible_collections.atomic.deploy.plugins.plugin_utils import _controller

PY27_STDERR = (
    'Traceback (most recent call last):\n'
    '  File "/root/.pyenv/versions/2.7.18/lib/python2.7/runpy.py", line 182, in run_module\n'
    '  File ".../ansible_collections/atomic/deploy/plugins/modules/releases_info.py", line 147\n'
    '    def table(releases: list[_release.Release]) -> list[str]:\n'
    'SyntaxError: invalid syntax\n'
)
PY36_STDERR = (
    '  File "/usr/lib/python3.6/runpy.py", line 201, in run_module\n'
    'SyntaxError: future feature annotations is not defined\n'
)


def failed(**keys) -> dict:
    return {'failed': True, 'msg': 'MODULE FAILURE\nSee stdout/stderr for the exact error', 'rc': 1, **keys}


@pytest.mark.parametrize(
    ('result', 'hint'),
    [
        (failed(module_stderr=PY27_STDERR, module_stdout=''), True),
        (failed(module_stderr='', msg='ansible-core requires a minimum of Python version 3.8.'), True),
        (failed(msg='Ansible requires Python 3.9 or newer on the target. Current version: 3.8.1'), True),
        (failed(msg='lock held by alice'), False),
        ({'changed': False, 'module_stderr': 'SyntaxError'}, False),
        # the module said it itself (module_utils/_python.py on 3.7)
        (failed(msg='atomic.deploy modules need ...', python_required='>=3.8', module_stderr='SyntaxError'), False),
    ],
)
def test_failure_text_spots_an_old_python(result, hint):
    assert (_controller.failure_text(result) is not None) is hint


@pytest.mark.parametrize(('text', 'version'), [(PY27_STDERR, (2, 7)), (PY36_STDERR, (3, 6)), ('no path', None)])
def test_version_in_traceback(text, version):
    assert _controller.version_in_traceback(text) == version


class FakeTask:
    delegate_to = None


class Probe(_controller.TargetPythonActionBase):
    """The action base with no connection: the module result and the probe's answer are given."""

    def __init__(self, *, result: dict, probe: dict | None = None) -> None:  # pylint: disable=super-init-not-called
        self._discovered_interpreter = False
        self._task = FakeTask()
        self.module_result = result
        self.probe = probe
        self.commands: list[str] = []

    def _low_level_execute_command(self, cmd, *args, **kwargs):
        self.commands.append(cmd)
        if self.probe is None:
            raise AssertionError('no probe expected')
        return self.probe


@pytest.fixture
def module_result(monkeypatch):
    monkeypatch.setattr(ActionBase, '_execute_module', lambda self, *a, **k: dict(self.module_result))


def test_a_syntax_error_on_python_27_becomes_the_clear_message(module_result):
    action = Probe(result=failed(module_stderr=PY27_STDERR, module_stdout=''))
    task_vars = {'ansible_python_interpreter': '/opt/py27/bin/python'}
    action._templar = type('T', (), {'template': staticmethod(lambda value: value)})()
    result = action._execute_module(task_vars=task_vars)
    assert result['failed'] is True
    assert result['msg'] == (
        'atomic.deploy modules need Python 3.8 or newer on the target; /opt/py27/bin/python is Python 2.7'
    )
    assert result['python_version'] == '2.7' and 'module_stdout' not in result
    assert action.commands == []  # the traceback named the version: no extra command


def test_without_a_version_in_the_output_the_interpreter_is_asked(module_result):
    action = Probe(
        result=failed(msg='ansible-core requires a minimum of Python version 3.7'), probe={'rc': 0, 'stdout': '3.6'}
    )
    action._discovered_interpreter = '/usr/bin/python3'
    result = action._execute_module(task_vars={})
    assert result['msg'].endswith('/usr/bin/python3 is Python 3.6')
    assert action.commands == ['/usr/bin/python3 -c \'import sys; sys.stdout.write("%d.%d" % sys.version_info[:2])\'']


@pytest.mark.parametrize(
    'result',
    [
        {'changed': True},
        failed(msg='lock held by alice'),
    ],
)
def test_other_results_pass_through_untouched(module_result, result):
    action = Probe(result=result)
    assert action._execute_module(task_vars={}) == result


def test_a_syntax_error_on_a_new_python_is_left_as_it_is(module_result):
    original = failed(module_stderr='  File "/usr/lib/python3.11/runpy.py"\nSyntaxError: bad\n')
    assert Probe(result=original)._execute_module(task_vars={}) == original


# Every module that runs on the host has an action plugin of its own that gives the clear message
# (release_plan runs on the controller only). A module added later without one would fail on Python
# 2.7 and 3.6 with a bare SyntaxError.
HOST_MODULES = sorted(
    path.stem
    for path in (Path(_controller.__file__).parents[1] / 'modules').glob('*.py')
    if path.stem not in ('__init__', 'release_plan')
)


@pytest.mark.parametrize('module', HOST_MODULES)
def test_every_host_module_has_the_target_python_action(module):
    action = importlib.import_module(f'ansible_collections.atomic.deploy.plugins.action.{module}')
    assert issubclass(action.ActionModule, _controller.TargetPythonActionBase), module
