"""Least privilege over real SSH: a deploy user, a web user, and sudo limited by a real sudoers file.

One host from tests/hosts/hostctl.py. The play connects as `deploy` and has no become. sudo allows
exactly what roles/release/README.md ("Running as the deploy user") documents:
- `(www-data) ALL`: the migrations and the health check command run as the web user
  (release_command_user);
- one command as root, `/usr/local/sbin/app-reload`, run by release_reload_command through
  `sudo -n` (no become);
- Ansible's Python as root, for the one step with become (release_prune_become).
The web user writes caches (directories 0755, which the deploy user cannot delete) into every release
and plants links out of the root between deploys. After three deploys: the releases on disk are
release_keep, the web user can write every writable and shared path, and no file outside the deploy
root changed owner, mode or ACL (read from the controller through /proc/<pid>/root, not through the
host's sudo). Needs root and the cached rootfs, like test_delta.py; skipped without them.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shlex
import stat
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HOSTCTL = HERE / 'hostctl.py'
_spec = importlib.util.spec_from_file_location('hostctl', HOSTCTL)
assert _spec is not None and _spec.loader is not None
hostctl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostctl)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0
    or not hostctl.rootfs_current(
        path=hostctl.rootfs_path(packages=hostctl.package_set(extra=[])), packages=hostctl.package_set(extra=[])
    ),
    reason='needs root and the cached rootfs (python3 tests/hosts/hostctl.py build)',
)

NAME = f'priv-{os.getpid() % 100000}'
ROOT = '/srv/app'
KEEP = 2
RELOAD = '/usr/local/sbin/app-reload'
BECOME_PYTHON = '/bin/sh -c echo BECOME-SUCCESS-* ; /usr/bin/python3*'
SUDOERS = f"""\
# tests/hosts/test_privilege.py: what roles/release/README.md documents for a deploy user without root.
# release_command_user: www-data (the migrations and the health check command)
deploy ALL=(www-data) NOPASSWD: ALL
# release_reload_command: [sudo, -n, {RELOAD}]
deploy ALL=(root) NOPASSWD: {RELOAD}
# release_prune_become: true; Ansible runs Python through /bin/sh, so this is root in effect
deploy ALL=(root) NOPASSWD: {BECOME_PYTHON}
"""
RELOAD_SCRIPT = """#!/bin/sh
# test_privilege.py: the reload the deploy user may run as root, and nothing else
id -u >> /run/app-reloads
"""
MIGRATE = """import os, sys
# runs as release_command_user: appends to the database in shared storage
with open('storage/app.db', 'a') as handle:
    handle.write(sys.argv[1] + ' ' + str(os.geteuid()) + '\\n')
"""
PLAYBOOK = """
- name: Deploy as the deploy user, become only where it is needed
  hosts: all
  gather_facts: false
  tasks:
    - name: Deploy
      ansible.builtin.include_role:
        name: atomic.deploy.release
      vars:
        release_root: /srv/app
        release_id: "{{ rid }}"
        release_archive: "{{ art }}"
        release_shared_dirs: [storage]
        release_shared_group: www-data
        release_shared_seed: [storage]
        release_writable_dirs: [var/cache]
        release_writable_method: acl
        release_writable_user: www-data
        release_keep: 2
        release_command_user: www-data
        release_migrate_command: [python3, bin/migrate.py, "{{ rid }}"]
        release_healthcheck_command: [test, -w, storage/app.db]
        release_reload_command: [sudo, -n, /usr/local/sbin/app-reload]
        release_prune_become: true
"""
# Not compared: the kernel's and the session's own files, the deploy root, what Ansible and sudo keep.
SKIP = ('proc', 'sys', 'dev', 'run', 'tmp', 'var/tmp', 'var/log', 'var/lib/sudo', 'srv/app', 'home/deploy/.ansible')


def host_root_pid(top: int) -> int:
    """A process of the host (hostctl's init or sshd): its /proc/<pid>/root is the host's /."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                ppid = int(Path(f'/proc/{entry}/stat').read_text().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    todo = [top]
    while todo:
        pid = todo.pop()
        try:
            if os.readlink(f'/proc/{pid}/root') != '/':
                return pid
        except OSError:
            pass
        todo.extend(children.get(pid, []))
    raise AssertionError(f'no chrooted process below {top}')


class Host:
    def __init__(self, *, work: Path, inventory: Path, state: dict) -> None:
        self.work = work
        self.inventory = inventory
        self.host = state['hosts'][0]
        self.key = state['private_key']
        self.fs = Path(f'/proc/{host_root_pid(self.host["pid"])}/root')
        self.deploys: list[subprocess.CompletedProcess[str]] = []

    def ssh(self, command: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ['ssh', *hostctl.ssh_args(key=Path(self.key)), f'deploy@{self.host["address"]}', command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert not check or done.returncode == 0, done.stderr
        return done

    def as_web(self, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A shell script run by www-data (through deploy's sudo rule for release_command_user)."""
        return self.ssh(f'sudo -n -u www-data sh -ec {shlex.quote(script)}', check=check)

    def deploy(self, *, rid: str, art: Path, **extra) -> subprocess.CompletedProcess[str]:
        book = self.work / 'deploy.yml'
        book.write_text(PLAYBOOK)
        env = dict(os.environ)
        env.setdefault('ANSIBLE_COLLECTIONS_PATH', str(REPO / 'build' / 'collections'))
        env['ANSIBLE_SSH_CONTROL_PATH_DIR'] = str(self.work / 'cp')
        env['ANSIBLE_HOST_KEY_CHECKING'] = 'false'
        env['ATOMIC_DEPLOY_DELTA_CACHE'] = str(self.work / 'cache')
        argv = [
            str(Path(sys.executable).with_name('ansible-playbook')),
            '-i',
            str(self.inventory),
            str(book),
            '-e',
            # extra vars win over the role vars of the playbook
            json.dumps({'rid': rid, 'art': str(art), **extra}),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
        self.deploys.append(done)
        return done

    def releases(self) -> list[str]:
        return sorted(name for name in os.listdir(self.fs / 'srv/app/releases') if not name.startswith('.'))


def snapshot(top: Path) -> dict[str, tuple]:
    """Owner, group, mode and ACLs of every path of the host but SKIP, read without following links."""
    found: dict[str, tuple] = {}
    skip = {top / rel for rel in SKIP}
    for directory, dirs, files in os.walk(top):
        here = Path(directory)
        dirs[:] = [name for name in dirs if here / name not in skip]
        for name in [*dirs, *files]:
            path = here / name
            st = os.lstat(path)
            acls = ()
            if not stat.S_ISLNK(st.st_mode):
                acls = tuple(
                    (attr, os.getxattr(path, attr, follow_symlinks=False))
                    for attr in sorted(os.listxattr(path, follow_symlinks=False))
                    if attr.startswith('system.posix_acl')
                )
            found[str(path.relative_to(top))] = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), acls)
    return found


def artifact(path: Path, *, version: str) -> Path:
    files = {
        'index.php': f'<?php echo "{version}";\n',
        'bin/migrate.py': MIGRATE,
        # the app's default storage content, seeded into shared/storage on the first deploy
        'storage/framework/.gitignore': '*\n',
        'storage/default-avatar.txt': 'default\n',
        'var/.keep': '',
    }
    with tarfile.open(path, 'w:gz') as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode = 0o755 if rel.startswith('bin/') else 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope='module')
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    work = tmp_path_factory.mktemp('privilege')
    inventory = work / 'inventory.yml'
    up = subprocess.run(
        [sys.executable, str(HOSTCTL), 'up', '--name', NAME, '--count', '1', '--inventory', str(inventory)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stderr
        found = Host(work=work, inventory=inventory, state=hostctl.load_state(names=hostctl.Names(name=NAME)))
        setup(found)
        yield found
    finally:
        subprocess.run(
            [sys.executable, str(HOSTCTL), 'down', '--name', NAME], capture_output=True, timeout=120, check=False
        )


def user_ids(host: Host, user: str) -> tuple[int, int]:
    for line in (host.fs / 'etc/passwd').read_text().splitlines():
        fields = line.split(':')
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise AssertionError(f'no user {user} on the host')


def setup(host: Host) -> None:
    """As root, from the controller: the deploy root, the reload command and the limited sudoers file."""
    fs = host.fs
    (fs / 'srv/app').mkdir(parents=True)
    os.chown(fs / 'srv/app', *user_ids(host, 'deploy'))
    (fs / RELOAD.lstrip('/')).write_text(RELOAD_SCRIPT)
    os.chmod(fs / RELOAD.lstrip('/'), 0o755)
    sudoers = fs / 'etc/sudoers.d/deploy'
    sudoers.write_text(SUDOERS)
    os.chmod(sudoers, 0o440)
    checked = subprocess.run(
        ['chroot', str(fs), '/usr/sbin/visudo', '-c', '-f', '/etc/sudoers.d/deploy'],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture(scope='module')
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp('artifacts')
    return {f'v{n}': artifact(out / f'v{n}.tar.gz', version=f'v{n}') for n in (1, 2, 3)}


def web_user_writes(host: Host, rid: str) -> None:
    """What a PHP app does: caches in its release (directories 0755), uploads in shared storage, and, as an
    attacker, links out of the root wherever it can write."""
    host.as_web(
        f"""
        umask 022
        cd {ROOT}/current
        mkdir -m 0755 -p var/cache/views/{rid} var/cache/data
        echo compiled > var/cache/views/{rid}/page.php
        echo upload > storage/upload-{rid}.txt
        ln -s /etc var/cache/data/etc
        ln -s /etc/passwd var/cache/passwd
        ln -s /etc storage/etc-{rid}
        """
    )


def test_the_sudoers_file_limits_the_deploy_user(host: Host) -> None:
    assert host.ssh('sudo -n /usr/bin/id -u', check=False).returncode != 0
    assert host.ssh('sudo -n /usr/bin/systemctl --version', check=False).returncode != 0
    assert host.ssh(f'sudo -n {RELOAD}').returncode == 0
    # ... but the rule that lets Ansible become root runs any Python: it is root in effect
    done = host.ssh(
        'sudo -n /bin/sh -c \'echo BECOME-SUCCESS-x ; /usr/bin/python3 -c "import os; print(os.geteuid())"\''
    )
    assert done.stdout.split() == ['BECOME-SUCCESS-x', '0']


def test_three_deploys_as_the_deploy_user(host: Host, artifacts: dict[str, Path]) -> None:
    before = snapshot(host.fs)
    for rid in ('v1', 'v2', 'v3'):
        done = host.deploy(rid=rid, art=artifacts[rid])
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        web_user_writes(host, rid)
    # pruning (with become) removed v1 and what the web user wrote in it; the deploy user alone could not
    assert host.releases() == ['v2', 'v3']
    assert len(host.releases()) == KEEP
    assert os.readlink(host.fs / 'srv/app/current') == 'releases/v3'
    after = snapshot(host.fs)
    changed = {
        path: (before.get(path), after.get(path))
        for path in sorted(set(before) | set(after))
        if before.get(path) != after.get(path)
    }
    assert changed == {}


def test_steps_ran_as_the_users_they_were_given_to(host: Host) -> None:
    root = host.fs / 'srv/app'
    web_uid = user_ids(host, 'www-data')[0]
    # the migrations ran as www-data, once per deploy
    assert [line.split() for line in (root / 'shared/storage/app.db').read_text().splitlines()] == [
        ['v1', str(web_uid)],
        ['v2', str(web_uid)],
        ['v3', str(web_uid)],
    ]
    # the reload ran as root through its one sudo rule, after each switch (and once in the sudoers test)
    assert (host.fs / 'run/app-reloads').read_text().split() == ['0'] * 4
    # the release and its metadata belong to the deploy user: nothing but pruning ran as root
    deploy_uid = (root / 'releases').stat().st_uid
    assert deploy_uid != 0
    for rid in ('v2', 'v3'):
        assert (root / 'releases' / rid / '.release.json').stat().st_uid == deploy_uid
        assert (root / 'releases' / rid / 'index.php').stat().st_uid == deploy_uid


def test_the_web_user_can_write_every_writable_and_shared_path(host: Host) -> None:
    host.as_web(
        f"""
        for release in {ROOT}/releases/v2 {ROOT}/releases/v3; do
            touch $release/var/cache/probe && rm $release/var/cache/probe
        done
        touch {ROOT}/shared/storage/probe {ROOT}/shared/storage/framework/probe
        """
    )
    # the shared storage was seeded from the first release: the app's default content is there
    assert (host.fs / 'srv/app/shared/storage/default-avatar.txt').read_text() == 'default\n'
    assert (host.fs / 'srv/app/shared/storage/upload-v1.txt').read_text() == 'upload\n'


def test_a_migration_does_not_follow_the_web_users_link_out_of_the_root(host: Host, artifacts: dict[str, Path]) -> None:
    """The web user replaces the database with a link to a root-only file; the migration runs as the web user."""
    shadow = host.fs / 'etc/shadow'
    before = (shadow.read_bytes(), os.lstat(shadow).st_mode)
    host.as_web(f'cd {ROOT}/shared/storage && mv app.db app.db.real && ln -s /etc/shadow app.db')
    try:
        done = host.deploy(rid='v4', art=artifacts['v1'])
        assert done.returncode != 0
        assert 'Permission denied' in done.stdout and 'migrations' in done.stdout, done.stdout[-3000:]
    finally:
        host.as_web(f'cd {ROOT}/shared/storage && rm app.db && mv app.db.real app.db')
    assert (shadow.read_bytes(), os.lstat(shadow).st_mode) == before
    assert os.readlink(host.fs / 'srv/app/current') == 'releases/v3'


def test_reload_and_writable_steps_with_become(host: Host, artifacts: dict[str, Path]) -> None:
    """release_reload_become and release_writable_become: only those steps run as root."""
    done = host.deploy(
        rid='v5',
        art=artifacts['v2'],
        release_reload_become=True,
        release_reload_command=['sh', '-c', 'id -u > /run/app-reload-become'],
        release_writable_become=True,
        release_writable_method='chown',
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert (host.fs / 'run/app-reload-become').read_text().split() == ['0']
    release = host.fs / 'srv/app/releases/v5'
    web_uid = user_ids(host, 'www-data')[0]
    assert (release / 'var/cache').stat().st_uid == web_uid
    assert release.stat().st_uid == (host.fs / 'srv/app/releases').stat().st_uid != 0
    assert host.releases() == ['v3', 'v5']


def test_become_with_a_one_command_sudo_rule_fails(host: Host) -> None:
    """What the README says: Ansible's become runs Python through /bin/sh, which a one-command rule does not allow."""
    sudoers = host.fs / 'etc/sudoers.d/deploy'
    full = sudoers.read_text()
    sudoers.write_text(f'deploy ALL=(root) NOPASSWD: {RELOAD}\n')
    try:
        env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING='false')
        env.setdefault('ANSIBLE_COLLECTIONS_PATH', str(REPO / 'build' / 'collections'))
        done = subprocess.run(
            [
                str(Path(sys.executable).with_name('ansible')),
                'all',
                '-i',
                str(host.inventory),
                '-b',
                '-m',
                'atomic.deploy.release_prune',
                '-a',
                f'root={ROOT} keep=2',
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode != 0
        assert 'Missing sudo password' in done.stdout + done.stderr, done.stdout + done.stderr
        # the one command itself still works, without become
        assert host.ssh(f'sudo -n {RELOAD}').returncode == 0
    finally:
        sudoers.write_text(full)
