# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Static checks: no task and no plugin builds a shell command line.

YAML (roles/, playbooks/): every task is found (plays, pre/post tasks, handlers, blocks with rescue and
always, task files) and its action resolved. Flagged:
- shell, raw, script and expect in any spelling (``shell``, ``ansible.builtin.shell``, ``ansible.legacy.shell``,
  ``action: shell ...``, ``local_action``): they hand a string to /bin/sh (or the remote login shell);
- command with a free-form string or ``cmd`` containing a template: the template's value is split into
  words, so a variable holding ``a; rm -rf /`` is not a shell injection, but quoting and word
  splitting of user input are still decided by the string. Commands must use ``argv`` (a list, or the
  documented user-supplied command variable that is itself a list);
- ``lookup('pipe', ...)`` / ``query('pipe', ...)`` anywhere: it runs a shell on the controller.

Python (plugins/): ``shell=True``, ``use_unsafe_shell=True``, ``os.system``, ``os.popen``,
``subprocess.getoutput/getstatusoutput``, and a str / f-string / concatenated or %-formatted command given
to ``subprocess.*`` or ``run_command``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

SHELL_MODULES = {'shell', 'raw', 'script', 'expect'}
COMMAND_MODULES = {'command'}
_PREFIXES = ('ansible.builtin.', 'ansible.legacy.', 'community.general.', 'ansible.windows.')
TASK_LISTS = ('tasks', 'pre_tasks', 'post_tasks', 'handlers')
BLOCK_KEYS = ('block', 'rescue', 'always')
TASK_KEYWORDS = {
    'name',
    'when',
    'register',
    'loop',
    'loop_control',
    'vars',
    'tags',
    'become',
    'become_user',
    'become_method',
    'become_flags',
    'become_exe',
    'notify',
    'listen',
    'changed_when',
    'failed_when',
    'ignore_errors',
    'no_log',
    'delegate_to',
    'delegate_facts',
    'run_once',
    'environment',
    'args',
    'check_mode',
    'diff',
    'any_errors_fatal',
    'throttle',
    'timeout',
    'until',
    'retries',
    'delay',
    'module_defaults',
    'collections',
    'debugger',
    'ignore_unreachable',
    'async',
    'poll',
    'connection',
    'remote_user',
    'port',
    'local_action',
    'action',
    'block',
    'rescue',
    'always',
    'import_tasks',
    'include_tasks',
    'import_role',
    'include_role',
    'import_playbook',
}
_PIPE = re.compile(r"""\b(?:lookup|query|q)\(\s*['"](?:ansible\.builtin\.)?pipe['"]""")


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads Ansible's tags (!unsafe, !vault) as plain values."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_Loader.add_multi_constructor('!', _any_tag)


def short_name(action: str) -> str:
    for prefix in _PREFIXES:
        if action.startswith(prefix):
            return action[len(prefix) :]
    return action


def iter_tasks(node, where: str):
    """Yield (location, task dict) for every task below a play, a task list or a block."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from iter_tasks(item, f'{where}[{index}]')
        return
    if not isinstance(node, dict):
        return
    if 'hosts' in node or 'import_playbook' in node:  # a play
        for key in TASK_LISTS:
            yield from iter_tasks(node.get(key) or [], f'{where}.{key}')
        return
    if any(key in node for key in BLOCK_KEYS):
        for key in BLOCK_KEYS:
            yield from iter_tasks(node.get(key) or [], f'{where}.{key}')
        return
    yield where, node


def task_action(task: dict) -> tuple[str | None, object]:
    """(module short name, its arguments) for a task; arguments may be a str (free form) or a dict."""
    for key in ('action', 'local_action'):
        if key in task:
            value = task[key]
            if isinstance(value, dict):
                module = value.get('module')
                return (short_name(str(module)) if module else None), {k: v for k, v in value.items() if k != 'module'}
            words = str(value).split(None, 1)
            return short_name(words[0]), (words[1] if len(words) > 1 else '')
    for key, value in task.items():
        if key in TASK_KEYWORDS or key.startswith('with_'):
            continue
        return short_name(key), value
    return None, None


def _templated(value) -> bool:
    return isinstance(value, str) and ('{{' in value or '{%' in value)


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def check_task(task: dict) -> list[str]:
    problems = []
    module, args = task_action(task)
    label = task.get('name') or module
    if module in SHELL_MODULES:
        problems.append(f'task {label!r} uses the {module} module, which runs a shell command line')
    elif module in COMMAND_MODULES:
        extra = task.get('args') if isinstance(task.get('args'), dict) else {}
        merged = dict(args) if isinstance(args, dict) else {'_raw_params': args}
        merged.update(extra)
        for key in ('_raw_params', 'cmd'):
            if _templated(merged.get(key)):
                problems.append(
                    f'task {label!r} gives command a templated {key} string {merged[key]!r}; pass argv as a list'
                )
        if 'argv' not in merged and not merged.get('_raw_params') and not merged.get('cmd'):
            problems.append(f'task {label!r} runs command without argv')
    if any(_PIPE.search(text) for text in _strings(task)):
        problems.append(f"task {label!r} uses lookup('pipe'), which runs a shell on the controller")
    return problems


def check_yaml_text(text: str, *, where: str) -> tuple[int, list[str]]:
    """(tasks seen, problems) for one YAML document of plays or tasks."""
    data = yaml.load(text, Loader=_Loader)
    count = 0
    problems = []
    for location, task in iter_tasks(data or [], where):
        count += 1
        problems.extend(f'{location}: {problem}' for problem in check_task(task))
    return count, problems


def yaml_task_files(repo: Path) -> list[Path]:
    files = []
    for pattern in (
        'roles/*/tasks/**/*.yml',
        'roles/*/tasks/**/*.yaml',
        'roles/*/handlers/**/*.yml',
        'roles/*/handlers/**/*.yaml',
        'playbooks/**/*.yml',
        'playbooks/**/*.yaml',
    ):
        files.extend(repo.glob(pattern))
    return sorted(set(files))


# ----------------------------------------------------------------------------------------------------------
# Python
# ----------------------------------------------------------------------------------------------------------

_SUBPROCESS_CALLS = {'run', 'call', 'check_call', 'check_output', 'Popen'}


def _is_string_expr(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        return True
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _is_string_expr(node.left) or _is_string_expr(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ('format', 'join'):
        return _is_string_expr(node.func.value)
    return False


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f'{_dotted(node.value)}.{node.attr}'
    return ''


def check_python_text(text: str, *, where: str) -> list[str]:
    problems = []
    tree = ast.parse(text, filename=where)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        line = f'{where}:{node.lineno}'
        for keyword in node.keywords:
            if keyword.arg in ('shell', 'use_unsafe_shell') and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                problems.append(f'{line}: {name}(..., {keyword.arg}=...) runs a shell')
        if name in ('os.system', 'os.popen', 'system', 'popen') or name.endswith(
            ('subprocess.getoutput', 'subprocess.getstatusoutput')
        ):
            problems.append(f'{line}: {name}() runs a shell')
        last = name.rsplit('.', 1)[-1]
        is_subprocess = name.startswith('subprocess.') and last in _SUBPROCESS_CALLS
        if (is_subprocess or last == 'run_command') and node.args and _is_string_expr(node.args[0]):
            problems.append(f'{line}: {name}() gets its command as a string; pass an argv list')
        for keyword in node.keywords:
            if (
                keyword.arg in ('args', 'cmd')
                and (is_subprocess or last == 'run_command')
                and _is_string_expr(keyword.value)
            ):
                problems.append(f'{line}: {name}({keyword.arg}=...) gets its command as a string')
    return problems
