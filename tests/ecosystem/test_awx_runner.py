"""Jobs driven through ansible-runner the way AWX drives them.

Each job gets a private data dir of its own, laid out as AWX lays it out:

    <pdd>/project/               the project (an SCM checkout in AWX): playbooks that import the
                                 collection's playbooks, collections/requirements.yml naming the
                                 collection tarball, and the app artifacts
    <pdd>/project/collections/   the collection, installed by ``ansible-galaxy collection install -r
                                 collections/requirements.yml`` run in the project, offline, as AWX's
                                 project update does
    <pdd>/inventory/hosts        the inventory (two hosts over the local connection, each with its own root)
    <pdd>/env/extravars          survey answers plus the awx_* variables AWX adds to every job
    <pdd>/env/envvars            the environment AWX sets (the collections path)

Jobs run with ``ansible_runner.run`` (in process, as AWX's receptor worker does) or, for the job that
gets killed, the ``ansible-runner`` command in a process group of its own, which is then killed with
SIGKILL mid-deploy: the "cancelled job whose pod died" case.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import ansible_runner
import pytest
import yaml
from helpers import REPO_ROOT, Collection, ansible_env, run, tool
from support.root import current_id, metadata

pytestmark = pytest.mark.slow

APP_DIR = REPO_ROOT / 'examples' / 'app'
HOSTS = ('web1', 'web2')
DEPLOY_PLAYBOOK = """---
# The job template's playbook: AWX picks playbooks from the project, so this one imports the
# collection's playbook (found in collections/, installed from collections/requirements.yml).
- name: Deploy
  ansible.builtin.import_playbook: atomic.deploy.deploy
"""
ROLLBACK_PLAYBOOK = """---
# The rollback job template's playbook. A workflow passes the deploy job's set_stats artifacts to
# the next node as extra vars; this maps the previous release id onto the role's rollback target.
- name: Roll back
  ansible.builtin.import_playbook: atomic.deploy.rollback
  vars:
    release_rollback_to: "{{ release_previous_id | default('') }}"
"""


class Project:
    """The AWX project: playbooks, collections/requirements.yml + tarball, app artifacts; collection installed."""

    def __init__(self, *, root: Path, collection: Collection) -> None:
        self.root = root
        self.collection = collection
        self.dir = root / 'project'
        self.collections_path = self.dir / 'collections'
        self.artifacts = self.dir / 'dist'

    def create(self) -> None:
        self.collections_path.mkdir(parents=True)
        self.artifacts.mkdir()
        (self.dir / 'deploy.yml').write_text(DEPLOY_PLAYBOOK, encoding='utf-8')
        (self.dir / 'rollback.yml').write_text(ROLLBACK_PLAYBOOK, encoding='utf-8')
        shutil.copy2(self.collection.tarball, self.collections_path / self.collection.tarball.name)
        requirements = {'collections': [{'name': f'collections/{self.collection.tarball.name}', 'type': 'file'}]}
        (self.collections_path / 'requirements.yml').write_text(
            '---\n' + yaml.safe_dump(requirements, sort_keys=False), encoding='utf-8'
        )
        # AWX's project update: ansible-galaxy collection install -r ... run in the project directory
        run(
            [
                tool('ansible-galaxy'),
                'collection',
                'install',
                '--offline',
                '-r',
                'collections/requirements.yml',
                '-p',
                str(self.collections_path),
            ],
            env=ansible_env(collections_path=self.collections_path, home=self.root / 'galaxy-home'),
            cwd=self.dir,
        )
        for version in ('v1', 'v2'):
            with tarfile.open(self.artifacts / f'example-{version}.tar.gz', 'w:gz') as archive:
                archive.add(APP_DIR / version, arcname='.')

    @property
    def installed(self) -> Path:
        return self.collections_path / 'ansible_collections' / 'atomic' / 'deploy'


class Jobs:
    """Creates a private data dir per job, as AWX does, and runs the job in it."""

    def __init__(self, *, base: Path, project: Project, roots: dict[str, Path]) -> None:
        self.base = base
        self.project = project
        self.roots = roots

    def pdd(self, job_id: int) -> Path:
        return self.base / f'job-{job_id}'

    def project_dir(self, job_id: int) -> Path:
        """Where the job sees its project (in AWX: /runner/project inside the execution environment)."""
        return self.pdd(job_id) / 'project'

    def prepare(self, *, job_id: int, extravars: dict) -> Path:
        pdd = self.pdd(job_id)
        shutil.copytree(self.project.dir, pdd / 'project', symlinks=True)
        (pdd / 'inventory').mkdir()
        (pdd / 'env').mkdir()
        hosts = {
            host: {
                'ansible_connection': 'local',
                # interpreter discovery on this machine finds a broken pyenv shim
                'ansible_python_interpreter': sys.executable,
                'release_root': str(self.roots[host]),
            }
            for host in HOSTS
        }
        inventory = {'all': {'children': {'web': {'hosts': hosts}}}}
        (pdd / 'inventory' / 'hosts').write_text('---\n' + yaml.safe_dump(inventory, sort_keys=False), encoding='utf-8')
        # the variables AWX adds to every job's extra vars
        awx = {
            'awx_job_id': job_id,
            'awx_job_template_name': 'example deploy',
            'awx_user_name': 'alice',
            'awx_project_revision': '0123456789abcdef0123456789abcdef01234567',
            'tower_job_id': job_id,
            'tower_user_name': 'alice',
        }
        (pdd / 'env' / 'extravars').write_text(json.dumps({**awx, **extravars}), encoding='utf-8')
        home = pdd / 'ansible-home'
        (home / 'tmp').mkdir(parents=True)
        envvars = {
            # AWX points Ansible at the collections its project update installed
            'ANSIBLE_COLLECTIONS_PATH': str(pdd / 'project' / 'collections'),
            'ANSIBLE_HOME': str(home),
            'ANSIBLE_LOCAL_TEMP': str(home / 'tmp'),
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_DEPRECATION_WARNINGS': '0',
        }
        (pdd / 'env' / 'envvars').write_text(json.dumps(envvars), encoding='utf-8')
        return pdd

    def run(self, *, job_id: int, playbook: str, extravars: dict) -> ansible_runner.Runner:
        pdd = self.prepare(job_id=job_id, extravars=extravars)
        return ansible_runner.run(
            private_data_dir=str(pdd), playbook=playbook, ident=str(job_id), quiet=True, timeout=300
        )

    def start_killable(self, *, job_id: int, playbook: str, extravars: dict) -> subprocess.Popen:
        """The ansible-runner command in a session (process group) of its own, like a job's container."""
        pdd = self.prepare(job_id=job_id, extravars=extravars)
        log = (self.base / f'job-{job_id}.log').open('w', encoding='utf-8')
        env = {key: value for key, value in os.environ.items() if not key.startswith('ANSIBLE_')}
        try:
            return subprocess.Popen(
                [tool('ansible-runner'), 'run', str(pdd), '-p', playbook, '--ident', str(job_id)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        finally:
            log.close()

    def log(self, job_id: int) -> str:
        path = self.base / f'job-{job_id}.log'
        return path.read_text(encoding='utf-8', errors='replace') if path.exists() else ''


def survey(*, project: Path, version: str, **answers: object) -> dict:
    """Survey answers of the deploy job template: text, integer and multiple-choice (strings) answers."""
    answers_ = {
        'release_source': 'archive',
        'release_archive': str(project / 'dist' / f'example-{version}.tar.gz'),
        'release_shared_dirs': ['storage', 'public/uploads'],
        # a text answer: the role splits it like a shell would, without running one
        'release_migrate_command': './bin/migrate',
        'release_keep': 5,
    }
    answers_.update(answers)
    return answers_


def events(runner: ansible_runner.Runner) -> list[dict]:
    return list(runner.events)


def artifacts(runner: ansible_runner.Runner) -> dict:
    stats = [event for event in events(runner) if event.get('event') == 'playbook_on_stats']
    assert len(stats) == 1, f'job {runner.config.ident} has {len(stats)} playbook_on_stats events, not 1'
    return stats[0]['event_data'].get('artifact_data') or {}


def job_output(runner: ansible_runner.Runner) -> str:
    return runner.stdout.read() if runner.stdout else ''


def failure_messages(runner: ansible_runner.Runner) -> list[str]:
    return [
        str((event.get('event_data') or {}).get('res', {}).get('msg', ''))
        for event in events(runner)
        if event.get('event') == 'runner_on_failed'
    ]


def warnings_of(runner: ansible_runner.Runner) -> list[str]:
    found: list[str] = []
    for event in events(runner):
        res = (event.get('event_data') or {}).get('res') or {}
        if isinstance(res, dict):
            found.extend(str(warning) for warning in res.get('warnings') or [])
    return found


def assert_successful(runner: ansible_runner.Runner) -> None:
    assert runner.status == 'successful' and runner.rc == 0, (
        f'job {runner.config.ident} ended {runner.status} (rc {runner.rc}):\n{job_output(runner)[-8000:]}'
    )


def release_meta(root: Path, release_id: str) -> dict:
    found = metadata(root, release_id)
    assert found is not None, f'{root}/releases/{release_id}/.release.json is missing or not JSON'
    return found


def served_version(root: Path) -> str:
    return (root / 'current' / 'VERSION').read_text(encoding='utf-8').strip()


@pytest.fixture(scope='module')
def project(collection: Collection, tmp_path_factory: pytest.TempPathFactory) -> Project:
    created = Project(root=tmp_path_factory.mktemp('awx-project'), collection=collection)
    created.create()
    return created


def test_project_update_installs_the_collection(project: Project) -> None:
    manifest = json.loads((project.installed / 'MANIFEST.json').read_text(encoding='utf-8'))
    assert manifest['collection_info']['version'] == project.collection.version, f'{project.installed}: wrong version'
    assert (project.installed / 'playbooks' / 'deploy.yml').is_file(), (
        f'{project.installed} has no playbooks/deploy.yml'
    )


# --- a workflow: deploy v1, deploy v2, then the rollback node fed from the v2 job's artifacts ------------


@pytest.fixture(scope='module')
def workflow(project: Project, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp('awx-workflow')
    jobs = Jobs(base=base, project=project, roots={host: base / 'srv' / host / 'example' for host in HOSTS})
    first = jobs.run(job_id=1001, playbook='deploy.yml', extravars=survey(project=jobs.project_dir(1001), version='v1'))
    assert_successful(first)
    # release ids are UTC seconds: make sure the second deploy gets another one
    time.sleep(1.1)
    second = jobs.run(
        job_id=1002, playbook='deploy.yml', extravars=survey(project=jobs.project_dir(1002), version='v2')
    )
    assert_successful(second)
    # a workflow passes the artifacts of the nodes before to the next node's extra vars
    rollback = jobs.run(job_id=1003, playbook='rollback.yml', extravars=dict(artifacts(second)))
    return {'jobs': jobs, 'first': first, 'second': second, 'rollback': rollback}


def test_deploy_job_succeeds(workflow: dict) -> None:
    jobs: Jobs = workflow['jobs']
    first_id = artifacts(workflow['first'])['release_deployed_id']
    for host, root in jobs.roots.items():
        assert (root / 'releases' / first_id).is_dir(), f'{host}: no release {first_id} in {root}/releases'
    stats = workflow['first'].stats
    assert sorted(stats['ok']) == sorted(HOSTS) and not stats['failures'], f'job 1001 stats: {stats}'


def test_deploy_job_publishes_set_stats_artifacts(workflow: dict) -> None:
    first, second = artifacts(workflow['first']), artifacts(workflow['second'])
    for name, data in (('1001', first), ('1002', second)):
        missing = {'release_deployed_id', 'release_previous_id', 'release_switched_hosts'} - set(data)
        assert not missing, f'job {name}: playbook_on_stats artifact_data lacks {sorted(missing)}: {data}'
        assert sorted(data['release_switched_hosts']) == sorted(HOSTS), f'job {name}: switched hosts {data}'
    assert re.fullmatch(r'\d{8}T\d{6}Z', first['release_deployed_id']), f'job 1001: default release id {first}'
    assert not first['release_previous_id'], f'job 1001 was the first deploy, yet reports a previous id: {first}'
    assert second['release_deployed_id'] != first['release_deployed_id'], f'both jobs deployed one id: {second}'
    assert second['release_previous_id'] == first['release_deployed_id'], (
        f"job 1002 reports previous {second['release_previous_id']!r}, not job 1001's {first['release_deployed_id']!r}"
    )
    # ansible-runner also keeps the artifacts where AWX reads them from a finished job
    for runner in (workflow['first'], workflow['second']):
        assert artifacts(runner)['release_deployed_id'], f'job {runner.config.ident} has an empty release id'


def test_release_records_the_awx_job(workflow: dict) -> None:
    jobs: Jobs = workflow['jobs']
    second_id = artifacts(workflow['second'])['release_deployed_id']
    for host, root in jobs.roots.items():
        deployed_by = release_meta(root, second_id).get('deployed_by') or {}
        assert str(deployed_by.get('awx_job_id')) == '1002', f'{host}: release {second_id} deployed_by {deployed_by}'
        assert deployed_by.get('user') == 'alice', (
            f'{host}: release {second_id} deployed_by {deployed_by} (awx_user_name)'
        )


def test_rollback_node_fed_from_artifacts_rolls_back(workflow: dict) -> None:
    jobs: Jobs = workflow['jobs']
    rollback = workflow['rollback']
    assert_successful(rollback)
    first_id = artifacts(workflow['first'])['release_deployed_id']
    second_id = artifacts(workflow['second'])['release_deployed_id']
    for host, root in jobs.roots.items():
        assert current_id(root) == first_id, f'{host}: current is {current_id(root)} after the rollback, not {first_id}'
        assert served_version(root) == '1', f'{host}: {root}/current/VERSION is not the v1 app'
        assert release_meta(root, second_id)['state'] == 'failed', f'{host}: release {second_id} not marked failed'


# --- a cancelled job: the runner killed with SIGKILL mid-deploy --------------------------------------------


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every live process."""
    found: dict[int, tuple[int, str]] = {}
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text(encoding='utf-8')
            cmdline = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode('utf-8', 'replace').strip()
        except OSError:
            continue
        # after "(command)": state ppid ...
        fields = stat.rsplit(')', 1)[1].split()
        if fields[0] != 'Z':
            found[int(entry.name)] = (int(fields[1]), cmdline)
    return found


def tree(pid: int) -> dict[int, str]:
    """pid and its live descendants, with their command lines.

    ansible-runner runs ansible-playbook on a pseudo-terminal in a session of its own, so a process
    group or session kill of the runner would miss it: walk the parent links instead.
    """
    table = processes()
    members = {pid} if pid in table else set()
    grew = True
    while grew:
        grew = False
        for child, (parent, _cmdline) in table.items():
            if parent in members and child not in members:
                members.add(child)
                grew = True
    return {member: table[member][1] for member in members}


def kill_tree(pid: int) -> None:
    """SIGKILL the runner and everything under it, as when a job's container dies."""
    # freeze first, so nothing forks away between the listing and the kill
    for member in tree(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGSTOP)
    for member in tree(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def kill_mid_migration(*, jobs: Jobs, job_id: int, extravars: dict) -> dict:
    """Start a deploy whose migration sleeps, SIGKILL the runner's process tree once the migration runs."""
    proc = jobs.start_killable(job_id=job_id, playbook='deploy.yml', extravars=extravars)
    lock = jobs.roots[HOSTS[0]] / '.deploy' / 'lock'
    deadline = time.monotonic() + 120
    members: dict[int, str] = {}
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f'job {job_id} ended ({proc.returncode}) before it was killed:\n{jobs.log(job_id)}', pytrace=False
                )
            members = tree(proc.pid)
            if lock.exists() and any(cmd.startswith('sleep 30') for cmd in members.values()):
                break
            if time.monotonic() > deadline:
                pytest.fail(f'job {job_id} never reached its migration:\n{jobs.log(job_id)}', pytrace=False)
            time.sleep(0.2)
    finally:
        kill_tree(proc.pid)
        proc.wait(timeout=30)
    # the kernel finishes killing asynchronously: give the processes a moment to be gone
    deadline = time.monotonic() + 15
    while True:
        table = processes()
        survivors = {pid: cmd for pid, cmd in members.items() if pid in table and table[pid][1] == cmd}
        if not survivors or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not survivors, f'job {job_id}: processes survived SIGKILL: {survivors}'
    return json.loads(lock.read_text(encoding='utf-8'))


@pytest.fixture(scope='module')
def cancelled(project: Project, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp('awx-cancel')
    jobs = Jobs(base=base, project=project, roots={host: base / 'srv' / host / 'example' for host in HOSTS})
    baseline = jobs.run(
        job_id=2000, playbook='deploy.yml', extravars=survey(project=jobs.project_dir(2000), version='v1')
    )
    assert_successful(baseline)
    time.sleep(1.1)
    slow = survey(project=jobs.project_dir(2001), version='v2', release_migrate_command='sleep 30')
    held = kill_mid_migration(jobs=jobs, job_id=2001, extravars=slow)
    blocked = jobs.run(
        job_id=2002, playbook='deploy.yml', extravars=survey(project=jobs.project_dir(2002), version='v2')
    )
    lock_after_blocked = json.loads((jobs.roots[HOSTS[0]] / '.deploy' / 'lock').read_text(encoding='utf-8'))
    current_after_blocked = {host: current_id(root) for host, root in jobs.roots.items()}
    # the operator re-launches with the survey's "steal the lock" answer (a multiple choice: a string)
    stolen = jobs.run(
        job_id=2003,
        playbook='deploy.yml',
        extravars=survey(project=jobs.project_dir(2003), version='v2', release_lock_steal='true'),
    )
    return {
        'jobs': jobs,
        'baseline': baseline,
        'held': held,
        'blocked': blocked,
        'stolen': stolen,
        'lock_after_blocked': lock_after_blocked,
        'current_after_blocked': current_after_blocked,
    }


def test_killed_job_leaves_its_lock(cancelled: dict) -> None:
    held = cancelled['held']
    assert str(held['owner'].get('awx_job_id')) == '2001', f'the lock left by job 2001 does not name it: {held}'
    assert held['owner'].get('user') == 'alice', f'the lock left by job 2001 does not name its user: {held}'
    assert cancelled['lock_after_blocked']['token'] == held['token'], 'the blocked job 2002 changed the lock'


def test_next_job_names_the_lock_holder(cancelled: dict) -> None:
    blocked = cancelled['blocked']
    held = cancelled['held']
    assert blocked.status == 'failed', f"job 2002 ran into job 2001's lock but ended {blocked.status}"
    messages = failure_messages(blocked)
    wanted = (
        'is held by alice@',
        'awx job 2001',
        f'release {held["release_id"]}',
        'playbook deploy.yml',
        'release_lock_steal',
    )
    naming = [msg for msg in messages if all(part in msg for part in wanted)]
    assert naming, f'no failure of job 2002 names the lock holder ({wanted}):\n' + '\n'.join(messages)
    jobs: Jobs = cancelled['jobs']
    baseline_id = artifacts(cancelled['baseline'])['release_deployed_id']
    for host in jobs.roots:
        found = cancelled['current_after_blocked'][host]
        assert found == baseline_id, f'{host}: current was {found} after the blocked job, not {baseline_id}'


def test_steal_takes_over_the_lock(cancelled: dict) -> None:
    stolen = cancelled['stolen']
    assert_successful(stolen)
    assert any('stole the deploy lock' in warning and 'awx job 2001' in warning for warning in warnings_of(stolen)), (
        f"job 2003 did not warn that it stole job 2001's lock: {warnings_of(stolen)}"
    )
    jobs: Jobs = cancelled['jobs']
    deployed = artifacts(stolen)['release_deployed_id']
    for host, root in jobs.roots.items():
        assert current_id(root) == deployed and served_version(root) == '2', f'{host}: v2 is not live after job 2003'
        assert not (root / '.deploy' / 'lock').exists(), f'{host}: job 2003 left {root}/.deploy/lock behind'


def test_expired_lock_is_taken_over(cancelled: dict) -> None:
    """A job killed with a 3 s lock timeout: the next job after expiry takes over with a warning."""
    jobs: Jobs = cancelled['jobs']
    time.sleep(1.1)
    slow = survey(
        project=jobs.project_dir(2004), version='v1', release_migrate_command='sleep 30', release_lock_timeout=3
    )
    held = kill_mid_migration(jobs=jobs, job_id=2004, extravars=slow)
    assert held['timeout'] == 3, f'job 2004 took its lock with timeout {held.get("timeout")}, not 3'
    while time.time() < held['expires_at'] + 0.2:
        time.sleep(0.2)
    after = jobs.run(job_id=2005, playbook='deploy.yml', extravars=survey(project=jobs.project_dir(2005), version='v1'))
    assert_successful(after)
    assert any(
        'took over the expired deploy lock' in warning and 'awx job 2004' in warning for warning in warnings_of(after)
    ), f"job 2005 did not warn about job 2004's lock: {warnings_of(after)}"
    for host, root in jobs.roots.items():
        assert served_version(root) == '1', f'{host}: v1 is not live after job 2005'
