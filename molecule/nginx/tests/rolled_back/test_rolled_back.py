"""After side_effect rolled back: every host's nginx serves release n1 again, without a reload."""

from __future__ import annotations

import testinfra
from hostprobe import HOST_NAMES, Snapshot
from nginxchecks import ROOT, check_nginx_runs, check_nginx_serves

testinfra_hosts = HOST_NAMES


def test_nginx_serves_the_rolled_back_to_release(snap: Snapshot, served_version: str) -> None:
    check_nginx_serves(snap=snap, served_version=served_version, release_id='n1', version='1')


def test_the_rollback_is_the_last_switch(snap: Snapshot) -> None:
    events = [(e['event'], e['id']) for e in snap.json_lines(f'{ROOT}/.deploy/history.jsonl')]
    assert events == [('deploy', 'n1'), ('deploy', 'n2'), ('rollback', 'n1')], f'history on {snap.hostname}'


def test_nginx_runs(host: testinfra.host.Host) -> None:
    check_nginx_runs(host=host)
