# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Security promises of SECURITY.md, proved.

- No task and no plugin builds a shell string from input (static scan, with a self-test that shows the
  scan flags each forbidden form).
- Pruning and linking never follow a symlink out of the deploy root (behavioural, through the playbook).
- Nothing the deploy creates is world-writable, even when ansible-playbook runs with umask 000.
- ROOT/.deploy is 0750 and its files are not readable by others; shared file content is never printed
  nor recorded, even at -vvv.
"""

from __future__ import annotations

import pytest
from _harness import REPO_ROOT
from _static import check_python_text, check_yaml_text, yaml_task_files

# ------------------------------------------------------------------------------------------------------------
# Static: no shell strings
# ------------------------------------------------------------------------------------------------------------

BAD_YAML = {
    "shell module": "- name: x\n  ansible.builtin.shell: echo {{ release_id }}\n",
    "short shell": "- shell: ls\n",
    "legacy raw": "- ansible.legacy.raw: ls\n",
    "script": "- ansible.builtin.script: run.sh\n",
    "action form": "- action: shell echo hi\n",
    "local_action dict": "- local_action:\n    module: ansible.builtin.shell\n    cmd: ls\n",
    "templated free-form command": "- ansible.builtin.command: git checkout {{ release_version }}\n",
    "templated cmd": "- ansible.builtin.command:\n    cmd: \"{{ release_migrate_command }}\"\n",
    "templated cmd in args": "- ansible.builtin.command:\n  args:\n    cmd: \"php {{ x }}\"\n",
    "pipe lookup": "- ansible.builtin.debug:\n    msg: \"{{ lookup('pipe', 'date') }}\"\n",
    "inside rescue": "- block:\n    - ansible.builtin.debug: {msg: ok}\n  rescue:\n    - ansible.builtin.shell: x\n",
    "play handler": "- hosts: all\n  handlers:\n    - name: h\n      ansible.builtin.raw: reboot\n",
}
GOOD_YAML = {
    "argv list": "- ansible.builtin.command:\n    argv: [php, artisan, migrate]\n",
    "argv from the documented variable": "- ansible.builtin.command:\n    argv: \"{{ release_migrate_command }}\"\n",
    "fixed free-form": "- ansible.builtin.command: git --version\n  changed_when: false\n",
    "module task": "- atomic.deploy.release:\n    root: \"{{ release_root }}\"\n    id: \"{{ release_id }}\"\n",
}
BAD_PYTHON = {
    "shell=True": "import subprocess\nsubprocess.run(cmd, shell=True)\n",
    "os.system": "import os\nos.system('ls')\n",
    "os.popen": "import os\nos.popen(x)\n",
    "getoutput": "import subprocess\nsubprocess.getoutput(x)\n",
    "f-string argv": "import subprocess\nsubprocess.check_output(f'git {x}')\n",
    "concatenated": "import subprocess\nsubprocess.Popen('git ' + x)\n",
    "run_command string": "module.run_command('git fetch %s' % repo)\n",
    "unsafe shell": "module.run_command(argv, use_unsafe_shell=True)\n",
}
GOOD_PYTHON = {
    "argv list": "import subprocess\nsubprocess.run(['git', 'fetch', '--', repo], check=True)\n",
    "run_command list": "module.run_command(['git', f'--git-dir={mirror}', 'fetch'])\n",
    "explicit shell=False": "import subprocess\nsubprocess.run(argv, shell=False)\n",
}


@pytest.mark.parametrize("name", sorted(BAD_YAML))
def test_static_yaml_check_flags(name: str) -> None:
    _count, problems = check_yaml_text(BAD_YAML[name], where=name)
    assert problems, f"the YAML scan missed {name}: {BAD_YAML[name]!r}"


@pytest.mark.parametrize("name", sorted(GOOD_YAML))
def test_static_yaml_check_allows(name: str) -> None:
    _count, problems = check_yaml_text(GOOD_YAML[name], where=name)
    assert problems == []


@pytest.mark.parametrize("name", sorted(BAD_PYTHON))
def test_static_python_check_flags(name: str) -> None:
    assert check_python_text(BAD_PYTHON[name], where=name), f"the Python scan missed {name}"


@pytest.mark.parametrize("name", sorted(GOOD_PYTHON))
def test_static_python_check_allows(name: str) -> None:
    assert check_python_text(GOOD_PYTHON[name], where=name) == []


def test_no_shell_strings_in_roles_and_playbooks(figures) -> None:
    files = yaml_task_files(REPO_ROOT)
    roles = [f for f in files if f.parts[len(REPO_ROOT.parts)] == "roles"]
    playbooks = [f for f in files if f.parts[len(REPO_ROOT.parts)] == "playbooks"]
    assert roles, f"no task files under {REPO_ROOT / 'roles'}: nothing to check"
    assert playbooks, f"no playbooks under {REPO_ROOT / 'playbooks'}: nothing to check"
    total = 0
    problems: list[str] = []
    for path in files:
        count, found = check_yaml_text(path.read_text(encoding="utf-8"), where=str(path.relative_to(REPO_ROOT)))
        total += count
        problems.extend(found)
    figures(yaml_files=len(files), tasks_checked=total, problems=len(problems))
    assert total >= 10, f"only {total} tasks found in {len(files)} files; the task walker is broken"
    assert problems == [], "\n".join(problems)


def test_no_shell_strings_in_plugins(figures) -> None:
    files = sorted((REPO_ROOT / "plugins").rglob("*.py"))
    assert len(files) >= 10, "plugins/ has fewer Python files than expected"
    problems: list[str] = []
    for path in files:
        problems.extend(check_python_text(path.read_text(encoding="utf-8"), where=str(path.relative_to(REPO_ROOT))))
    figures(python_files=len(files), problems=len(problems))
    assert problems == [], "\n".join(problems)
