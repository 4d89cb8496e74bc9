# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A private nginx serving ROOT/current/public on a loopback port, a checking load client, and the
symlink-swap loops the zero-downtime suite compares against.

nginx is the Debian package's binary started with its own prefix, config and pid file in a temp dir
(never the system service). Two settings matter and are left at their defaults on purpose:
- ``open_file_cache`` is off, so every request opens the file again and resolves ``current`` anew;
- ``disable_symlinks off``: nginx follows ``current -> releases/<id>`` on every request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import multiprocessing
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from _harness import HarnessError, forget_group, register_group, verify_page
from support.net import free_port
from support.users import web_user

NGINX_CONF = """\
# Written by tests/reliability/_web.py for one test run.
worker_processes 2;
user {user};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    types {{ text/html html; text/css css; text/plain txt; }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    # Both are nginx's defaults, spelled out because the zero-downtime promise depends on them:
    # no cached file descriptors, and symlinks (current -> releases/<id>) followed per request.
    open_file_cache off;
    disable_symlinks off;
    server {{
        listen 127.0.0.1:{port};
        root {docroot};
        location / {{ index index.html; }}
    }}
}}
"""


class Nginx:
    def __init__(self, *, prefix: Path, docroot: Path) -> None:
        self.prefix = prefix
        self.docroot = docroot
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> Nginx:
        binary = '/usr/sbin/nginx' if os.path.exists('/usr/sbin/nginx') else 'nginx'
        (self.prefix / 'tmp').mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = self.prefix / 'nginx.conf'
        conf.write_text(
            NGINX_CONF.format(prefix=self.prefix, port=self.port, docroot=self.docroot, user=web_user()),
            encoding='utf-8',
        )
        argv = [
            binary,
            '-p',
            str(self.prefix),
            '-c',
            str(conf),
            '-e',
            str(self.prefix / 'error.log'),
            '-g',
            'daemon off;',
        ]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        register_group(self.proc.pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                said = self.proc.stderr.read().decode(errors='replace')
                raise HarnessError(f'nginx exited: {said} {self.error_log()}')
            with contextlib.suppress(OSError), socket.create_connection(('127.0.0.1', self.port), timeout=0.2):
                return self
            time.sleep(0.05)
        self.stop()
        raise HarnessError(f'nginx did not listen on 127.0.0.1:{self.port}: {self.error_log()}')

    def error_log(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return (self.prefix / 'error.log').read_text(encoding='utf-8', errors='replace')[-2000:]
        return ''

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGQUIT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        forget_group(self.proc.pid)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ----------------------------------------------------------------------------------------------------------
# Load client
# ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class LoadStats:
    requests: int = 0
    ok: int = 0
    non_2xx: int = 0
    conn_errors: int = 0
    bad_bodies: int = 0
    versions: dict = dataclasses.field(default_factory=dict)  # version -> responses
    samples: list = dataclasses.field(default_factory=list)  # first few failures, for the report
    seconds: float = 0.0
    switches_seen: int = 0  # times a worker saw the version change between two consecutive responses

    @property
    def failures(self) -> int:
        return self.non_2xx + self.conn_errors + self.bad_bodies

    def merge(self, other: dict) -> None:
        for key in ('requests', 'ok', 'non_2xx', 'conn_errors', 'bad_bodies', 'switches_seen'):
            setattr(self, key, getattr(self, key) + other[key])
        for version, count in other['versions'].items():
            self.versions[version] = self.versions.get(version, 0) + count
        self.samples.extend(other['samples'][: max(0, 10 - len(self.samples))])

    def summary(self) -> str:
        rate = self.requests / self.seconds if self.seconds else 0
        return (
            f'requests={self.requests} ok={self.ok} non_2xx={self.non_2xx} conn_errors={self.conn_errors} '
            f'bad_bodies={self.bad_bodies} versions_seen={len(self.versions)} switches_seen={self.switches_seen} '
            f'seconds={self.seconds:.1f} rate={rate:.0f}/s'
        )


def _worker(port: int, paths: tuple[str, ...], stop, deadline: float, out) -> None:
    stats = {
        'requests': 0,
        'ok': 0,
        'non_2xx': 0,
        'conn_errors': 0,
        'bad_bodies': 0,
        'versions': {},
        'samples': [],
        'switches_seen': 0,
    }
    conn: http.client.HTTPConnection | None = None
    last_version = None
    index = 0
    while not stop.is_set() and time.monotonic() < deadline:
        path = paths[index % len(paths)]
        index += 1
        stats['requests'] += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
            conn.request('GET', path)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            stats['conn_errors'] += 1
            if len(stats['samples']) < 10:
                stats['samples'].append(f'{path}: connection error {type(exc).__name__}: {exc}')
            if conn is not None:
                conn.close()
            conn = None
            continue
        if not 200 <= response.status < 300:
            stats['non_2xx'] += 1
            if len(stats['samples']) < 10:
                stats['samples'].append(f'{path}: HTTP {response.status}')
        else:
            try:
                version = verify_page(body)
            except ValueError as exc:
                stats['bad_bodies'] += 1
                if len(stats['samples']) < 10:
                    stats['samples'].append(f'{path}: bad body: {exc}')
            else:
                stats['ok'] += 1
                stats['versions'][version] = stats['versions'].get(version, 0) + 1
                if last_version is not None and version != last_version:
                    stats['switches_seen'] += 1
                last_version = version
        if response.will_close:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()
    out.put(stats)


class LoadClient:
    """Several processes, each with one keep-alive connection, requesting and checking pages until stopped.

    Bounded: every worker stops by itself after ``max_seconds``.
    """

    def __init__(
        self, *, port: int, workers: int = 3, paths: tuple[str, ...] = ('/', '/index.html'), max_seconds: float = 600
    ) -> None:
        self.port = port
        self.workers = workers
        self.paths = paths
        self.max_seconds = max_seconds
        self._ctx = multiprocessing.get_context('fork')
        self._stop = self._ctx.Event()
        self._queue = self._ctx.Queue()
        self._procs: list = []
        self._started = 0.0

    def start(self) -> LoadClient:
        self._started = time.monotonic()
        deadline = self._started + self.max_seconds
        args = (self.port, self.paths, self._stop, deadline, self._queue)
        self._procs = [self._ctx.Process(target=_worker, args=args, daemon=True) for _index in range(self.workers)]
        for proc in self._procs:
            proc.start()
        return self

    def stop(self) -> LoadStats:
        self._stop.set()
        stats = LoadStats()
        for _proc in self._procs:
            try:
                stats.merge(self._queue.get(timeout=30))
            except Exception as exc:
                stats.conn_errors += 1
                stats.samples.append(f'load worker gave no result: {exc!r}')
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
        stats.seconds = time.monotonic() - self._started
        return stats

    def __enter__(self) -> LoadClient:
        return self.start()

    def __exit__(self, *exc) -> None:
        if not self._stop.is_set():
            self.stop()


# ----------------------------------------------------------------------------------------------------------
# Swap loops
# ----------------------------------------------------------------------------------------------------------


def naive_swaps(*, link: Path, targets: list[str], seconds: float) -> int:
    """What a shell deploy does with ``rm current && ln -s ...``: unlink, then symlink. Returns swaps done."""
    count = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        os.unlink(link)
        os.symlink(targets[count % len(targets)], link)
        count += 1
    return count


def rename_link(*, link: Path, target: str) -> None:
    """Point ``link`` at ``target`` the collection's way: a temp link, then rename(2) over it."""
    tmp = link.parent / f'.{link.name}.swaptest'
    os.symlink(target, tmp)
    os.replace(tmp, link)


def rename_swaps(*, link: Path, targets: list[str], seconds: float) -> int:
    """rename_link in a tight loop, alternating targets. Returns swaps done."""
    count = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rename_link(link=link, target=targets[count % len(targets)])
        count += 1
    return count
