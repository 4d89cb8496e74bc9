# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running ansible-playbook and friends as a user would: the venv's tools and a clean environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# build/collections/ansible_collections/atomic/deploy -> the checkout (scripts/collection-tree.sh)
COLLECTIONS_ROOT = REPO_ROOT / 'build' / 'collections'
VENV_BIN = Path(sys.executable).parent

# Variables that would send Ansible somewhere other than where a test points it.
ANSIBLE_LEAKS = (
    'ANSIBLE_COLLECTIONS_PATH',
    'ANSIBLE_COLLECTIONS_PATHS',
    'ANSIBLE_CONFIG',
    'ANSIBLE_ROLES_PATH',
    'ANSIBLE_INVENTORY',
    'ANSIBLE_PLAYBOOK_DIR',
    'ANSIBLE_HOME',
    'ANSIBLE_LIBRARY',
    'ANSIBLE_MODULE_UTILS',
    'ANSIBLE_ACTION_PLUGINS',
    'ANSIBLE_STDOUT_CALLBACK',
    'ANSIBLE_CALLBACKS_ENABLED',
    'ANSIBLE_CHECK_MODE_MARKERS',
    'ANSIBLE_DISPLAY_SKIPPED_HOSTS',
    'ANSIBLE_CALLBACK_RESULT_FORMAT',
)


class ToolMissing(AssertionError):
    """A command-line tool the test needs is not installed."""


def tool(name: str) -> str:
    """Absolute path of a tool, preferring the running interpreter's bin directory (the venv)."""
    beside = VENV_BIN / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f'required tool {name} not found next to {sys.executable} or on PATH (run make setup)')
    return found


def clean_env(*, drop: tuple[str, ...] = ANSIBLE_LEAKS, **values: str) -> dict[str, str]:
    """os.environ without ``drop``, the venv's bin first on PATH, colour off, plus ``values``."""
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env.update(
        {
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_FORCE_COLOR': '0',
            # the interpreter's bin directory first, so subprocesses use the same ansible-core
            'PATH': f'{VENV_BIN}{os.pathsep}{os.environ.get("PATH", "")}',
        }
    )
    env.update(values)
    return env


def playbook_env(*, workdir: Path, drop_prefixes: tuple[str, ...] = ('ANSIBLE_',), **values: str) -> dict[str, str]:
    """os.environ without any variable starting with ``drop_prefixes``, for an ansible-playbook run that
    finds only this checkout's collection, keeps its temp dirs in ``workdir`` and prints no colour,
    retry file or warning about localhost and deprecations; plus ``values``. PATH is left as it is."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(drop_prefixes)}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_ROOT),
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_FORCE_COLOR='0',
        ANSIBLE_RETRY_FILES_ENABLED='false',
        ANSIBLE_DEPRECATION_WARNINGS='false',
        ANSIBLE_LOCALHOST_WARNING='false',
        ANSIBLE_LOCAL_TEMP=str(workdir / 'ansible-local'),
        ANSIBLE_REMOTE_TEMP=str(workdir / 'ansible-remote'),
    )
    env.update(values)
    return env


def run(args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a command (never through a shell, no stdin) and capture its output as text."""
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
