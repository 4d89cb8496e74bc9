"""The life of one deploy root on three hosts: every source type, shared links, the web user's uploads,
migrations, check mode, an idempotent re-deploy, a failed migration, re-activation and a named rollback.

Each ``step_*`` fixture runs one playbook and depends on the step before it; the tests of a step come
before the next step's tests in this file (pytest sets module fixtures up lazily, in test order), so
every test sees the roots as its step left them.

run: bash tests/role/run.sh -k lifecycle
"""

from __future__ import annotations

import grp
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    FILES,
    HOSTS,
    PYTHON,
    FileServer,
    Fleet,
    Run,
    as_web_user,
    current,
    diff_snapshots,
    free_port,
    git,
    history,
    inode,
    lock_held,
    make_archive,
    make_tree,
    meta,
    releases,
    sha256,
    snapshot,
)

SHARED_DIRS = ['storage', 'public/uploads']
WEB_GID = grp.getgrnam('www-data').gr_gid


class App:
    """The code the hosts deploy, from every kind of source, and the migration logs."""

    def __init__(self, *, base: Path) -> None:
        # The build made storage/ (with a file) and has no public/: both shared dirs are special.
        self.archive_v1 = make_archive(
            path=base / 'app-v1.tar.gz', files={'index.html': 'v1 from the archive\n', 'storage/keep.txt': 'build\n'}
        )
        self.archive_v2 = make_archive(path=base / 'app-v2.tar.gz', files={'index.html': 'v2 from the archive\n'})
        www = base / 'www'
        make_archive(path=www / 'app.tar.gz', files={'index.html': 'v1 from the url\n', 'storage/keep.txt': 'url\n'})
        self.url_archive = www / 'app.tar.gz'
        self.directory = make_tree(
            root=base / 'app-dir', files={'index.html': 'v2 from the directory\n', 'public/site.css': 'body {}\n'}
        )
        self.repo = make_tree(root=base / 'repo', files={'app.txt': 'v1 from git\n'})
        git('init', '-q', '-b', 'main', cwd=self.repo)
        git('add', 'app.txt', cwd=self.repo)
        git('commit', '-qm', 'v1', cwd=self.repo)
        git('tag', '-a', 'v1', '-m', 'release v1', cwd=self.repo)
        (self.repo / 'app.txt').write_text('v2 from git\n', encoding='utf-8')
        git('commit', '-qam', 'v2', cwd=self.repo)
        self.v1_sha = git('rev-parse', 'v1^{commit}', cwd=self.repo)
        self.head_sha = git('rev-parse', 'HEAD', cwd=self.repo)
        self.server = FileServer(directory=www)
        self.logs = base / 'migrations'
        self.logs.mkdir()

    def migrate(self, *, log: str) -> list[str]:
        """The migrate command (argv) that appends to the log ``log``."""
        return [PYTHON, str(FILES / 'migrate_log.py'), str(self.logs / log)]

    def log(self, *, name: str) -> list[str]:
        path = self.logs / name
        return path.read_text(encoding='utf-8').splitlines() if path.exists() else []


@pytest.fixture(scope='module')
def app(fleet: Fleet) -> Iterator[App]:
    made = App(base=fleet.base / 'app')
    yield made
    made.server.stop()


def first_vars(*, app: App) -> tuple[dict, dict]:
    host_vars = {
        'h1': {'release_source': 'archive', 'release_archive': str(app.archive_v1)},
        'h2': {
            'release_source': 'url',
            'release_url': f'{app.server.url}/app.tar.gz',
            'release_checksum': f'sha256:{sha256(app.url_archive)}',
        },
        'h3': {'release_source': 'git', 'release_git_repo': str(app.repo), 'release_git_version': 'v1'},
    }
    extra = {
        'release_id': 'r1',
        'release_shared_dirs': SHARED_DIRS,
        'release_shared_group': 'www-data',
        'release_migrate_command': app.migrate(log='r1.log'),
    }
    return host_vars, extra


def second_vars(*, app: App) -> tuple[dict, dict]:
    host_vars = {
        'h1': {'release_source': 'directory', 'release_directory': str(app.directory)},
        'h2': {'release_source': 'none'},
        'h3': {'release_source': 'archive', 'release_archive': str(app.archive_v2)},
    }
    extra = {
        'release_id': 'r2',
        'release_shared_dirs': SHARED_DIRS,
        'release_shared_group': 'www-data',
        'release_hooks_after_fetch': [str(FILES / 'hooks' / 'write_app.yml')],
        'release_migrate_command': app.migrate(log='r2.log'),
        'release_migrate_host': 'h2',
    }
    return host_vars, extra


def plain_vars(*, release_id: str) -> tuple[dict, dict]:
    """An empty release (source none, no hooks) on every host."""
    host_vars = {host: {'release_source': 'none'} for host in HOSTS}
    return host_vars, {'release_id': release_id, 'release_shared_dirs': SHARED_DIRS}


# --- step 1: the first deploy: archive on h1, url on h2, git on h3 ----------------------------------


@pytest.fixture(scope='module')
def step_first(fleet: Fleet, app: App) -> Run:
    # Data the application already keeps in shared/storage on h1 before the first deploy.
    make_tree(root=fleet.root('h1') / 'shared' / 'storage', files={'keep.txt': 'shared data\n'})
    host_vars, extra = first_vars(app=app)
    return fleet.ok(fleet.deploy(host_vars=host_vars, extra=extra))


def test_first_deploy_switches_every_host(fleet: Fleet, step_first: Run) -> None:
    for host, root in fleet.roots.items():
        assert current(root) == 'r1', host
        assert meta(root, release='r1')['state'] == 'complete', host
        assert [(e['event'], e['id']) for e in history(root)] == [('deploy', 'r1')], host
        assert not lock_held(root), f'{host}: the deploy lock was left behind'


def test_archive_source(fleet: Fleet, app: App, step_first: Run) -> None:
    release = fleet.root('h1') / 'releases' / 'r1'
    assert (release / 'index.html').read_text(encoding='utf-8') == 'v1 from the archive\n'
    assert meta(fleet.root('h1'), release='r1')['source']['type'] == 'archive'


def test_url_source_with_checksum(fleet: Fleet, app: App, step_first: Run) -> None:
    release = fleet.root('h2') / 'releases' / 'r1'
    assert (release / 'index.html').read_text(encoding='utf-8') == 'v1 from the url\n'
    source = meta(fleet.root('h2'), release='r1')['source']
    assert source['type'] == 'url'
    assert source['url'] == f'{app.server.url}/app.tar.gz'
    assert source['checksum'] == f'sha256:{sha256(app.url_archive)}'


def test_git_source_records_the_tag_commit(fleet: Fleet, app: App, step_first: Run) -> None:
    release = fleet.root('h3') / 'releases' / 'r1'
    assert (release / 'app.txt').read_text(encoding='utf-8') == 'v1 from git\n', 'the tag v1 was not deployed'
    assert app.v1_sha != app.head_sha
    source = meta(fleet.root('h3'), release='r1')['source']
    assert source['type'] == 'git'
    assert source['git_sha'] == app.v1_sha, 'source.git_sha is not the commit the tag v1 resolves to'


def test_build_created_dir_is_replaced_by_the_shared_link(fleet: Fleet, step_first: Run) -> None:
    root = fleet.root('h1')
    link = root / 'releases' / 'r1' / 'storage'
    assert link.is_symlink(), f"{link} is not a link: the build's storage/ was kept"
    assert link.resolve() == (root / 'shared' / 'storage').resolve()
    # The shared data is the application's: the build's storage/keep.txt never lands on it.
    assert (root / 'shared' / 'storage' / 'keep.txt').read_text(encoding='utf-8') == 'shared data\n'
    assert sorted(p.name for p in (root / 'shared' / 'storage').iterdir()) == ['keep.txt']


def test_missing_parent_of_a_shared_dir_is_created(fleet: Fleet, step_first: Run) -> None:
    for host, root in fleet.roots.items():
        public = root / 'releases' / 'r1' / 'public'
        assert public.is_dir() and not public.is_symlink(), f'{host}: {public} was not created as a directory'
        uploads = public / 'uploads'
        assert uploads.is_symlink(), f'{host}: {uploads} is not a link'
        assert uploads.resolve() == (root / 'shared' / 'public' / 'uploads').resolve(), host


def test_shared_dirs_are_setgid_and_group_owned(fleet: Fleet, step_first: Run) -> None:
    for host, root in fleet.roots.items():
        for path in (root / 'shared', root / 'shared' / 'storage', root / 'shared' / 'public' / 'uploads'):
            info = path.stat()
            assert oct(info.st_mode & 0o7777) == oct(0o2775), f'{host}: {path} has mode {oct(info.st_mode & 0o7777)}'
            assert info.st_gid == WEB_GID, f'{host}: {path} has gid {info.st_gid}, not www-data'


def test_migrations_run_once_on_the_first_host(fleet: Fleet, app: App, step_first: Run) -> None:
    assert app.log(name='r1.log') == [f'h1 {fleet.root("h1") / "releases" / "r1"}']


# --- the web server writes an upload --------------------------------------------------------------


@pytest.fixture(scope='module')
def uploads(fleet: Fleet, step_first: Run) -> dict[str, Path]:
    written = {}
    for host, root in fleet.roots.items():
        path = root / 'current' / 'public' / 'uploads' / f'photo-{host}.txt'
        proc = as_web_user('tee', str(path), stdin=f'uploaded on {host}\n')
        assert proc.returncode == 0, f'www-data cannot write {path}: {proc.stderr}'
        written[host] = path
    return written


def test_upload_gets_the_shared_group(uploads: dict[str, Path]) -> None:
    for host, path in uploads.items():
        info = path.stat()
        assert info.st_uid != 0, f'{host}: {path} was not written by www-data'
        assert info.st_gid == WEB_GID, f'{host}: {path} did not inherit the group www-data (setgid)'


# --- step 2: a check-mode run of the second deploy --------------------------------------------------


@pytest.fixture(scope='module')
def step_check(fleet: Fleet, app: App, uploads: dict[str, Path]) -> tuple[Run, list[str]]:
    watched = [*fleet.roots.values(), app.logs]
    before = snapshot(*watched)
    host_vars, extra = second_vars(app=app)
    # Everything a deploy can do, including steps a real run would fail on (nothing listens at the URL,
    # the reload command fails): check mode runs none of them.
    extra.update(
        release_hooks_after_activate=[str(FILES / 'hooks' / 'write_app.yml')],
        release_healthcheck_url=f'http://127.0.0.1:{free_port()}/',
        release_healthcheck_retries=0,
        release_reload_command=['false'],
    )
    run = fleet.deploy(host_vars=host_vars, extra=extra, check=True, diff=True)
    return run, diff_snapshots(before=before, after=snapshot(*watched))


def test_check_mode_changes_nothing(step_check: tuple[Run, list[str]], fleet: Fleet) -> None:
    run, changes = step_check
    fleet.ok(run)
    assert changes == [], '--check changed the disk:\n' + '\n'.join(changes)


def test_check_diff_shows_the_current_link_change(step_check: tuple[Run, list[str]]) -> None:
    run, _changes = step_check
    assert run.stdout.count('-    "current": "releases/r1"') == len(HOSTS), run.describe()
    assert run.stdout.count('+    "current": "releases/r2"') == len(HOSTS), run.describe()


# --- step 3: the second deploy: directory on h1, none + hook on h2, archive on h3, migrate on h2 ---


@pytest.fixture(scope='module')
def step_second(fleet: Fleet, app: App, step_check: tuple[Run, list[str]]) -> Run:
    host_vars, extra = second_vars(app=app)
    return fleet.ok(fleet.deploy(host_vars=host_vars, extra=extra))


def test_second_deploy_switches_every_host(fleet: Fleet, step_second: Run) -> None:
    for host, root in fleet.roots.items():
        assert current(root) == 'r2', host
        assert meta(root, release='r2')['state'] == 'complete', host
        assert [(e['event'], e['id'], e.get('previous')) for e in history(root)][-1] == ('deploy', 'r2', 'r1'), host


def test_directory_source(fleet: Fleet, step_second: Run) -> None:
    release = fleet.root('h1') / 'releases' / 'r2'
    assert (release / 'index.html').read_text(encoding='utf-8') == 'v2 from the directory\n'
    assert (release / 'public' / 'site.css').read_text(encoding='utf-8') == 'body {}\n'
    assert (release / 'public' / 'uploads').is_symlink()
    assert meta(fleet.root('h1'), release='r2')['source']['type'] == 'directory'


def test_none_source_built_by_the_after_fetch_hook(fleet: Fleet, step_second: Run) -> None:
    release = fleet.root('h2') / 'releases' / 'r2'
    assert meta(fleet.root('h2'), release='r2')['source']['type'] == 'none'
    assert (release / 'built-by-hook.txt').read_text(encoding='utf-8') == 'r2 built on h2\n'
    assert sorted(p.name for p in release.iterdir()) == ['.release.json', 'built-by-hook.txt', 'public', 'storage']


def test_migrations_run_once_on_the_migrate_host(fleet: Fleet, app: App, step_second: Run) -> None:
    assert app.log(name='r2.log') == [f'h2 {fleet.root("h2") / "releases" / "r2"}']


def test_upload_stays_readable_after_the_next_deploy(fleet: Fleet, uploads: dict[str, Path], step_second: Run) -> None:
    for host, path in uploads.items():
        proc = as_web_user('cat', str(path))
        assert proc.returncode == 0, f'www-data cannot read {path} after the deploy: {proc.stderr}'
        assert proc.stdout == f'uploaded on {host}\n'
        assert path.resolve().parent == (fleet.root(host) / 'shared' / 'public' / 'uploads').resolve()
        assert path.stat().st_gid == WEB_GID


def test_shared_data_untouched_by_the_next_deploy(fleet: Fleet, step_second: Run) -> None:
    assert (fleet.root('h1') / 'shared' / 'storage' / 'keep.txt').read_text(encoding='utf-8') == 'shared data\n'


# --- step 4: the same release again: nothing to do ----------------------------------------------------


@pytest.fixture(scope='module')
def step_again(fleet: Fleet, app: App, step_second: Run) -> tuple[Run, list[str], list[str]]:
    before = snapshot(*fleet.roots.values())
    log_before = app.log(name='r2.log')
    host_vars, extra = second_vars(app=app)
    run = fleet.ok(fleet.deploy(host_vars=host_vars, extra=extra))
    return run, diff_snapshots(before=before, after=snapshot(*fleet.roots.values())), log_before


def test_redeploy_of_the_live_release_changes_nothing(step_again: tuple[Run, list[str], list[str]], app: App) -> None:
    run, changes, log_before = step_again
    for host, counts in run.recap.items():
        assert counts['changed'] == 0, f'{host} reported changes\n{run.describe()}'
    assert changes == [], 'the re-deploy changed the disk:\n' + '\n'.join(changes)
    assert app.log(name='r2.log') == log_before, 'the migrations ran again'


def test_redeploy_runs_only_the_stage_module(step_again: tuple[Run, list[str], list[str]]) -> None:
    run, _changes, _log = step_again
    # Besides the stage, only controller-side tasks: the argument spec check import_role adds, and the
    # plan (a set_fact run once, on the first host).
    ran = {name for name in run.ran() if not name.startswith("Validating arguments against arg spec 'main'")}
    assert ran == {'Plan and check the deploy', 'Stage release r2'}, run.describe()
    for host, counts in run.recap.items():
        assert counts['ok'] == (3 if host == 'h1' else 2), f'{host}: {counts}'


# --- step 5: a failing migration ----------------------------------------------------------------------


@pytest.fixture(scope='module')
def step_bad_migration(fleet: Fleet, step_again: tuple) -> Run:
    host_vars, extra = plain_vars(release_id='r3')
    return fleet.failed(fleet.deploy(host_vars=host_vars, extra={**extra, 'release_migrate_command': ['false']}))


def test_failed_migration_switches_no_host(fleet: Fleet, step_bad_migration: Run) -> None:
    run = step_bad_migration
    assert 'release r3 was not switched on any host' in run.stdout, run.describe()
    assert 'migrations failed on host h1' in run.stdout, run.describe()
    for host, root in fleet.roots.items():
        assert current(root) == 'r2', f'{host}: current moved'
        assert meta(root, release='r3')['state'] == 'failed', f'{host}: r3 is not marked failed'
        reason = meta(root, release='r3')['reason']
        assert 'migrations failed on host h1' in reason, f'{host}: r3 failed for {reason}'
        assert not lock_held(root), f'{host}: the deploy lock was left behind'
        last = history(root)[-1]
        assert (last['event'], last['id']) == ('failed', 'r3'), f'{host}: history ends with {last}'
        assert run.recap[host]['failed'] == 1, f'{host}: {run.recap[host]}'


# --- step 6: deploying r1 again: activated as it is; pruning keeps current and newer failed ones ------


@pytest.fixture(scope='module')
def step_reactivate(fleet: Fleet, step_bad_migration: Run) -> tuple[Run, dict, dict]:
    inodes = {host: inode(root / 'releases' / 'r1') for host, root in fleet.roots.items()}
    started = {host: meta(root, release='r1')['started'] for host, root in fleet.roots.items()}
    host_vars, extra = plain_vars(release_id='r1')
    extra.update(release_keep=1, release_hooks_after_fetch=[str(FILES / 'hooks' / 'write_app.yml')])
    return fleet.ok(fleet.deploy(host_vars=host_vars, extra=extra)), inodes, started


def test_existing_release_is_activated_without_rebuilding(fleet: Fleet, step_reactivate: tuple) -> None:
    _run, inodes, started = step_reactivate
    for host, root in fleet.roots.items():
        assert current(root) == 'r1', host
        release = root / 'releases' / 'r1'
        assert inode(release) == inodes[host], f'{host}: {release} was rebuilt'
        assert meta(root, release='r1')['started'] == started[host], f'{host}: r1 has a new start time'
        assert meta(root, release='r1')['state'] == 'complete', host
        assert not (release / 'built-by-hook.txt').exists(), f'{host}: the after_fetch hook ran for r1'
        last = history(root)[-1]
        assert (last['event'], last['id'], last.get('previous')) == ('activate', 'r1', 'r2'), f'{host}: {last}'


def test_prune_keeps_current_and_failed_releases_newer_than_it(fleet: Fleet, step_reactivate: tuple) -> None:
    # release_keep=1: r2 is the newest complete release, r1 is current, r3 failed after r1.
    for host, root in fleet.roots.items():
        assert releases(root) == {'r1', 'r2', 'r3'}, host


# --- step 7: a rollback to a named release ------------------------------------------------------------


@pytest.fixture(scope='module')
def step_named_rollback(fleet: Fleet, step_reactivate: tuple) -> Run:
    return fleet.ok(fleet.playbook('rollback', extra={'release_rollback_to': 'r2'}))


def test_rollback_to_a_named_release(fleet: Fleet, step_named_rollback: Run) -> None:
    # r1 is the oldest release: without release_rollback_to there is nothing to roll back to.
    for host, root in fleet.roots.items():
        assert current(root) == 'r2', host
        assert meta(root, release='r1')['state'] == 'failed', f'{host}: the release rolled back from is not failed'
        last = history(root)[-1]
        assert (last['event'], last['id'], last.get('previous')) == ('rollback', 'r2', 'r1'), f'{host}: {last}'
        assert not lock_held(root), host
