# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/architecture.md matches the code: every module's options and returned keys, and the lock messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ansible_collections.atomic.deploy.plugins.module_utils import _fs, _lock
from ansible_collections.atomic.deploy.plugins.modules import (
    atomic_symlink,
    deploy_lock,
    release,
    release_check,
    release_prune,
    release_rollback,
    releases_info,
)

COLLECTION_DIR = Path(_fs.__file__).parents[2]
DOC = (COLLECTION_DIR / 'docs' / 'architecture.md').read_text()
MODULES = [atomic_symlink, deploy_lock, release, release_check, release_prune, release_rollback, releases_info]


class _Captured(Exception):
    pass


def argument_spec(module) -> dict:
    """The argument spec main() builds, captured before AnsibleModule reads any input."""
    seen = {}

    class Fake:
        def __init__(self, argument_spec, **kwargs):
            seen.update(argument_spec)
            raise _Captured

    real = module.AnsibleModule
    module.AnsibleModule = Fake
    try:
        with pytest.raises(_Captured):
            module.main()
    finally:
        module.AnsibleModule = real
    return seen


def section(name: str) -> str:
    match = re.search(rf'^### `{name}`\n(.*?)(?=^#|\Z)', DOC, re.M | re.S)
    assert match, f'docs/architecture.md has no "### `{name}`" section'
    return match.group(1)


def bullet(text: str, label: str) -> str:
    match = re.search(rf'^- {label}: (.*?)(?=^- |^\n|\Z)', text, re.M | re.S)
    assert match, f'no "- {label}:" line'
    return match.group(1)


def top_level_names(text: str) -> set[str]:
    """Backticked names outside parentheses: what the text documents (values go in parentheses)."""
    names, depth = set(), 0
    for token in re.findall(r'`[^`]*`|[()]', text):
        if token == '(':
            depth += 1
        elif token == ')':
            depth = max(depth - 1, 0)
        elif depth == 0:
            names.add(token.strip('`'))
    return names


@pytest.mark.parametrize('module', MODULES, ids=lambda m: m.__name__.rsplit('.', 1)[-1])
def test_options_match_the_argument_spec(module):
    name = module.__name__.rsplit('.', 1)[-1]
    documented = top_level_names(bullet(section(name), 'options'))
    assert documented == set(argument_spec(module)), (
        f'{name}: documented but not options: {sorted(documented - set(argument_spec(module)))}; '
        f'options not documented: {sorted(set(argument_spec(module)) - documented)}'
    )


@pytest.mark.parametrize('module', MODULES, ids=lambda m: m.__name__.rsplit('.', 1)[-1])
def test_returns_match_return(module):
    name = module.__name__.rsplit('.', 1)[-1]
    documented = top_level_names(bullet(section(name), 'returns'))
    returned = set(yaml.safe_load(module.RETURN))
    assert documented == returned, (
        f'{name}: in the doc but not in RETURN: {sorted(documented - returned)}; '
        f'in RETURN but not in the doc: {sorted(returned - documented)}'
    )


def quoted(prefix: str) -> list[str]:
    prose = re.sub(r'^```.*?^```', '', DOC, flags=re.M | re.S)
    return [text for text in re.findall(r'`([^`]+)`', prose) if text.startswith(prefix)]


def placeholders(message: str, record: dict, path: Path) -> str:
    return (
        message.replace(record['started'], 'T').replace(record['expires'], 'E').replace(str(path), 'ROOT/.deploy/lock')
    )


def test_lock_held_message_is_the_one_the_module_prints(tmp_path):
    deploy = tmp_path / 'ROOT' / '.deploy'
    deploy.mkdir(parents=True)
    owner = {'user': 'USER', 'controller': 'CONTROLLER', 'playbook': 'P', 'awx_job_id': 'J'}
    _lock.acquire(deploy_dir=str(deploy), token='theirs', owner=owner, release_id='R')
    with pytest.raises(_lock.LockHeld) as held:
        _lock.acquire(deploy_dir=str(deploy), token='mine')
    printed = placeholders(str(held.value), held.value.record, deploy / 'lock')
    assert printed in quoted('deploy lock ROOT/.deploy/lock is held by'), printed

    _lock.acquire(
        deploy_dir=str(deploy),
        token='third',
        owner={'user': 'USER', 'controller': 'CONTROLLER'},
        release_id='R',
        steal=True,
    )
    with pytest.raises(_lock.LockHeld) as lost:
        _lock.verify(deploy_dir=str(deploy), token='theirs')
    printed = placeholders(str(lost.value), lost.value.record, deploy / 'lock')
    assert printed in quoted('deploy lock ROOT/.deploy/lock is no longer held'), printed


def test_module_utils_table_lists_every_file():
    match = re.search(r'^\| file \| holds \|\n\| --- \| --- \|\n((?:\|.*\n)+)', DOC, re.M)
    assert match, 'docs/architecture.md has no "| file | holds |" table of module_utils'
    listed = set(re.findall(r'^\| `(_\w+\.py)` \|', match.group(1), re.M))
    present = {path.name for path in (COLLECTION_DIR / 'plugins' / 'module_utils').glob('_*.py')}
    assert listed == present, f'listed but missing: {sorted(listed - present)}; not listed: {sorted(present - listed)}'
