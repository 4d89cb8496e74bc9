"""Helpers of the role tests: a fleet of three local hosts, playbook runs and what they left on disk.

Every host of the fleet uses the local connection and has its own ``release_root`` (a host var), so one
machine plays three managed hosts. Each host's Python is the controller's (ansible_playbook_python) run
through a tiny wrapper that tells commands which host they run on. Playbooks run with the checkout as the
collection ``atomic.deploy`` (scripts/collection-tree.sh), the settings of tests/role/ansible.cfg
(forks=10) and the default stdout callback, whose PLAY RECAP, task lines and debug output the tests read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from support.ansible import ANSIBLE_LEAKS, COLLECTIONS_ROOT, REPO_ROOT, VENV_BIN, clean_env
from support.net import free_port
from support.root import current_target, history, lock_held, metadata, release_ids
from support.users import WEB_USER, WEB_WRITER, as_web_user

HERE = Path(__file__).resolve().parent
FILES = HERE / 'files'
PYTHON = sys.executable
HOSTS = ('h1', 'h2', 'h3')
# Names the role tests import from here; they live in tests/support.
__all__ = [
    'COLLECTIONS_ROOT',
    'REPO_ROOT',
    'VENV_BIN',
    'WEB_USER',
    'WEB_WRITER',
    'as_web_user',
    'free_port',
    'history',
    'lock_held',
]
_RECAP = re.compile(r'^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$')
_TASK = re.compile(r'^TASK \[(?:[\w.]+ : )?(.*?)\] \**$')
_HOST_LINE = re.compile(r'^(ok|changed|skipping|fatal|failed|included|unreachable): \[([^\]\s]+)(?: -> [^\]]+)?\]')


@dataclasses.dataclass
class Run:
    """One ansible-playbook run: its command line, exit code and output."""

    args: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float

    def describe(self) -> str:
        return (
            f'{" ".join(self.args)} exited {self.rc} after {self.seconds:.1f} s\n'
            f'--- stdout (tail)\n{self.stdout[-8000:]}\n--- stderr (tail)\n{self.stderr[-3000:]}'
        )

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        """The PLAY RECAP: host -> {ok, changed, unreachable, failed, skipped, rescued, ignored}."""
        lines = self.stdout.split('PLAY RECAP')[-1].splitlines() if 'PLAY RECAP' in self.stdout else []
        found: dict[str, dict[str, int]] = {}
        for line in lines:
            match = _RECAP.match(line.strip())
            if match:
                found[match.group(1)] = {k: int(v) for k, v in (pair.split('=') for pair in match.group(2).split())}
        return found

    def tasks(self) -> list[tuple[str, dict[str, str]]]:
        """Each task header of the output with the status every host reported for it, in order."""
        found: list[tuple[str, dict[str, str]]] = []
        for line in self.stdout.splitlines():
            header = _TASK.match(line)
            if header:
                found.append((header.group(1), {}))
                continue
            status = _HOST_LINE.match(line)
            if status and found:
                found[-1][1][status.group(2)] = status.group(1)
        return found

    def ran(self) -> set[str]:
        """Names of the tasks that did something (ok, changed, failed) on at least one host."""
        return {
            name
            for name, statuses in self.tasks()
            if any(status in {'ok', 'changed', 'fatal', 'failed'} for status in statuses.values())
        }

    def results(self, *, task: str) -> dict[str, dict]:
        """The JSON result each host printed for the first task whose name starts with ``task`` (the
        default callback prints it for debug tasks and failures)."""
        decoder = json.JSONDecoder()
        found: dict[str, dict] = {}
        text = self.stdout
        name = None
        position = 0
        for line in text.splitlines(keepends=True):
            header = _TASK.match(line.rstrip('\n'))
            if header:
                name = header.group(1) if not found else None
            status = _HOST_LINE.match(line)
            if name is not None and name.startswith(task) and status and '=> {' in line:
                start = position + line.index('=> {') + 3
                value, _end = decoder.raw_decode(text, start)
                found[status.group(2)] = value
            position += len(line)
        return found


# Each host's Python: the controller's, started with ROLE_TEST_HOST=<host> in its environment, so a
# command shows which host ran it even with delegate_to (every host is this machine).
_INTERPRETER = """#!{python}
import os
import sys

os.environ["ROLE_TEST_HOST"] = "{host}"
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


class Fleet:
    """Three local hosts, each with its own deploy root under ``base``."""

    def __init__(self, *, base: Path) -> None:
        self.base = base
        self.home = base / 'ansible-home'
        self.runs = base / 'runs'
        self.interpreters = base / 'interpreters'
        for path in (self.home, self.runs, self.interpreters):
            path.mkdir(parents=True, exist_ok=True)
        for host in HOSTS:
            path = self.interpreters / host
            path.write_text(_INTERPRETER.format(python=PYTHON, host=host), encoding='utf-8')
            path.chmod(0o755)
        self.count = 0

    def root(self, host: str) -> Path:
        return self.base / 'roots' / host

    @property
    def roots(self) -> dict[str, Path]:
        return {host: self.root(host) for host in HOSTS}

    def env(self) -> dict[str, str]:
        previous = os.environ.get('ANSIBLE_COLLECTIONS_PATH')
        return clean_env(
            drop=tuple(name for name in ANSIBLE_LEAKS if name != 'ANSIBLE_COLLECTIONS_PATH'),
            ANSIBLE_CONFIG=str(HERE / 'ansible.cfg'),
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_ROOT) + (f':{previous}' if previous else ''),
            ANSIBLE_HOME=str(self.home),
            ANSIBLE_LOCAL_TEMP=str(self.home / 'tmp'),
            ANSIBLE_REMOTE_TEMP=str(self.home / 'remote-tmp'),
        )

    def playbook(
        self,
        name: str,
        *,
        extra: dict | None = None,
        host_vars: dict[str, dict] | None = None,
        check: bool = False,
        diff: bool = False,
        timeout: float = 300,
    ) -> Run:
        """Run atomic.deploy.<name> on the three hosts; ``host_vars`` adds to each host's release_root."""
        self.count += 1
        stem = self.runs / f'{self.count:02d}-{name}'
        inventory = {
            'all': {
                'vars': {'ansible_connection': 'local'},
                'hosts': {
                    host: {
                        'ansible_python_interpreter': str(self.interpreters / host),
                        'release_root': str(self.root(host)),
                        **(host_vars or {}).get(host, {}),
                    }
                    for host in HOSTS
                },
            }
        }
        Path(f'{stem}.inventory.yml').write_text(yaml.safe_dump(inventory), encoding='utf-8')
        Path(f'{stem}.vars.json').write_text(json.dumps(extra or {}), encoding='utf-8')
        args = [
            str(VENV_BIN / 'ansible-playbook'),
            '-i',
            f'{stem}.inventory.yml',
            f'atomic.deploy.{name}',
            '-e',
            f'@{stem}.vars.json',
        ]
        if check:
            args.append('--check')
        if diff:
            args.append('--diff')
        started = time.monotonic()
        proc = subprocess.run(
            args,
            env=self.env(),
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        run = Run(args, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
        Path(f'{stem}.out').write_text(run.describe(), encoding='utf-8')
        return run

    def deploy(self, **kwargs) -> Run:
        return self.playbook('deploy', **kwargs)

    def ok(self, run: Run) -> Run:
        """The run, after checking that it succeeded on every host."""
        assert run.rc == 0, run.describe()
        assert set(run.recap) == set(HOSTS), f'PLAY RECAP lacks hosts\n{run.describe()}'
        for host, counts in run.recap.items():
            assert counts['failed'] == 0 and counts['unreachable'] == 0, f'{host} failed\n{run.describe()}'
        return run

    def failed(self, run: Run) -> Run:
        """The run, after checking that the playbook failed."""
        assert run.rc != 0, f'the run should have failed\n{run.describe()}'
        return run


# --- what the role left on disk ------------------------------------------------------------------


def current(root: Path) -> str | None:
    """The release id current points at (None without a current link); the link must be releases/<id>."""
    target = current_target(root)
    if target is None:
        return None
    assert target == f'releases/{Path(target).name}', f'{root}/current -> {target} is not releases/<id>'
    return Path(target).name


def releases(root: Path) -> set[str]:
    """Release directory names in releases/ (not the .tmp-/.trash- work dirs)."""
    return set(release_ids(root, dirs_only=True))


def meta(root: Path, *, release: str) -> dict:
    """The .release.json of a release."""
    found = metadata(root, release)
    assert found is not None, f'{root}/releases/{release}/.release.json is missing or not JSON'
    return found


def inode(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_dev, info.st_ino


def snapshot(*paths: Path) -> dict[str, tuple]:
    """Every entry under paths: name -> kind and mode, plus link text or file content hash."""
    found: dict[str, tuple] = {}
    for top in paths:
        if not top.exists() and not top.is_symlink():
            found[str(top)] = ('absent',)
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [*dirnames, *filenames, '']:
                path = Path(dirpath, name) if name else Path(dirpath)
                info = path.lstat()
                mode = stat.S_IMODE(info.st_mode)
                if stat.S_ISLNK(info.st_mode):
                    found[str(path)] = ('link', os.readlink(path))
                elif stat.S_ISDIR(info.st_mode):
                    found[str(path)] = ('dir', oct(mode), info.st_uid, info.st_gid)
                else:
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                    found[str(path)] = ('file', oct(mode), info.st_uid, info.st_gid, digest)
    return found


def diff_snapshots(*, before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    changes = [f'removed {name}' for name in sorted(set(before) - set(after))]
    changes += [f'added {name}' for name in sorted(set(after) - set(before))]
    changes += [
        f'changed {name}: {before[name]} -> {after[name]}'
        for name in sorted(set(before) & set(after))
        if before[name] != after[name]
    ]
    return changes


# --- what the tests feed the role -----------------------------------------------------------------


def make_tree(*, root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding='utf-8')
    return root


def make_archive(*, path: Path, files: dict[str, str]) -> Path:
    """A tar.gz of files (relative name -> text), directories included, members relative to the release."""
    source = make_tree(root=path.with_name(path.name + '.src'), files=files)
    with tarfile.open(path, 'w:gz') as archive:
        for member in sorted(source.rglob('*')):
            archive.add(member, arcname=str(member.relative_to(source)), recursive=False)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git(*args: str, cwd: Path) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME='role tests',
        GIT_AUTHOR_EMAIL='role-tests@example.invalid',
        GIT_COMMITTER_NAME='role tests',
        GIT_COMMITTER_EMAIL='role-tests@example.invalid',
        GIT_CONFIG_NOSYSTEM='1',
        HOME=str(cwd),
    )
    proc = subprocess.run(['git', *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f'git {" ".join(args)} failed in {cwd}: {proc.stderr}'
    return proc.stdout.strip()


class FileServer:
    """``python3 -m http.server`` serving a directory on a loopback port."""

    def __init__(self, *, directory: Path) -> None:
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.proc = subprocess.Popen(
            [PYTHON, '-m', 'http.server', str(self.port), '--bind', '127.0.0.1', '--directory', str(directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(self.url + '/', timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f'http.server on port {self.port} did not come up') from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class StatusServer:
    """An in-process loopback HTTP server answering GET with a status per path (``default`` for any
    other path); records the paths requested."""

    def __init__(self, *, statuses: dict[str, int], default: int = 404) -> None:
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                body = b'status page\n'
                self.send_response(statuses.get(self.path, default))
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}'
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
