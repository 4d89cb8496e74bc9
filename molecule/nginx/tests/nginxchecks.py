"""Checks shared by tests/deployed and tests/rolled_back (run at separate verify steps)."""

from __future__ import annotations

import re

import testinfra
from hostprobe import Snapshot, role_var

ROOT: str = role_var('release_root')
URL: str = role_var('nginx_url')
# Prints the status and body nginx returns for the URL, from the host itself.
FETCH = r"""
import sys, urllib.error, urllib.request
try:
    response = urllib.request.urlopen(sys.argv[1], timeout=10)
except urllib.error.HTTPError as exc:
    response = exc
print(response.status)
print(response.read().decode("utf-8", "replace"))
"""
VERSION_RE = re.compile(r'<p id="version">version (\d+)</p>')


def fetch_version(*, host: testinfra.host.Host) -> str:
    """The version nginx serves at URL, asked on the host itself."""
    status, _sep, body = host.check_output('python3 -c %s %s', FETCH, URL).partition('\n')
    assert status == '200', f'{URL} on {host.backend.get_hostname()} answered {status}: {body}'
    match = VERSION_RE.search(body)
    assert match, f'{URL} on {host.backend.get_hostname()} served no version: {body}'
    return match.group(1)


def check_nginx_serves(*, snap: Snapshot, served_version: str, release_id: str, version: str) -> None:
    """current points at release_id, and nginx serves that release's version (its VERSION file)."""
    assert snap[f'{ROOT}/current']['target'] == f'releases/{release_id}', f'current on {snap.hostname}'
    on_disk = snap.text(f'{ROOT}/releases/{release_id}/VERSION').strip()
    assert on_disk == version
    assert served_version == on_disk, f'nginx on {snap.hostname} serves version {served_version}, current is {on_disk}'


def check_nginx_runs(*, host: testinfra.host.Host) -> None:
    """One nginx master (root, started by prepare.yml) with workers as www-data, still the same process."""
    masters = host.process.filter(comm='nginx', user='root')
    workers = host.process.filter(comm='nginx', user='www-data')
    assert len(masters) == 1, f'nginx masters on {host.backend.get_hostname()}: {masters}'
    assert workers, f'no nginx worker runs as www-data on {host.backend.get_hostname()}'
    pid = host.file('/run/nginx-atomic.pid').content_string.strip()
    assert str(masters[0].pid) == pid
