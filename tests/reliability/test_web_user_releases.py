# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The web server's user forges releases: nothing under releases/ counts unless the deploy user made it.

A real www-data plants, in releases/, what a compromised web app can make there (a directory that a
deploy created through a link in shared/, root:www-data 2775, and files www-data writes into it):
a complete release with a manifest that claims a file of its own holds the content of the next
release's bin/migrate, with stat records and a ref_ns that make the "racy ctime" rule trust it.
Deploys run as root with become on the delta path (local connection with become), as do
rollbacks and the status with verify. Every case fails on the code before these rules.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pwd
import shutil
import stat
import tarfile
from pathlib import Path

import pytest
from _harness import DEPLOY_PLAYBOOK, Ansible, current_id
from ansible_collections.atomic.deploy.plugins.module_utils import _manifest
from support.users import WEB_USER, as_web_user, run_as

BECOME = {'ansible_become': True}
SCRIPT_SIZE = 512
BIG = 1 << 32  # a sparse 4 GiB file: hashing it costs seconds of root's time


def script(body: str) -> bytes:
    """A shell script padded to SCRIPT_SIZE bytes (a forged file must have the size its entry claims)."""
    data = f'#!/bin/sh\n{body}\n'.encode()
    return data + b'#' * (SCRIPT_SIZE - len(data) - 1) + b'\n'


def build(dest: Path, version: str) -> Path:
    members = {
        'public/index.html': f'<p>{version}</p>\n'.encode(),
        'public/version.txt': f'{version}\n'.encode(),
        'bin/migrate': script(f'echo migrated {version} > "$MARKS/migrate-{version}"'),
        'bin/reload': script('exit 0'),
    }
    with tarfile.open(dest, 'w:gz') as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith('bin/') else 0o644
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return dest


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def reachable(tmp_path: Path):
    """www-data must reach the deploy root, as on a server: open the test's temp dirs to others (x) for the test."""
    changed = []
    for path in (tmp_path, *tmp_path.parents):
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        if not mode & 0o001:
            os.chmod(path, mode | 0o001)
            changed.append((path, mode))
    yield tmp_path
    for path, mode in changed:
        os.chmod(path, mode)


@pytest.fixture
def marks(reachable: Path) -> Path:
    folder = reachable / 'marks'
    folder.mkdir()
    os.chmod(folder, 0o777)  # the forged scripts would run as root, but let www-data's own tries show too
    return folder


def deploy(ansible: Ansible, root: Path, archives: dict, rid: str, marks: Path, **extra):
    values = {
        'release_root': str(root),
        'release_id': rid,
        'release_source': 'archive',
        'release_archive': str(archives[rid]),
        'release_shared_dirs': ['public/uploads'],
        'release_migrate_command': ['/bin/sh', 'bin/migrate'],
        'release_command_environment': {'MARKS': str(marks)},
        **BECOME,
        **extra,
    }
    return ansible.playbook(playbook=DEPLOY_PLAYBOOK, extra_vars=values)


def plant_forged_release(root: Path, *, name: str, claims: dict, started: str, marks: Path) -> dict:
    """What www-data can build in releases/ once a deploy made a directory there for it (root:www-data 2775):
    a complete release whose manifest says files www-data controls hold the content digests in ``claims``
    (path -> digest), with records and ref_ns that the racy-ctime rule trusts. The files it controls are
    root:www-data 0664, as a deploy creates shared files; www-data writes them. Returns the forged paths."""
    web = pwd.getpwnam(WEB_USER)
    forged = root / 'releases' / name
    forged.mkdir()
    os.chown(forged, 0, web.pw_gid)
    os.chmod(forged, 0o2775)
    (forged / 'bin').mkdir()
    os.chown(forged / 'bin', 0, web.pw_gid)
    os.chmod(forged / 'bin', 0o2775)
    for rel in [*claims, '.release.json', _manifest.MANIFEST_NAME]:
        (forged / rel).touch()
        os.chown(forged / rel, 0, web.pw_gid)
        os.chmod(forged / rel, 0o775 if rel.startswith('bin/') else 0o664)
    evil = script(f'id -u > "{marks}/pwned-$(basename "$0")"')

    def forge() -> dict:
        entries = [['bin', 'd', 0o775]]
        records = {}
        for rel, digest in sorted(claims.items()):
            with open(forged / rel, 'wb') as handle:
                handle.write(evil)
            st = os.lstat(forged / rel)
            entries.append([rel, 'f', 0o755, st.st_size, digest, int(st.st_mtime)])
            records[rel] = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        # A sparse 4 GiB file of www-data's own: the old code hashed it on every deploy and status.
        with open(forged / 'big.bin', 'wb') as handle:
            handle.truncate(BIG)
        entries.append(['big.bin', 'f', 0o644, BIG, '0' * 64, 0])
        entries.sort(key=lambda e: e[0])
        doc = {
            'format': 1,
            'digest': _manifest.digest(entries),
            'entries': entries,
            'exclude': [],
            'ref_ns': 1 << 62,
            'records': records,
        }
        (forged / _manifest.MANIFEST_NAME).write_bytes(json.dumps(doc).encode())
        meta = {'format': 1, 'id': name, 'state': 'complete', 'started': started, 'finished': started, 'source': {}}
        (forged / '.release.json').write_bytes(json.dumps(meta).encode())
        return {'inodes': {rel: os.lstat(forged / rel).st_ino for rel in claims}}

    planted = run_as(WEB_USER, forge)
    # atime far in the past: any read of the sparse file (relatime) moves it.
    os.utime(forged / 'big.bin', (0, os.lstat(forged / 'big.bin').st_mtime))
    planted['path'] = str(forged)
    return planted


def started_of(root: Path, rid: str) -> str:
    return json.loads((root / 'releases' / rid / '.release.json').read_text(encoding='utf-8'))['started']


def just_after(moment: str) -> str:
    """An ISO time 1 microsecond later (same format the modules write)."""
    head, micro = moment[:-1].rsplit('.', 1)
    return f'{head}.{int(micro) + 1:06d}Z'


def test_a_forged_release_is_never_listed_reused_rolled_back_to_or_run(
    ansible: Ansible, tmp_path: Path, marks: Path, figures
) -> None:
    root = tmp_path / 'root'
    archives = {v: build(tmp_path / f'{v}.tar.gz', v) for v in ('v1', 'v2', 'v3')}
    for rid in ('v1', 'v2'):
        run = deploy(ansible, root, archives, rid, marks)
        assert run.rc == 0, run.describe()
    genuine = script('echo migrated v3 > "$MARKS/migrate-v3"')
    planted = plant_forged_release(
        root,
        name='uploads',
        claims={'bin/migrate': sha(genuine)},
        started=just_after(started_of(root, 'v2')),
        marks=marks,
    )
    forged = Path(planted['path'])
    big_atime = os.lstat(forged / 'big.bin').st_atime_ns

    run = deploy(ansible, root, archives, 'v3', marks, release_keep=1)
    assert run.rc == 0, run.describe()
    assert current_id(root) == 'v3'
    migrate = root / 'releases' / 'v3' / 'bin' / 'migrate'
    assert migrate.read_bytes() == genuine, 'the new release holds the forged content'
    assert os.lstat(migrate).st_ino != planted['inodes']['bin/migrate'], 'the forged file was linked in'
    assert (marks / 'migrate-v3').is_file()
    assert not any(p.name.startswith('pwned') for p in marks.iterdir()), sorted(os.listdir(marks))
    warned = '\n'.join(run.warnings)
    assert str(forged) in warned and 'not trusted' in warned, warned

    _run, info = ansible.module('releases_info', {'root': str(root), 'verify': True})
    listed = [r['id'] for r in info['releases']]
    assert listed == ['v2', 'v3'], listed  # keep=1 pruned v1, never the forged one
    assert [u['path'] for u in info['untrusted']] == [str(forged)], info['untrusted']
    assert info['rollback_candidate'] == 'v2'
    assert os.lstat(forged / 'big.bin').st_atime_ns == big_atime, 'the sparse file of www-data was read'

    rollback = ansible.rollback(release_root=str(root), release_reload_command=['/bin/sh', 'bin/reload'], **BECOME)
    assert rollback.rc == 0, rollback.describe()
    assert current_id(root) == 'v2'
    assert not any(p.name.startswith('pwned') for p in marks.iterdir()), sorted(os.listdir(marks))
    assert forged.is_dir() and (forged / 'bin' / 'migrate').is_file(), 'the forged release was removed through'
    figures(forged_listed=False, forged_reused=False, rollback_to='v2', sparse_file_read=False)


def test_a_forged_manifest_gives_no_oracle_on_root_only_files(ansible: Ansible, tmp_path: Path, marks: Path) -> None:
    """A forged entry below a symlink to a root-only directory: the status with verify answers the same
    whether the guessed digest is right or wrong, and never names the forged release as a release."""
    root = tmp_path / 'root'
    archives = {'v1': build(tmp_path / 'v1.tar.gz', 'v1')}
    run = deploy(ansible, root, archives, 'v1', marks)
    assert run.rc == 0, run.describe()
    secret_dir = tmp_path / 'root-only'
    secret_dir.mkdir(mode=0o700)
    secret = b'db_password=hunter2\n'
    (secret_dir / 'secret.txt').write_bytes(secret)
    os.chmod(secret_dir / 'secret.txt', 0o600)
    answers = []
    for guess in (sha(secret), sha(b'wrong guess\n')):
        web = pwd.getpwnam(WEB_USER)
        forged = root / 'releases' / 'probe'
        forged.mkdir()
        os.chown(forged, web.pw_uid, web.pw_gid)

        def forge(guess: str = guess, forged: Path = forged) -> None:
            os.symlink(str(secret_dir), forged / 'leak')
            entries = [['leak', 'd', 0o700], ['leak/secret.txt', 'f', 0o600, len(secret), guess, 0]]
            doc = {'format': 1, 'digest': _manifest.digest(entries), 'entries': entries, 'exclude': [], 'ref_ns': 0}
            doc['records'] = {}
            (forged / _manifest.MANIFEST_NAME).write_bytes(json.dumps(doc).encode())
            meta = {'format': 1, 'id': 'probe', 'state': 'complete', 'started': '2000-01-01T00:00:00.000000Z'}
            (forged / '.release.json').write_bytes(json.dumps(meta).encode())

        run_as(WEB_USER, forge)
        _run, info = ansible.module('releases_info', {'root': str(root), 'verify': True})
        answers.append(
            {'releases': [(r['id'], r.get('drift')) for r in info['releases']], 'untrusted': info.get('untrusted')}
        )
        shutil.rmtree(forged)
    assert answers[0] == answers[1], answers
    assert [rid for rid, _drift in answers[0]['releases']] == ['v1'], answers[0]


def test_metadata_is_not_readable_by_the_web_user(ansible: Ansible, tmp_path: Path, marks: Path) -> None:
    root = tmp_path / 'root'
    archives = {v: build(tmp_path / f'{v}.tar.gz', v) for v in ('v1', 'v2')}
    run = deploy(ansible, root, archives, 'v1', marks)
    assert run.rc == 0, run.describe()
    # v1 as a release written before this rule: world-readable metadata.
    for name in ('.release.json', _manifest.MANIFEST_NAME):
        os.chmod(root / 'releases' / 'v1' / name, 0o644)
    run = deploy(ansible, root, archives, 'v2', marks)
    assert run.rc == 0, run.describe()
    for rid in ('v1', 'v2'):
        for name in ('.release.json', _manifest.MANIFEST_NAME):
            path = root / 'releases' / rid / name
            proc = as_web_user('cat', str(path))
            assert proc.returncode != 0 and 'Permission denied' in proc.stderr, f'{path}: {proc.stdout[:80]!r}'
            assert stat.S_IMODE(os.lstat(path).st_mode) & 0o077 == 0
    _run, info = ansible.module('releases_info', {'root': str(root)})
    assert [r['state'] for r in info['releases']] == ['complete', 'complete']
    assert info['rollback_candidate'] == 'v1'


def test_id_file_never_overwrites_a_file_of_the_artifact(ansible: Ansible, tmp_path: Path, marks: Path) -> None:
    root = tmp_path / 'root'
    archives = {v: build(tmp_path / f'{v}.tar.gz', v) for v in ('v1', 'v2')}
    run = deploy(ansible, root, archives, 'v1', marks)
    assert run.rc == 0, run.describe()
    refused = deploy(ansible, root, archives, 'v2', marks, release_id_file='public/version.txt')
    assert refused.rc != 0
    message = '\n'.join(refused.failure_messages)
    assert 'id_file public/version.txt' in message and 'artifact' in message, message
    assert current_id(root) == 'v1'
    assert not (marks / 'migrate-v2').exists(), 'the migration ran for a release that was refused'
