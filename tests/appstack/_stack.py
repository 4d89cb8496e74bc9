# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The real stack of the appstack suite: nginx, php-fpm (OPcache on) and gunicorn + Flask on 127.0.0.1,
the sample releases they serve, a checking load client, and the shipped playbooks run as a user runs them.

Every server is the Debian (or PyPI) binary started in the foreground with its own config, pid file and
sockets in the suite's work dir, on free loopback ports; never a system service. Each page reports its
release id twice, from two files of the release (the code, and a plain file read per request), so the
load client can tell the old release, the new one and a page mixed from both.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime
import http.client
import io
import itertools
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from array import array
from pathlib import Path

from support.ansible import playbook_env
from support.net import free_port
from support.users import web_user

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
PLAYBOOKS = REPO_ROOT / 'playbooks'
FILES = HERE / 'files'
PHP_FPM = '/usr/sbin/php-fpm8.2'
NGINX = '/usr/sbin/nginx'
# The suite's own venv with gunicorn and flask (run.sh makes it); the deploys use the repo's .venv.
APP_VENV = Path(os.environ.get('APPSTACK_VENV') or REPO_ROOT / 'build' / 'appstack' / 'venv')

_STARTED: list[subprocess.Popen] = []


class StackError(AssertionError):
    """The suite could not do what a test asked: a server did not start, a tool is missing."""


def wait_listening(port: int, *, proc: subprocess.Popen, name: str, log: Path | None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f'{name} exited with {proc.returncode}: {tail(log)}')
        with contextlib.suppress(OSError), socket.create_connection(('127.0.0.1', port), timeout=0.2):
            return
        time.sleep(0.05)
    raise StackError(f'{name} did not listen on 127.0.0.1:{port} within {timeout}s: {tail(log)}')


def wait_path(path: Path, *, proc: subprocess.Popen, name: str, log: Path | None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f'{name} exited with {proc.returncode}: {tail(log)}')
        if path.exists():
            return
        time.sleep(0.05)
    raise StackError(f'{name} did not create {path} within {timeout}s: {tail(log)}')


def tail(path: Path | None, size: int = 3000) -> str:
    if path is None:
        return ''
    with contextlib.suppress(OSError):
        return path.read_text(encoding='utf-8', errors='replace')[-size:]
    return ''


def start(argv: list[str], *, log: Path, cwd: Path | None = None, env: dict | None = None) -> subprocess.Popen:
    handle = open(log, 'ab')
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    handle.close()
    _STARTED.append(proc)
    return proc


def stop(proc: subprocess.Popen | None, *, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Stop a server's whole process group: a gunicorn re-executed by USR2 outlives the process we started."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(proc.pid):
        proc.poll()
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_all() -> None:
    while _STARTED:
        stop(_STARTED.pop(), timeout=5)


# ----------------------------------------------------------------------------------------------------------
# Releases
# ----------------------------------------------------------------------------------------------------------

PHP_INDEX = """\
<?php
// The code's id (app/version.php, compiled and cached by OPcache) and the plain file RELEASE (read on
// every request), both found relative to this script: a page mixed from two releases shows two ids.
require __DIR__ . '/../app/version.php';
$file = trim(file_get_contents(__DIR__ . '/../RELEASE'));
header('X-Release: ' . RELEASE_CODE);
if (RELEASE_BROKEN) {
    http_response_code(500);
}
echo "code " . RELEASE_CODE . "\\nfile " . $file . "\\n";
"""

PHP_VERSION = """\
<?php
const RELEASE_CODE = '{id}';
const RELEASE_BROKEN = {broken};
"""

PHP_OPCACHE = """\
<?php
$status = opcache_get_status(false);
header('Content-Type: application/json');
echo json_encode([
    'enabled' => $status !== false && $status['opcache_enabled'],
    'validate_timestamps' => ini_get('opcache.validate_timestamps'),
    'revalidate_freq' => ini_get('opcache.revalidate_freq'),
]);
"""

FLASK_APP = """\
import os

from flask import Flask

import version

app = Flask(__name__)


@app.get('/')
def index():
    # RELEASE is read on every request from the worker's working directory; version.py is the code
    # the worker (or, with --preload, the master) imported.
    with open(os.path.join(os.getcwd(), 'RELEASE'), encoding='utf-8') as handle:
        file_id = handle.read().strip()
    body = f'code {version.RELEASE}\\nfile {file_id}\\n'
    return body, 500 if version.BROKEN else 200, {'X-Release': version.RELEASE}
"""

FLASK_VERSION = """\
RELEASE = '{id}'
BROKEN = {broken}
"""


def _add(tar: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def build_release(*, dest: Path, kind: str, release_id: str, broken: bool = False, id_file: bool = True) -> Path:
    """A release archive of the PHP app (kind 'php') or the Flask app (kind 'flask').

    ``id_file``: put the file RELEASE (the id) in the archive; without it the role writes it
    (release_id_file).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, 'w:gz') as tar:
        if id_file:
            _add(tar, 'RELEASE', f'{release_id}\n')
        if kind == 'php':
            _add(tar, 'public/index.php', PHP_INDEX)
            _add(tar, 'public/opcache.php', PHP_OPCACHE)
            _add(tar, 'app/version.php', PHP_VERSION.format(id=release_id, broken='true' if broken else 'false'))
        elif kind == 'flask':
            _add(tar, 'app.py', FLASK_APP)
            _add(tar, 'version.py', FLASK_VERSION.format(id=release_id, broken=broken))
        else:
            raise ValueError(kind)
    return dest


def make_traversable(path: Path) -> None:
    """The web user must reach the deploy roots: pytest's and mktemp's dirs are 0700."""
    for parent in (path, *path.parents):
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o055)


# ----------------------------------------------------------------------------------------------------------
# Servers
# ----------------------------------------------------------------------------------------------------------

FPM_GLOBAL = """\
; Written by tests/appstack/_stack.py. The settings docs/app-servers.md recommends.
[global]
pid = {prefix}/php-fpm.pid
error_log = {prefix}/php-fpm.log
daemonize = no
; a reload (SIGUSR2) waits up to this long for busy workers instead of cutting their requests
process_control_timeout = 10s
"""

FPM_POOL = """\
[{name}]
user = {user}
group = {group}
listen = {prefix}/{name}.sock
listen.owner = {user}
listen.group = {group}
listen.mode = 0660
pm = static
pm.max_children = 2
php_admin_value[opcache.enable] = 1
php_admin_value[opcache.validate_timestamps] = {validate}
php_admin_value[opcache.revalidate_freq] = {freq}
"""


class PhpFpm:
    """One php-fpm master with a pool per OPcache setting: name -> (validate_timestamps, revalidate_freq)."""

    def __init__(self, *, prefix: Path, pools: dict[str, tuple[int, int]]) -> None:
        self.prefix = prefix
        self.pools = pools
        self.proc: subprocess.Popen | None = None

    def socket(self, pool: str) -> Path:
        return self.prefix / f'{pool}.sock'

    @property
    def pid_file(self) -> Path:
        return self.prefix / 'php-fpm.pid'

    def start(self) -> PhpFpm:
        if not os.path.exists(PHP_FPM):
            raise StackError(f'{PHP_FPM} is not installed (tests/appstack/run.sh installs php8.2-fpm)')
        self.prefix.mkdir(parents=True, exist_ok=True)
        user = web_user()
        conf = self.prefix / 'php-fpm.conf'
        text = FPM_GLOBAL.format(prefix=self.prefix)
        for name, (validate, freq) in self.pools.items():
            text += FPM_POOL.format(name=name, prefix=self.prefix, user=user, group=user, validate=validate, freq=freq)
        conf.write_text(text, encoding='utf-8')
        log = self.prefix / 'php-fpm.log'
        self.proc = start([PHP_FPM, '--nodaemonize', '--fpm-config', str(conf)], log=log)
        wait_path(self.pid_file, proc=self.proc, name='php-fpm', log=log)
        for name in self.pools:
            wait_path(self.socket(name), proc=self.proc, name='php-fpm', log=log)
        return self

    def stop(self) -> None:
        stop(self.proc, sig=signal.SIGQUIT)


NGINX_CONF = """\
# Written by tests/appstack/_stack.py.
worker_processes 2;
user {user};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    default_type text/plain;
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    open_file_cache off;
    disable_symlinks off;
{servers}
}}
"""

# The block docs/app-servers.md shows, with the paths of one test root; root_variable is realpath_root
# (the documented one) or document_root (the control that shows what goes wrong).
PHP_SERVER = """\
    server {{
        listen 127.0.0.1:{port};
        root {docroot};
        index index.php;
        location ~ \\.php$ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME ${root_variable}$fastcgi_script_name;
            fastcgi_param DOCUMENT_ROOT ${root_variable};
            fastcgi_pass unix:{socket};
        }}
    }}
"""


class Nginx:
    def __init__(self, *, prefix: Path) -> None:
        self.prefix = prefix
        self.servers: list[str] = []
        self.proc: subprocess.Popen | None = None

    def php_server(self, *, docroot: Path, socket_path: Path, root_variable: str = 'realpath_root') -> int:
        port = free_port()
        self.servers.append(
            PHP_SERVER.format(port=port, docroot=docroot, socket=socket_path, root_variable=root_variable)
        )
        return port

    def start(self) -> Nginx:
        (self.prefix / 'tmp').mkdir(parents=True, exist_ok=True)
        conf = self.prefix / 'nginx.conf'
        conf.write_text(
            NGINX_CONF.format(prefix=self.prefix, user=web_user(), servers=''.join(self.servers)), encoding='utf-8'
        )
        log = self.prefix / 'error.log'
        argv = [NGINX, '-p', str(self.prefix), '-c', str(conf), '-e', str(log), '-g', 'daemon off;']
        self.proc = start(argv, log=self.prefix / 'stdout.log')
        wait_path(self.prefix / 'nginx.pid', proc=self.proc, name='nginx', log=log)
        return self

    def stop(self) -> None:
        stop(self.proc, sig=signal.SIGQUIT)


class Gunicorn:
    """gunicorn serving app:app from ROOT/current.

    ``chdir``: pass ``--chdir ROOT/current`` (the documented way), else start in ROOT/current without it.
    ``preload``: ``--preload``. ``reload``: what the role runs after a switch, ``hup`` (HUP to the master)
    or ``usr2`` (USR2, wait for the new master, TERM to the old one).
    """

    def __init__(
        self, *, prefix: Path, root: Path, chdir: bool = True, preload: bool = False, reload: str = 'hup'
    ) -> None:
        self.prefix = prefix
        self.root = root
        self.chdir = chdir
        self.preload = preload
        self.reload = reload
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def pid_file(self) -> Path:
        return self.prefix / 'gunicorn.pid'

    @property
    def reload_command(self) -> list[str]:
        """The argv the role runs after the switch (the sh -c form is the one that reads a pid file)."""
        if self.reload == 'hup':
            return ['sh', '-c', f'kill -HUP "$(cat {self.pid_file})"']
        # docs/app-servers.md, "A new master without downtime: USR2, then TERM"
        return [
            'sh',
            '-c',
            f'pid={self.pid_file}; old=$(cat "$pid"); kill -USR2 "$old"; '
            'i=0; while [ ! -s "$pid.2" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; '
            'sleep 3; kill -TERM "$old"',
        ]

    def start(self) -> Gunicorn:
        binary = APP_VENV / 'bin' / 'gunicorn'
        if not binary.exists():
            raise StackError(f'{binary} does not exist (tests/appstack/run.sh makes the suite venv)')
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        argv = [
            str(binary),
            *(['--chdir', str(self.root / 'current')] if self.chdir else []),
            '--bind',
            f'127.0.0.1:{self.port}',
            '--workers',
            '2',
            '--pid',
            str(self.pid_file),
            '--graceful-timeout',
            '10',
            *(['--preload'] if self.preload else []),
            'app:app',
        ]
        # No PWD, as a service manager starts it: gunicorn would otherwise take its default --chdir
        # from $PWD. Without --chdir the working directory is ROOT/current, as systemd's
        # WorkingDirectory= would make it.
        env = {k: v for k, v in os.environ.items() if k != 'PWD'}
        log = self.prefix / 'gunicorn.log'
        cwd = Path('/') if self.chdir else self.root / 'current'
        self.proc = start(argv, log=log, cwd=cwd, env=env)
        wait_listening(self.port, proc=self.proc, name='gunicorn', log=log)
        wait_path(self.pid_file, proc=self.proc, name='gunicorn', log=log)
        return self

    def stop(self) -> None:
        stop(self.proc)


def get(port: int, path: str = '/', *, timeout: float = 5, headers: dict | None = None) -> tuple[int, dict, str]:
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request('GET', path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode('utf-8', 'replace')
    finally:
        conn.close()


def page_id(body: str) -> str:
    """The release a page came from; 'mixed A/B' when its two ids differ, 'bad body' when it has none."""
    code = file_id = None
    for line in body.splitlines():
        if line.startswith('code '):
            code = line[5:].strip()
        elif line.startswith('file '):
            file_id = line[5:].strip()
    if not code or not file_id:
        return 'bad body'
    return code if code == file_id else f'mixed {code}/{file_id}'


# ----------------------------------------------------------------------------------------------------------
# Load client
# ----------------------------------------------------------------------------------------------------------


def _load_worker(port: int, stop_event, deadline: float, max_requests: int, out) -> None:
    times = array('d')
    codes = array('H')
    outcomes: list[str] = []
    index: dict[str, int] = {}
    conn: http.client.HTTPConnection | None = None
    while not stop_event.is_set() and len(times) < max_requests and time.monotonic() < deadline:
        started = time.time()
        try:
            if conn is None:
                conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
            conn.request('GET', '/')
            response = conn.getresponse()
            body = response.read().decode('utf-8', 'replace')
            if 200 <= response.status < 300:
                outcome = page_id(body)
            else:
                outcome = f'status {response.status}'
            if response.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            outcome = f'error {type(exc).__name__}'
            if conn is not None:
                conn.close()
            conn = None
        if outcome not in index:
            index[outcome] = len(outcomes)
            outcomes.append(outcome)
        times.append(started)
        codes.append(index[outcome])
    if conn is not None:
        conn.close()
    out.put({'times': times, 'codes': codes, 'outcomes': outcomes})


@dataclasses.dataclass
class Responses:
    """Every response of a load session: start time (epoch seconds) and outcome, in time order."""

    times: list[float]
    outcomes: list[str]

    def __len__(self) -> int:
        return len(self.times)

    def between(self, start: float, end: float) -> list[str]:
        return [o for t, o in zip(self.times, self.outcomes, strict=True) if start < t <= end]

    def failed(self) -> int:
        return sum(1 for o in self.outcomes if o.startswith(('status ', 'error ', 'bad body')))

    def mixed(self) -> int:
        return sum(1 for o in self.outcomes if o.startswith('mixed '))

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for outcome in self.outcomes:
            found[outcome] = found.get(outcome, 0) + 1
        return found

    def first(self, outcome: str, *, after: float) -> float | None:
        for t, o in zip(self.times, self.outcomes, strict=True):
            if t >= after and o == outcome:
                return t
        return None

    def last_other(self, outcome: str, *, after: float, until: float) -> float | None:
        found = None
        for t, o in zip(self.times, self.outcomes, strict=True):
            if after <= t <= until and o != outcome:
                found = t
        return found


class LoadClient:
    """Processes that request / continuously on keep-alive connections, bounded in count and in time."""

    def __init__(self, *, port: int, workers: int = 2, max_seconds: float = 120, max_requests: int = 200_000):
        self.port = port
        self.workers = workers
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self._ctx = multiprocessing.get_context('fork')
        self._stop = self._ctx.Event()
        self._queue = self._ctx.Queue()
        self._procs: list = []

    def __enter__(self) -> LoadClient:
        deadline = time.monotonic() + self.max_seconds
        args = (self.port, self._stop, deadline, self.max_requests, self._queue)
        self._procs = [self._ctx.Process(target=_load_worker, args=args, daemon=True) for _index in range(self.workers)]
        for proc in self._procs:
            proc.start()
        return self

    def stop(self) -> Responses:
        self._stop.set()
        pairs: list[tuple[float, str]] = []
        for _proc in self._procs:
            part = self._queue.get(timeout=60)
            pairs.extend((t, part['outcomes'][c]) for t, c in zip(part['times'], part['codes'], strict=True))
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
        pairs.sort()
        return Responses(times=[pair[0] for pair in pairs], outcomes=[pair[1] for pair in pairs])

    def __exit__(self, *exc) -> None:
        if not self._stop.is_set():
            self.stop()


# ----------------------------------------------------------------------------------------------------------
# The shipped playbooks
# ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    name: str
    rc: int
    started: float  # epoch seconds
    returned: float
    stdout: str
    stderr: str
    results: list  # every task result: {'task', 'status', 'msg', 'changed'} (callback_plugins/appstack_results.py)

    @property
    def final_failure(self) -> dict | None:
        """The last failed task result that was not ignored: what ended the play."""
        failed = [r for r in self.results if r['status'] in ('failed', 'unreachable')]
        return failed[-1] if failed else None

    def describe(self) -> str:
        failure = self.final_failure
        said = f'{failure["task"]}: {failure.get("msg")}' if failure else 'no failed task'
        return f'{self.name} rc={self.rc} in {self.returned - self.started:.1f}s; {said}\n{self.stdout[-3000:]}'


class Ansible:
    def __init__(self, *, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.inventory = workdir / 'inventory.ini'
        self.inventory.write_text(
            f'localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n', encoding='utf-8'
        )
        self._seq = itertools.count(1)

    def env(self) -> dict:
        return playbook_env(
            workdir=self.workdir,
            ANSIBLE_CALLBACK_PLUGINS=str(HERE / 'callback_plugins'),
            ANSIBLE_CALLBACKS_ENABLED='appstack_results',
        )

    def playbooks(self, runs: list[tuple[str, dict]], *, timeout: float = 300) -> list[Run]:
        """Several playbooks at once (on different roots): the suite's setup deploys."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(runs)) as pool:
            futures = [pool.submit(self.playbook, name, extra_vars, timeout=timeout) for name, extra_vars in runs]
            return [future.result() for future in futures]

    def playbook(self, name: str, extra_vars: dict, *, timeout: float = 180) -> Run:
        seq = next(self._seq)
        vars_file = self.workdir / f'run-{seq:03d}.json'
        vars_file.write_text(json.dumps(extra_vars), encoding='utf-8')
        results_file = self.workdir / f'run-{seq:03d}.results.jsonl'
        argv = [
            str(Path(sys.executable).parent / 'ansible-playbook'),
            '-i',
            str(self.inventory),
            '-e',
            f'@{vars_file}',
            str(PLAYBOOKS / f'{name}.yml'),
        ]
        started = time.time()
        env = dict(self.env(), APPSTACK_RESULTS_FILE=str(results_file))
        proc = subprocess.run(
            argv, env=env, cwd=self.workdir, capture_output=True, text=True, timeout=timeout, check=False
        )
        return Run(
            name=f'{name} {extra_vars.get("release_id", "")}'.strip(),
            rc=proc.returncode,
            started=started,
            returned=time.time(),
            stdout=proc.stdout,
            stderr=proc.stderr,
            results=[json.loads(line) for line in results_file.read_text(encoding='utf-8').splitlines()]
            if results_file.exists()
            else [],
        )


def history(root: Path) -> list[dict]:
    path = root / '.deploy' / 'history.jsonl'
    entries = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(encoding='utf-8').splitlines():
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
    return entries


def epoch(stamp: str) -> float:
    """An ISO time of the history (2026-01-12T14:30:52.123456Z) as epoch seconds."""
    return datetime.datetime.strptime(stamp, '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.UTC).timestamp()


def switch_time(root: Path, *, event: str, release_id: str, after: float) -> float | None:
    """When `current` went to release_id in an event of that kind recorded after ``after``."""
    for entry in history(root):
        stamp = entry.get('switched_at') or entry.get('ts')
        if isinstance(stamp, str):
            stamp = epoch(stamp)
        if entry.get('event') == event and entry.get('id') == release_id and stamp and stamp >= after - 1:
            return float(stamp)
    return None


def current_id(root: Path) -> str | None:
    with contextlib.suppress(OSError):
        return os.path.basename(os.readlink(root / 'current'))
    return None
