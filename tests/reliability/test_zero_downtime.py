# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Zero downtime under real load.

nginx (the Debian package's binary, on a loopback port, own config and prefix in a temp dir; workers run as
the web user) serves ROOT/current/public. A load client (several processes, one keep-alive connection each)
requests pages without pause and checks every body: a page is one version token repeated plus a sha256 line
over the rest, so a partial, mixed or corrupt body is caught. Meanwhile the REAL deploy playbook runs 20
deploys and 5 rollbacks (rollback playbook) back to back. Required: zero non-2xx, zero connection errors,
zero bad bodies, and the switches seen by the clients.

The same harness then swaps ``current`` the way ``rm current && ln -s ...`` does (unlink + symlink in a
tight loop) and records the failures it causes, and as a control with temp link + rename(2), which must
cause none. nginx settings that matter (both defaults, spelled out in the config): ``open_file_cache off``
(no cached descriptors: every request opens the file again) and ``disable_symlinks off`` (current ->
releases/<id> is followed on every request).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _harness import (
    Ansible,
    build_archive,
    current_id,
    lock_record,
    metadata,
    read_history,
)
from _web import LoadClient, Nginx, naive_swaps, rename_link, rename_swaps

DEPLOYS = 20
ROLLBACK_EVERY = 4  # a rollback after every 4th deploy: 5 rollbacks
WORKERS = int(os.environ.get('RELIABILITY_LOAD_WORKERS', '2'))
SWAP_SECONDS = 3.0


def variables(root: Path, archive: Path, release_id: str) -> dict:
    return {
        'release_root': str(root),
        'release_id': release_id,
        'release_source': 'archive',
        'release_archive': str(archive),
        'release_shared_dirs': ['storage', 'public/uploads'],
        'release_shared_files': ['.env'],
        'release_keep': 4,
    }


@pytest.fixture(scope='module')
def site(base_module: Path, ansible: Ansible, deploy_playbook: Path):
    root = base_module / 'root'
    (root / 'shared' / 'storage').mkdir(parents=True)
    (root / 'shared' / '.env').write_text('APP_KEY=zero-downtime-secret\n', encoding='utf-8')
    archives = {
        f'v{i:03d}': build_archive(dest=base_module / 'files' / f'v{i:03d}.tar.gz', version=f'v{i:03d}')
        for i in range(DEPLOYS + 1)
    }
    first = ansible.deploy(**variables(root, archives['v000'].path, 'v000'))
    assert first.rc == 0, first.describe()
    with Nginx(prefix=base_module / 'nginx', docroot=root / 'current' / 'public') as nginx:
        yield {'root': root, 'archives': archives, 'nginx': nginx}


@pytest.fixture(scope='module')
def base_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work dir the web user (nginx workers) can traverse: pytest makes its dirs 0700."""
    path = tmp_path_factory.mktemp('zero-downtime')
    top = tmp_path_factory.getbasetemp()
    for parent in (path, *path.parents):
        os.chmod(parent, 0o755)
        if parent == top:
            break
    for parent in top.parents:
        if not os.stat(parent).st_mode & 0o001:
            pytest.fail(f'{parent} is not traversable by others; run tests/reliability/run.sh (it sets --basetemp)')
    return path


def test_deploys_and_rollbacks_under_load(site: dict, ansible: Ansible, figures) -> None:
    root: Path = site['root']
    archives = site['archives']
    nginx: Nginx = site['nginx']
    deploys = rollbacks = 0
    started = time.monotonic()
    with LoadClient(port=nginx.port, workers=WORKERS, max_seconds=400) as load:
        time.sleep(0.5)
        for i in range(1, DEPLOYS + 1):
            release_id = f'v{i:03d}'
            run = ansible.deploy(**variables(root, archives[release_id].path, release_id))
            assert run.rc == 0, f'deploy {release_id}:\n{run.describe()}'
            assert current_id(root) == release_id
            deploys += 1
            if i % ROLLBACK_EVERY == 0:
                run = ansible.rollback(release_root=str(root))
                assert run.rc == 0, f'rollback after {release_id}:\n{run.describe()}'
                assert current_id(root) == f'v{i - 1:03d}', f'rollback from {release_id} went to {current_id(root)}'
                assert metadata(root, release_id)['state'] == 'failed'
                rollbacks += 1
        time.sleep(0.5)
        stats = load.stop()
    elapsed = time.monotonic() - started
    print(f'\n[load] real deploy playbook: {stats.summary()}')
    for sample in stats.samples:
        print(f'  {sample}')
    figures(
        deploys=deploys,
        rollbacks=rollbacks,
        requests=stats.requests,
        non_2xx=stats.non_2xx,
        conn_errors=stats.conn_errors,
        bad_bodies=stats.bad_bodies,
        versions_seen=len(stats.versions),
        switches_seen=stats.switches_seen,
        seconds=round(elapsed, 1),
        workers=WORKERS,
    )
    assert deploys == DEPLOYS and rollbacks == DEPLOYS // ROLLBACK_EVERY
    assert stats.requests > 1000, f'the load was too thin to prove anything: {stats.summary()}'
    assert stats.non_2xx == 0 and stats.conn_errors == 0 and stats.bad_bodies == 0, stats.samples
    assert set(stats.versions) <= set(archives), f'a version nobody deployed was served: {sorted(stats.versions)}'
    assert len(stats.versions) >= DEPLOYS // 2, f'the clients saw only {sorted(stats.versions)}: switches not observed'
    assert stats.switches_seen >= DEPLOYS, f'only {stats.switches_seen} version changes seen by the clients'
    assert lock_record(root) is None
    entries, torn = read_history(root)
    assert not torn
    kinds = [e['event'] for e in entries]
    assert kinds.count('rollback') == rollbacks and kinds.count('deploy') == deploys + 1


def test_rm_and_ln_swap_fails_where_rename_does_not(site: dict, figures) -> None:
    """The harness is sensitive: unlink+symlink (what rm + ln -s, and ln -sfn, do) breaks requests; the
    temp-link + rename(2) swap, in the same loop under the same load, does not."""
    root: Path = site['root']
    nginx: Nginx = site['nginx']
    live = current_id(root)
    releases = sorted(r for r in os.listdir(root / 'releases') if (metadata(root, r) or {}).get('state') == 'complete')
    other = next(r for r in reversed(releases) if r != live)
    targets = [f'releases/{other}', f'releases/{live}']
    results = {}
    for name, swap in (('rm+ln -s', naive_swaps), ('rename(2)', rename_swaps)):
        with LoadClient(port=nginx.port, workers=WORKERS, max_seconds=60) as load:
            time.sleep(0.3)
            swaps = swap(link=root / 'current', targets=targets, seconds=SWAP_SECONDS)
            time.sleep(0.3)
            stats = load.stop()
        # Put the live release back (with a rename: nginx is still serving).
        rename_link(link=root / 'current', target=f'releases/{live}')
        results[name] = (swaps, stats)
        print(f'\n[load] {name} swap loop, {swaps} swaps: {stats.summary()}')
        for sample in stats.samples[:3]:
            print(f'  {sample}')
    assert current_id(root) == live, 'the swap loops must end on the live release'
    naive_swaps_done, naive = results['rm+ln -s']
    rename_swaps_done, renamed = results['rename(2)']
    figures(
        naive_swaps=naive_swaps_done,
        naive_requests=naive.requests,
        naive_failures=naive.failures,
        rename_swaps=rename_swaps_done,
        rename_requests=renamed.requests,
        rename_failures=renamed.failures,
    )
    assert naive.failures > 0, f'rm+ln -s caused no failure: the harness cannot see a gap ({naive.summary()})'
    assert renamed.failures == 0, renamed.samples
    assert renamed.requests > 1000 and renamed.switches_seen > 0
