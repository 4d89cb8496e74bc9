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

import functools
import http.server
import json
import os
import stat
import threading
from pathlib import Path

import pytest
from _harness import (
    REPO_ROOT,
    Ansible,
    build_archive,
    current_id,
    lock_record,
    metadata,
    read_history,
    snapshot,
)
from _static import check_python_text, check_yaml_text, yaml_task_files

# ------------------------------------------------------------------------------------------------------------
# Static: no shell strings
# ------------------------------------------------------------------------------------------------------------

BAD_YAML = {
    'shell module': '- name: x\n  ansible.builtin.shell: echo {{ release_id }}\n',
    'short shell': '- shell: ls\n',
    'legacy raw': '- ansible.legacy.raw: ls\n',
    'script': '- ansible.builtin.script: run.sh\n',
    'action form': '- action: shell echo hi\n',
    'local_action dict': '- local_action:\n    module: ansible.builtin.shell\n    cmd: ls\n',
    'templated free-form command': '- ansible.builtin.command: git checkout {{ release_version }}\n',
    'templated cmd': '- ansible.builtin.command:\n    cmd: "{{ release_migrate_command }}"\n',
    'templated cmd in args': '- ansible.builtin.command:\n  args:\n    cmd: "php {{ x }}"\n',
    'pipe lookup': "- ansible.builtin.debug:\n    msg: \"{{ lookup('pipe', 'date') }}\"\n",
    'inside rescue': '- block:\n    - ansible.builtin.debug: {msg: ok}\n  rescue:\n    - ansible.builtin.shell: x\n',
    'play handler': '- hosts: all\n  handlers:\n    - name: h\n      ansible.builtin.raw: reboot\n',
}
GOOD_YAML = {
    'argv list': '- ansible.builtin.command:\n    argv: [php, artisan, migrate]\n',
    'argv from the documented variable': '- ansible.builtin.command:\n    argv: "{{ release_migrate_command }}"\n',
    'fixed free-form': '- ansible.builtin.command: git --version\n  changed_when: false\n',
    'module task': '- atomic.deploy.release:\n    root: "{{ release_root }}"\n    id: "{{ release_id }}"\n',
}
BAD_PYTHON = {
    'shell=True': 'import subprocess\nsubprocess.run(cmd, shell=True)\n',
    'os.system': "import os\nos.system('ls')\n",
    'os.popen': 'import os\nos.popen(x)\n',
    'getoutput': 'import subprocess\nsubprocess.getoutput(x)\n',
    'f-string argv': "import subprocess\nsubprocess.check_output(f'git {x}')\n",
    'concatenated': "import subprocess\nsubprocess.Popen('git ' + x)\n",
    'run_command string': "module.run_command('git fetch %s' % repo)\n",
    'unsafe shell': 'module.run_command(argv, use_unsafe_shell=True)\n',
}
GOOD_PYTHON = {
    'argv list': "import subprocess\nsubprocess.run(['git', 'fetch', '--', repo], check=True)\n",
    'run_command list': "module.run_command(['git', f'--git-dir={mirror}', 'fetch'])\n",
    'explicit shell=False': 'import subprocess\nsubprocess.run(argv, shell=False)\n',
}


@pytest.mark.parametrize('name', sorted(BAD_YAML))
def test_static_yaml_check_flags(name: str) -> None:
    _count, problems = check_yaml_text(BAD_YAML[name], where=name)
    assert problems, f'the YAML scan missed {name}: {BAD_YAML[name]!r}'


@pytest.mark.parametrize('name', sorted(GOOD_YAML))
def test_static_yaml_check_allows(name: str) -> None:
    _count, problems = check_yaml_text(GOOD_YAML[name], where=name)
    assert problems == []


@pytest.mark.parametrize('name', sorted(BAD_PYTHON))
def test_static_python_check_flags(name: str) -> None:
    assert check_python_text(BAD_PYTHON[name], where=name), f'the Python scan missed {name}'


@pytest.mark.parametrize('name', sorted(GOOD_PYTHON))
def test_static_python_check_allows(name: str) -> None:
    assert check_python_text(GOOD_PYTHON[name], where=name) == []


def test_no_shell_strings_in_roles_and_playbooks(figures) -> None:
    files = yaml_task_files(REPO_ROOT)
    roles = [f for f in files if f.parts[len(REPO_ROOT.parts)] == 'roles']
    playbooks = [f for f in files if f.parts[len(REPO_ROOT.parts)] == 'playbooks']
    assert roles, f'no task files under {REPO_ROOT / "roles"}: nothing to check'
    assert playbooks, f'no playbooks under {REPO_ROOT / "playbooks"}: nothing to check'
    total = 0
    problems: list[str] = []
    for path in files:
        count, found = check_yaml_text(path.read_text(encoding='utf-8'), where=str(path.relative_to(REPO_ROOT)))
        total += count
        problems.extend(found)
    figures(yaml_files=len(files), tasks_checked=total, problems=len(problems))
    assert total >= 10, f'only {total} tasks found in {len(files)} files; the task walker is broken'
    assert problems == [], '\n'.join(problems)


def test_no_shell_strings_in_plugins(figures) -> None:
    files = sorted((REPO_ROOT / 'plugins').rglob('*.py'))
    assert len(files) >= 10, 'plugins/ has fewer Python files than expected'
    problems: list[str] = []
    for path in files:
        problems.extend(check_python_text(path.read_text(encoding='utf-8'), where=str(path.relative_to(REPO_ROOT))))
    figures(python_files=len(files), problems=len(problems))
    assert problems == [], '\n'.join(problems)


# ------------------------------------------------------------------------------------------------------------
# Behaviour, through the real playbooks
# ------------------------------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope='module')
def web_files(tmp_path_factory: pytest.TempPathFactory):
    files = tmp_path_factory.mktemp('security-files')
    handler = functools.partial(_QuietHandler, directory=str(files))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield files, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()


def deploy_vars(root: Path, release_id: str, **extra) -> dict:
    values = {
        'release_root': str(root),
        'release_id': release_id,
        'release_shared_dirs': ['storage/logs', 'public/uploads'],
        'release_shared_files': ['.env', 'config/local.php'],
        'release_writable_dirs': ['cache/views'],
        'release_keep': 2,
    }
    values.update(extra)
    return values


def world_writable(root: Path) -> list[str]:
    found = []
    for rel, entry in snapshot(root).items():
        if entry.kind != 'l' and entry.mode & 0o002:
            found.append(f'{rel} {oct(entry.mode)}')
    return found


def test_nothing_created_is_world_writable_under_umask_000(
    ansible: Ansible, web_files, tmp_path: Path, deploy_playbook: Path, figures
) -> None:
    """ansible-playbook runs with umask 000; the root's parents do not exist yet; every source type."""
    files, url = web_files
    base = tmp_path / 'new-parent' / 'deeper'
    root = base / 'root'
    archive = build_archive(dest=files / 'umask1.tar.gz', version='umask1')
    url_archive = build_archive(dest=files / 'umask2.tar.gz', version='umask2')
    source_dir = tmp_path / 'app-dir'
    (source_dir / 'public').mkdir(parents=True)
    (source_dir / 'public' / 'index.html').write_text('dir source\n', encoding='utf-8')
    os.chmod(source_dir / 'public', 0o755)
    sources = [
        ('umask1', {'release_source': 'archive', 'release_archive': str(archive.path)}),
        (
            'umask2',
            {'release_source': 'url', 'release_url': f'{url}/umask2.tar.gz', 'release_checksum': url_archive.checksum},
        ),
        ('umask3', {'release_source': 'directory', 'release_directory': str(source_dir)}),
    ]
    runs = [ansible.deploy(umask=0, **deploy_vars(root, rid, **extra)) for rid, extra in sources]
    runs.append(ansible.rollback(release_root=str(root)))
    for run in runs:
        assert run.rc == 0, run.describe()
    assert current_id(root) == 'umask2'
    created = [tmp_path / 'new-parent', base]
    bad = world_writable(root) + [f'{p} {oct(p.stat().st_mode & 0o7777)}' for p in created if p.stat().st_mode & 0o002]
    deploy_dir = root / '.deploy'
    deploy_mode = stat.S_IMODE(os.lstat(deploy_dir).st_mode)
    exposed = [f'{rel} {oct(e.mode)}' for rel, e in snapshot(deploy_dir).items() if e.kind != 'l' and e.mode & 0o007]
    env_mode = stat.S_IMODE(os.lstat(root / 'shared' / '.env').st_mode)
    figures(
        entries_checked=len(snapshot(root)),
        world_writable=len(bad),
        deploy_dir_mode=oct(deploy_mode),
        env_mode=oct(env_mode),
        deploy_dir_entries_open_to_others=len(exposed),
    )
    assert bad == [], 'world-writable entries created under umask 000:\n' + '\n'.join(bad)
    assert deploy_mode == 0o750, f'{deploy_dir} is {oct(deploy_mode)}, not 0750'
    assert exposed == [], 'entries of .deploy/ open to other users:\n' + '\n'.join(exposed)
    assert env_mode & 0o007 == 0, f'shared/.env created {oct(env_mode)}: readable by other users'


def test_pruning_and_linking_never_follow_a_symlink_out(
    ansible: Ansible, tmp_path: Path, deploy_playbook: Path, figures
) -> None:
    outside = tmp_path / 'outside'
    (outside / 'sub').mkdir(parents=True)
    (outside / 'precious.txt').write_text('do not delete\n', encoding='utf-8')
    (outside / 'sub' / 'more.txt').write_text('nor this\n', encoding='utf-8')
    outside_before = snapshot(outside)
    root = tmp_path / 'root'
    archives = {rid: build_archive(dest=tmp_path / f'{rid}.tar.gz', version=rid) for rid in ('s1', 's2', 's3', 's4')}

    def deploy(rid: str, keep: int = 1):
        return ansible.deploy(
            **deploy_vars(
                root, rid, release_source='archive', release_archive=str(archives[rid].path), release_keep=keep
            )
        )

    for rid in ('s1', 's2'):
        run = deploy(rid, keep=2)
        assert run.rc == 0, run.describe()
    releases = root / 'releases'
    # Links planted where pruning walks: inside old releases, as release-like entries, as leftovers.
    os.symlink(outside, releases / 's1' / 'public' / 'escape')
    os.symlink(outside / 'sub', releases / 's1' / 'escape-sub')
    os.symlink(outside, releases / 'zz-planted')
    os.symlink(outside, releases / '.trash-planted')
    (releases / '.tmp-planted').mkdir()
    os.symlink(outside, releases / '.tmp-planted' / 'escape')
    # current pointing out of the root: the next switch replaces the link, never writes through it.
    os.unlink(root / 'current')
    os.symlink(outside, root / 'current')
    planted = 6
    for rid in ('s3', 's4'):
        run = deploy(rid)
        assert run.rc == 0, run.describe()
        assert snapshot(outside) == outside_before, f'deploying {rid} changed {outside}'
    assert current_id(root) == 's4'
    remaining = sorted(os.listdir(releases))
    assert 's1' not in remaining and 's2' not in remaining, remaining
    assert '.tmp-planted' not in remaining, 'a leftover temp dir was not pruned'
    assert os.path.islink(releases / 'zz-planted'), 'a symlink in releases/ is not a release and must be left alone'
    # Linking: a shared path whose parent in shared/ leads out of the root is refused, naming it.
    (root / 'shared' / 'public' / 'uploads').rmdir()
    (root / 'shared' / 'public').rmdir()
    os.symlink(outside, root / 'shared' / 'public')
    refused = deploy('s3')
    assert refused.rc != 0
    message = '\n'.join(refused.failure_messages)
    assert f'{root}/shared/public is a symlink' in message, message
    assert snapshot(outside) == outside_before
    assert lock_record(root) is None
    figures(
        planted_links=planted, outside_files=len(outside_before), releases_left=len(remaining), outside_unchanged=True
    )


def test_shared_content_is_never_printed(ansible: Ansible, tmp_path: Path, deploy_playbook: Path, figures) -> None:
    """The modules never read shared file content: even at -vvv nothing of .env reaches the output, the history,
    the release metadata or the lock."""
    root = tmp_path / 'root'
    secret = 'APP_KEY=base64:' + os.urandom(24).hex()
    (root / 'shared' / 'config').mkdir(parents=True)
    (root / 'shared' / '.env').write_text(secret + '\n', encoding='utf-8')
    (root / 'shared' / 'config' / 'local.php').write_text(f"<?php return '{secret}';\n", encoding='utf-8')
    archive = build_archive(dest=tmp_path / 'sec1.tar.gz', version='sec1')
    archive2 = build_archive(dest=tmp_path / 'sec2.tar.gz', version='sec2')
    runs = [
        ansible.playbook(
            playbook=deploy_playbook,
            options=('-vvv',),
            extra_vars=deploy_vars(root, 'sec1', release_source='archive', release_archive=str(archive.path)),
        ),
        ansible.playbook(
            playbook=deploy_playbook,
            options=('-vvv', '--diff'),
            extra_vars=deploy_vars(root, 'sec2', release_source='archive', release_archive=str(archive2.path)),
        ),
        ansible.playbook(
            playbook=deploy_playbook.parent / 'status.yml', options=('-vvv',), extra_vars={'release_root': str(root)}
        ),
    ]
    rollback = ansible.rollback(release_root=str(root))
    rollback_verbose = rollback.text
    key = secret.split(':', 1)[1]
    seen = 0
    for run in runs:
        assert run.rc == 0, run.describe()
        seen += len(run.text)
        assert key not in run.text, 'the secret reached the output'
    assert key not in rollback_verbose
    for path in (root / '.deploy').rglob('*'):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), f'the secret is in {path}'
    for rid in ('sec1', 'sec2'):
        assert key not in json.dumps(metadata(root, rid))
    entries, _torn = read_history(root)
    assert key not in json.dumps(entries)
    figures(output_bytes_checked=seen, history_entries=len(entries), secret_found=0)


def test_command_environment_not_printed_at_default_verbosity(
    ansible: Ansible, tmp_path: Path, deploy_playbook: Path, figures
) -> None:
    """SECURITY.md: release_command_environment shows at -vvv (Ansible's EXEC line), not at the default verbosity,
    and a command's output shows only when it fails or with -v. Proves the default half of that."""
    root = tmp_path / 'root'
    secret = 's3cret-' + os.urandom(12).hex()
    archive = build_archive(dest=tmp_path / 'env1.tar.gz', version='env1')
    run = ansible.deploy(
        **deploy_vars(
            root,
            'env1',
            release_source='archive',
            release_archive=str(archive.path),
            release_migrate_command=['/usr/bin/env'],
            release_command_environment={'DB_PASSWORD': secret},
        )
    )
    assert run.rc == 0, run.describe()
    figures(output_bytes_checked=len(run.text), secret_found=run.text.count(secret))
    assert secret not in run.text
