"""The file www-data uploaded through current/public/uploads while u1 was live (prepare) survives the
deploys of u2 and u3 (u3 pruning u1) and the rollback to u2, unchanged, and www-data can still read
and write it and add files next to it."""

from __future__ import annotations

import uuid

import pytest
import testinfra
from hostprobe import HOST_NAMES, INVENTORY, Snapshot, role_var, take_snapshot

testinfra_hosts = HOST_NAMES

ROOT: str = role_var('release_root')
SHARED_GROUP: str = role_var('release_shared_group')
UPLOAD_NAME: str = role_var('shared_uploads_file')
UPLOAD_CONTENT: str = role_var('shared_uploads_content')
SHARED_UPLOADS = f'{ROOT}/shared/public/uploads'
UPLOAD = f'{SHARED_UPLOADS}/{UPLOAD_NAME}'
THROUGH_CURRENT = f'{ROOT}/current/public/uploads/{UPLOAD_NAME}'
LIVE = 'u2'
RELEASES = ['u2', 'u3']
PRUNED = 'u1'


@pytest.fixture(scope='module')
def snap(host: testinfra.host.Host) -> Snapshot:
    return take_snapshot(host=host, root=ROOT)


def test_inventory_has_three_hosts() -> None:
    assert HOST_NAMES == ['shared-uploads-1', 'shared-uploads-2', 'shared-uploads-3'], f'{INVENTORY}: {HOST_NAMES}'


def test_two_deploys_and_a_rollback_happened(snap: Snapshot) -> None:
    assert snap[f'{ROOT}/current']['target'] == f'releases/{LIVE}'
    assert snap[f'{ROOT}/releases']['entries'] == RELEASES, f'u3 with release_keep 2 should have pruned {PRUNED}'
    events = [(e['event'], e['id']) for e in snap.json_lines(f'{ROOT}/.deploy/history.jsonl')]
    assert events == [('deploy', 'u1'), ('deploy', 'u2'), ('deploy', 'u3'), ('rollback', 'u2')]


def test_upload_is_unchanged_in_shared(snap: Snapshot) -> None:
    upload = snap[UPLOAD]
    assert upload['kind'] == 'file', f'{UPLOAD} on {snap.hostname} is a {upload["kind"]}'
    assert upload['text'] == UPLOAD_CONTENT
    # written by www-data; the setgid shared dir gave it the shared group
    assert (upload['user'], upload['group']) == ('www-data', SHARED_GROUP)


def test_upload_is_the_same_file_through_every_release(snap: Snapshot) -> None:
    for release in RELEASES:
        link = snap[f'{ROOT}/releases/{release}/public/uploads']
        assert link['kind'] == 'link', f'{ROOT}/releases/{release}/public/uploads is a {link["kind"]}'
        assert link['resolved'] == SHARED_UPLOADS


def test_shared_uploads_dir(snap: Snapshot) -> None:
    uploads = snap[SHARED_UPLOADS]
    assert uploads['kind'] == 'dir'
    assert uploads['mode'] == 0o2775, f'{SHARED_UPLOADS} has mode {uploads["mode"]:o}'
    assert uploads['group'] == SHARED_GROUP
    # the build's placeholder (public/uploads/README.txt) never lands in shared/
    assert uploads['entries'] == [UPLOAD_NAME]


def test_www_data_reads_the_upload_through_current(host: testinfra.host.Host) -> None:
    with host.sudo('www-data'):
        content = host.check_output('cat %s', THROUGH_CURRENT)
    # check_output strips the trailing newline
    assert content == UPLOAD_CONTENT.rstrip('\n')


def test_www_data_can_still_write(host: testinfra.host.Host) -> None:
    probe = f'{ROOT}/current/public/uploads/probe-{uuid.uuid4().hex}.txt'
    with host.sudo('www-data'):
        assert host.run('test -w %s', THROUGH_CURRENT).rc == 0, f'www-data cannot write {THROUGH_CURRENT}'
        host.run_expect([0], 'touch %s', probe)
        host.run_expect([0], 'rm %s', probe)
