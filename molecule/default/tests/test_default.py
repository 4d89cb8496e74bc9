"""What the default scenario leaves on every host: v1.0 and v1.1 deployed (prepare), v2.0 deployed
and deployed again (converge, idempotence), then rolled back to v1.1 (side_effect).

The role's variables come from molecule's inventory (molecule.yml), so the tests and the run cannot
drift apart. Tests log in as deploy, the user the deploys ran as.
"""

from __future__ import annotations

import pytest
import testinfra
from hostprobe import HOST_NAMES, INVENTORY, Snapshot, role_var, take_snapshot

testinfra_hosts = HOST_NAMES

ROOT: str = role_var('release_root')
SHARED_DIRS: list[str] = role_var('release_shared_dirs')
SHARED_FILES: list[str] = role_var('release_shared_files')
SHARED_GROUP: str = role_var('release_shared_group')
KEEP = int(role_var('release_keep'))
DOTENV: str = role_var('default_dotenv')

ROLLED_BACK_TO = 'v1.1'
ROLLED_BACK_FROM = 'v2.0'
PRUNED = 'v1.0'
VERSIONS = {'v1.1': '1', 'v2.0': '2'}
# (event, release id, previous) in the order the scenario makes them; the idempotence run adds none.
HISTORY = [
    ('deploy', 'v1.0', None),
    ('deploy', 'v1.1', 'v1.0'),
    ('deploy', 'v2.0', 'v1.1'),
    ('rollback', 'v1.1', 'v2.0'),
]


@pytest.fixture(scope='module')
def snap(host: testinfra.host.Host) -> Snapshot:
    return take_snapshot(host=host, root=ROOT)


def test_inventory_has_three_hosts() -> None:
    assert HOST_NAMES == ['default-1', 'default-2', 'default-3'], f'inventory {INVENTORY} lists {HOST_NAMES}'


def test_current_points_at_the_rolled_back_to_release(snap: Snapshot) -> None:
    current = snap[f'{ROOT}/current']
    assert current['kind'] == 'link', f'{ROOT}/current is a {current["kind"]}'
    # relative link text, the role's default link_style
    assert current['target'] == f'releases/{ROLLED_BACK_TO}'
    assert snap.text(f'{ROOT}/releases/{ROLLED_BACK_TO}/VERSION').strip() == VERSIONS[ROLLED_BACK_TO]


def test_no_temporary_link_or_release_left(snap: Snapshot) -> None:
    leftovers = [name for name in snap[ROOT]['entries'] if name.startswith('.current.')]
    leftovers += [name for name in snap[f'{ROOT}/releases']['entries'] if name.startswith(('.tmp-', '.trash-'))]
    assert leftovers == [], f'leftovers in {ROOT} on {snap.hostname}: {leftovers}'


def test_keep_prunes_the_oldest_release(snap: Snapshot) -> None:
    releases = snap[f'{ROOT}/releases']['entries']
    assert releases == sorted(VERSIONS), f'release_keep {KEEP}: {ROOT}/releases on {snap.hostname} holds {releases}'
    assert len(releases) == KEEP
    assert not snap.exists(f'{ROOT}/releases/{PRUNED}')


@pytest.mark.parametrize('release_id', sorted(VERSIONS))
def test_release_content_and_owner(snap: Snapshot, release_id: str) -> None:
    release = f'{ROOT}/releases/{release_id}'
    assert snap.text(f'{release}/VERSION').strip() == VERSIONS[release_id]
    # the deploys ran as deploy without become: nothing in a release belongs to anyone else
    owners = {path: entry['user'] for path, entry in snap.entries.items() if path.startswith(f'{release}/')}
    assert owners, f'{release} on {snap.hostname} is empty'
    assert set(owners.values()) == {'deploy'}, {path: user for path, user in owners.items() if user != 'deploy'}


def test_release_metadata(snap: Snapshot) -> None:
    kept = snap.json(f'{ROOT}/releases/{ROLLED_BACK_TO}/.release.json')
    assert (kept['id'], kept['state'], kept['host']) == (ROLLED_BACK_TO, 'complete', snap.hostname)
    # packed on the controller and sent over ssh by the action plugin
    assert kept['source']['type'] == 'directory'
    left = snap.json(f'{ROOT}/releases/{ROLLED_BACK_FROM}/.release.json')
    assert (left['id'], left['state'], left['reason']) == (ROLLED_BACK_FROM, 'failed', 'rolled back')
    assert left['started'] > kept['started'], 'deploy order is the recorded start time'


@pytest.mark.parametrize('release_id', sorted(VERSIONS))
def test_shared_links(snap: Snapshot, release_id: str) -> None:
    for shared_path in SHARED_DIRS + SHARED_FILES:
        link = snap[f'{ROOT}/releases/{release_id}/{shared_path}']
        where = f'{ROOT}/releases/{release_id}/{shared_path} on {snap.hostname}'
        assert link['kind'] == 'link', f'{where} is a {link["kind"]}, not a link'
        assert not link['target'].startswith('/'), f'{where} is not a relative link: {link["target"]}'
        assert link['resolved'] == f'{ROOT}/shared/{shared_path}', where


def test_shared_file_kept_its_content(snap: Snapshot) -> None:
    # written by prepare.yml before the first deploy; no deploy or rollback may touch it
    assert snap.text(f'{ROOT}/shared/.env') == DOTENV
    assert snap[f'{ROOT}/releases/{ROLLED_BACK_TO}/.env']['resolved'] == f'{ROOT}/shared/.env'


@pytest.mark.parametrize('shared_dir', SHARED_DIRS)
def test_shared_dir_mode_and_group(snap: Snapshot, shared_dir: str) -> None:
    entry = snap[f'{ROOT}/shared/{shared_dir}']
    where = f'{ROOT}/shared/{shared_dir} on {snap.hostname}'
    assert entry['kind'] == 'dir', f'{where} is a {entry["kind"]}'
    assert entry['mode'] == 0o2775, f'{where} has mode {entry["mode"]:o}'
    assert (entry['user'], entry['group']) == ('deploy', SHARED_GROUP), where


def test_history(snap: Snapshot) -> None:
    entries = snap.json_lines(f'{ROOT}/.deploy/history.jsonl')
    assert [(e['event'], e['id'], e.get('previous')) for e in entries] == HISTORY
    assert {e['host'] for e in entries} == {snap.hostname}
    assert entries[2]['removed'] == [PRUNED], f'deploying {ROLLED_BACK_FROM} pruned {entries[2].get("removed")}'
    assert entries[3]['reason'] == 'rolled back'


def test_lock_released(snap: Snapshot) -> None:
    assert snap[f'{ROOT}/.deploy']['mode'] == 0o750
    assert not snap.exists(f'{ROOT}/.deploy/lock'), f'{ROOT}/.deploy/lock is still there on {snap.hostname}'


def test_migrations_ran_once_on_the_first_host(host: testinfra.host.Host, snap: Snapshot) -> None:
    database = f'{ROOT}/shared/storage/app.db'
    if snap.hostname != HOST_NAMES[0]:
        assert not snap.exists(database), f'migrations ran on {snap.hostname} too'
        return
    query = 'SELECT name FROM schema_migrations ORDER BY name'
    applied = host.check_output('sqlite3 -readonly %s %s', database, query).splitlines()
    assert applied == ['001_create_notes.sql', '002_add_tags.sql']
