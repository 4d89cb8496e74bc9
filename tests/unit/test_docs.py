# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ansible-doc renders every module of the collection, with its examples and return values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.atomic.deploy.plugins.module_utils import _fs

# .../ansible_collections/atomic/deploy/plugins/module_utils/_fs.py -> the directory holding ansible_collections
COLLECTION_DIR = Path(_fs.__file__).parents[2]
COLLECTIONS_ROOT = COLLECTION_DIR.parents[2]
MODULES = sorted(p.stem for p in (COLLECTION_DIR / 'plugins' / 'modules').glob('*.py') if not p.name.startswith('_'))


def ansible_doc(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_DEPRECATION_WARNINGS='1')
    env['ANSIBLE_COLLECTIONS_PATH'] = str(COLLECTIONS_ROOT)
    return subprocess.run(
        [sys.executable, '-m', 'ansible.cli.doc', *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_every_module_is_found():
    assert (COLLECTIONS_ROOT / 'ansible_collections' / 'atomic' / 'deploy' / 'galaxy.yml').is_file()
    assert MODULES == [
        'atomic_symlink',
        'deploy_lock',
        'release',
        'release_check',
        'release_plan',
        'release_prune',
        'release_rollback',
        'release_writable',
        'releases_info',
    ]
    listed = ansible_doc('--list', '--json', 'atomic.deploy')
    assert listed.returncode == 0, listed.stderr
    assert sorted(json.loads(listed.stdout)) == [f'atomic.deploy.{m}' for m in MODULES]


@pytest.mark.parametrize('module', MODULES)
def test_ansible_doc_renders(module):
    name = f'atomic.deploy.{module}'
    text = ansible_doc(name)
    assert text.returncode == 0, text.stderr
    # ansible-core 2.16 heads the page "> ATOMIC.DEPLOY.NAME", later cores "> MODULE atomic.deploy.name"
    assert f'> MODULE {name}' in text.stdout or f'> {name.upper()} ' in text.stdout
    assert 'EXAMPLES:' in text.stdout
    assert 'RETURN VALUES:' in text.stdout
    assert f'{name}:' in text.stdout.split('EXAMPLES:', 1)[1]
    # no warning or error from the doc parser (bad markup, unknown fragments, YAML problems)
    assert '[WARNING]' not in text.stderr and 'ERROR' not in text.stderr, text.stderr


@pytest.mark.parametrize('module', MODULES)
def test_examples_use_the_module_with_documented_options(module):
    name = f'atomic.deploy.{module}'
    raw = ansible_doc('--json', name)
    assert raw.returncode == 0, raw.stderr
    data = json.loads(raw.stdout)[name]
    doc = data['doc']
    assert doc['module'] == module
    assert doc['short_description'][:1].isupper() and not doc['short_description'].endswith('.')
    options = set(doc['options'])
    for opt in doc['options'].values():
        options.update(opt.get('aliases') or [])
    tasks = yaml.safe_load(data['examples'])
    assert isinstance(tasks, list) and tasks
    uses = [task for task in tasks if name in task]
    assert uses, f'no example of {name} uses its FQCN'
    for task in uses:
        assert task['name'][:1].isupper(), task
        unknown = set(task[name] or {}) - options
        assert not unknown, f'{name} example {task["name"]!r} uses undocumented options {sorted(unknown)}'
    assert data['return'], f'{name} documents no return values'
