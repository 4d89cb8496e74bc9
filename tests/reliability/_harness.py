# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared machinery of the reliability suites: running the real playbooks, killing them at a chosen
point, building release archives, and snapshotting a deploy root.

Everything runs ansible-playbook / ansible as a user would, against localhost over the local
connection, with the checkout visible as the collection atomic.deploy (build/collections).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from support import ansible as _ansible
from support.root import current_id, leftovers, lock_record, metadata, read_history, release_ids

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
# Reading a deploy root (tests/support/root.py): the suites import these names from here.
__all__ = ['current_id', 'leftovers', 'lock_record', 'metadata', 'read_history', 'release_ids']
# RELIABILITY_PLAYBOOKS points the suites at another playbooks/ dir (for developing the suites themselves).
PLAYBOOKS = Path(os.environ.get('RELIABILITY_PLAYBOOKS') or REPO_ROOT / 'playbooks')
DEPLOY_PLAYBOOK = PLAYBOOKS / 'deploy.yml'
ROLLBACK_PLAYBOOK = PLAYBOOKS / 'rollback.yml'
CALLBACKS = HERE / 'callback_plugins'
ROLE_DEFAULTS = REPO_ROOT / 'roles' / 'release' / 'defaults' / 'main.yml'

# The test process's own interpreter: it has ansible-core, and managed-host code needs only the stdlib.
PYTHON = sys.executable


_LIVE_GROUPS: set[int] = set()
_LIVE_TAGS: set[str] = set()
TAG_VAR = 'RELIABILITY_RUN'


def register_group(pid: int) -> None:
    """Remember a process group this harness started, so a time limit or ^C never leaves it running."""
    _LIVE_GROUPS.add(pid)


def forget_group(pid: int) -> None:
    _LIVE_GROUPS.discard(pid)


def tagged(tag: str) -> list[int]:
    """Live processes started for one run, wherever they are now.

    ansible-core's worker processes call setsid(), so neither the process group nor the parent chain of
    ansible-playbook finds them (or the module processes they start) once they are orphaned. Every process
    of a run inherits its environment, so a tag in it finds them all.
    """
    needle = f'{TAG_VAR}={tag}'.encode()
    found = []
    for entry in os.scandir('/proc'):
        if not entry.name.isdigit():
            continue
        try:
            with open(f'/proc/{entry.name}/environ', 'rb') as handle:
                if needle in handle.read().split(b'\0'):
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def kill_tagged(tag: str) -> int:
    """SIGKILL every process of a run at once (stopped first, so none forks or writes meanwhile)."""
    killed = 0
    for _attempt in range(100):
        pids = tagged(tag)
        if not pids:
            break
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        killed += len(pids)
        time.sleep(0.005)
    return killed


def kill_registered() -> None:
    for pid in sorted(_LIVE_GROUPS):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    _LIVE_GROUPS.clear()
    for tag in sorted(_LIVE_TAGS):
        kill_tagged(tag)
    _LIVE_TAGS.clear()


class HarnessError(AssertionError):
    """The harness itself could not do what a test asked (a tool is missing, a run timed out...)."""


def tool(name: str) -> str:
    """An executable from the interpreter's own bin dir (the venv), else from PATH."""
    try:
        return _ansible.tool(name)
    except _ansible.ToolMissing as exc:
        raise HarnessError(str(exc)) from None


# ----------------------------------------------------------------------------------------------------------
# Running ansible
# ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """One finished (or killed) ansible run."""

    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    elapsed: float
    marker: list[dict]
    killed_by: int | None = None
    killed_at_task: str | None = None

    @property
    def text(self) -> str:
        return self.stdout + '\n' + self.stderr

    @property
    def tasks(self) -> list[dict]:
        return [m for m in self.marker if m.get('event') == 'task']

    @property
    def failures(self) -> list[dict]:
        return [m for m in self.marker if m.get('event') == 'failed']

    @property
    def failure_messages(self) -> list[str]:
        return [str(m.get('msg')) for m in self.failures]

    @property
    def warnings(self) -> list[str]:
        found = [w for m in self.marker for w in m.get('warnings') or []]
        # Warnings also reach stderr as "[WARNING]: ..."; keep both views (the callback may not see all).
        found += [line.split(':', 1)[1].strip() for line in self.stderr.splitlines() if line.startswith('[WARNING]')]
        return found

    def describe(self) -> str:
        tail = '\n'.join(self.text.strip().splitlines()[-40:])
        return f'rc={self.rc} after {self.elapsed:.1f}s: {" ".join(self.argv[:2])}...\n{tail}'


def read_marker(path: Path) -> list[dict]:
    try:
        raw = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        return []
    records = []
    for line in raw.splitlines():
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    return records


class Ansible:
    """Runs the project's playbooks and modules against localhost, from a private work dir."""

    def __init__(self, *, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.inventory = workdir / 'inventory.ini'
        self.inventory.write_text(
            '[deploy]\n'
            f'localhost ansible_connection=local ansible_python_interpreter={PYTHON}\n'
            '[web]\nlocalhost\n'
            '[all:vars]\n'
            f'ansible_python_interpreter={PYTHON}\n',
            encoding='utf-8',
        )
        self._seq = 0

    def env(self, *, marker: Path | None = None, pause_at: int | None = None, go: Path | None = None) -> dict:
        env = _ansible.playbook_env(
            workdir=self.workdir,
            drop_prefixes=('ANSIBLE_', 'RELIABILITY_'),
            ANSIBLE_HOST_KEY_CHECKING='false',
            ANSIBLE_PIPELINING='true',
            ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
            ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS),
            ANSIBLE_CALLBACKS_ENABLED='reliability_marker',
            ANSIBLE_SSH_CONTROL_PATH_DIR=str(self.workdir / 'cp'),
        )
        if marker is not None:
            env['RELIABILITY_MARKER_FILE'] = str(marker)
        if pause_at is not None:
            env['RELIABILITY_PAUSE_AT'] = str(pause_at)
            env['RELIABILITY_GO_FILE'] = str(go or (self.workdir / 'never-created'))
        return env

    def _files(self, extra_vars: dict) -> tuple[Path, Path]:
        self._seq += 1
        base = self.workdir / f'run-{self._seq:04d}'
        vars_file = base.with_suffix('.vars.json')
        vars_file.write_text(json.dumps(extra_vars), encoding='utf-8')
        return vars_file, base.with_suffix('.marker.jsonl')

    def playbook_argv(self, *, playbook: Path, vars_file: Path, options: tuple[str, ...] = ()) -> list[str]:
        return [tool('ansible-playbook'), '-i', str(self.inventory), '-e', f'@{vars_file}', *options, str(playbook)]

    def start(
        self,
        *,
        playbook: Path,
        extra_vars: dict,
        options: tuple[str, ...] = (),
        pause_at: int | None = None,
        go: Path | None = None,
        umask: int | None = None,
    ) -> Running:
        vars_file, marker = self._files(extra_vars)
        argv = self.playbook_argv(playbook=playbook, vars_file=vars_file, options=options)
        env = self.env(marker=marker, pause_at=pause_at, go=go)
        return Running(argv=argv, env=env, marker=marker, cwd=self.workdir, umask=umask)

    def playbook(
        self,
        *,
        playbook: Path,
        extra_vars: dict,
        options: tuple[str, ...] = (),
        timeout: float = 180,
        umask: int | None = None,
    ) -> Run:
        return self.start(playbook=playbook, extra_vars=extra_vars, options=options, umask=umask).wait(timeout=timeout)

    def deploy(self, *, timeout: float = 180, umask: int | None = None, **extra_vars) -> Run:
        return self.playbook(playbook=DEPLOY_PLAYBOOK, extra_vars=extra_vars, timeout=timeout, umask=umask)

    def rollback(self, *, timeout: float = 180, **extra_vars) -> Run:
        return self.playbook(playbook=ROLLBACK_PLAYBOOK, extra_vars=extra_vars, timeout=timeout)

    def module(self, name: str, args: dict, *, timeout: float = 60) -> tuple[Run, dict]:
        """Run one module of the collection ad hoc (through its action plugin); returns the run and its result."""
        _vars_file, marker = self._files({})
        argv = [
            tool('ansible'),
            'localhost',
            '-i',
            str(self.inventory),
            '-m',
            f'atomic.deploy.{name}',
            '-a',
            json.dumps(args),
        ]
        env = self.env(marker=marker)
        # ad hoc runs load enabled callbacks only when asked; stdout stays the "minimal" one parsed below.
        env['ANSIBLE_LOAD_CALLBACK_PLUGINS'] = 'true'
        run = Running(argv=argv, env=env, marker=marker, cwd=self.workdir).wait(timeout=timeout)
        result = _adhoc_result(run.stdout)
        return run, result


_ADHOC = re.compile(r'^localhost \| (?P<status>[A-Z! ]+?)(?: \| rc=\d+)? => (?P<json>\{.*)', re.S | re.M)


def _adhoc_result(stdout: str) -> dict:
    match = _ADHOC.search(stdout)
    if not match:
        return {}
    decoder = json.JSONDecoder()
    try:
        data, _end = decoder.raw_decode(match.group('json'))
    except ValueError:
        return {}
    data['_status'] = match.group('status').strip()
    return data


class Running:
    """An ansible process in its own session (so a whole process group can be signalled)."""

    def __init__(self, *, argv: list[str], env: dict, marker: Path, cwd: Path, umask: int | None = None) -> None:
        self.argv = argv
        self.marker = marker
        self.started = time.monotonic()
        self.killed_by: int | None = None
        self.killed_at_task: str | None = None
        self.ended: float | None = None
        self.tag = os.urandom(8).hex()
        env = {**env, TAG_VAR: self.tag}
        out = tempfile.TemporaryFile()
        err = tempfile.TemporaryFile()
        self._out, self._err = out, err

        def preexec() -> None:
            if umask is not None:
                os.umask(umask)

        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            preexec_fn=preexec if umask is not None else None,
        )
        register_group(self.proc.pid)
        _LIVE_TAGS.add(self.tag)

    def records(self) -> list[dict]:
        return read_marker(self.marker)

    def task_started(self, n: int) -> dict | None:
        for record in self.records():
            if record.get('event') == 'task' and record.get('n') == n:
                return record
        return None

    def wait_for_task(self, n: int, *, timeout: float = 120) -> dict | None:
        """The marker record of the Nth task once it has started; None if the run ended before it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.task_started(n)
            if record is not None:
                return record
            if self.proc.poll() is not None:
                return self.task_started(n)
            time.sleep(0.005)
        raise HarnessError(f'task {n} of {self.argv[-1]} did not start within {timeout}s')

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        self.killed_by = sig

    def wait(self, *, timeout: float = 180) -> Run:
        try:
            rc = self.proc.wait(timeout=timeout)
            if self.ended is None:
                self.ended = time.monotonic()
        except subprocess.TimeoutExpired:
            kill_tagged(self.tag)
            self.proc.wait()
            raise HarnessError(f'{" ".join(self.argv)} did not finish within {timeout}s; killed') from None
        # Nothing of a run may outlive it (a module process orphaned by a kill, say).
        kill_tagged(self.tag)
        forget_group(self.proc.pid)
        _LIVE_TAGS.discard(self.tag)
        self._out.seek(0)
        self._err.seek(0)
        stdout = self._out.read().decode('utf-8', 'replace')
        stderr = self._err.read().decode('utf-8', 'replace')
        self._out.close()
        self._err.close()
        return Run(
            argv=self.argv,
            rc=rc,
            stdout=stdout,
            stderr=stderr,
            elapsed=(self.ended or time.monotonic()) - self.started,
            marker=self.records(),
            killed_by=self.killed_by,
            killed_at_task=self.killed_at_task,
        )


def wait_all(runnings: list[Running], *, timeout: float = 180) -> list[Run]:
    """Wait for several runs at once, noting when each one really ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(r.ended is None for r in runnings):
        for running in runnings:
            if running.ended is None and running.proc.poll() is not None:
                running.ended = time.monotonic()
        time.sleep(0.005)
    return [running.wait(timeout=max(1.0, deadline - time.monotonic())) for running in runnings]


def kill_run(
    running: Running,
    *,
    sig: int,
    task: int | None = None,
    delay: float = 0.0,
    grace: float = 30.0,
    when_exists: Path | None = None,
) -> Run:
    """Kill a deploy once task ``task`` has started (+ ``delay`` seconds) and wait until nothing of it runs.

    - SIGKILL: every process of the run (ansible-playbook, its workers, which ansible-core puts in their
      own sessions, and the module processes they started) is stopped and killed at once: the controller,
      or the job, dying in the middle of whatever it was doing.
    - SIGINT: sent to ansible-playbook's process group, as ^C in its terminal does (the workers are not in
      it). The run then gets ``grace`` seconds to end by itself, including module processes that carry on
      after their controller is gone; whatever still runs then is SIGKILLed, and
      ``Run.killed_at_task`` says so.

    With ``when_exists`` the delay counts from the moment that path appears (a directory the module
    extracts into); if the run ends before that, it is not killed.
    """
    if task is not None:
        record = running.wait_for_task(task)
        if record is None:
            return running.wait(timeout=60)
        running.killed_at_task = f'{task}: {record.get("name")}'
    if when_exists is not None:
        limit = time.monotonic() + 120
        while not os.path.lexists(when_exists) and running.proc.poll() is None and time.monotonic() < limit:
            time.sleep(0.0005)
    if delay > 0:
        end = time.monotonic() + delay
        while time.monotonic() < end and running.proc.poll() is None:
            time.sleep(0.0005)
    if running.proc.poll() is not None:
        run = running.wait(timeout=10)
        run.killed_at_task = None
        return run
    running.killed_by = sig
    if sig == signal.SIGKILL:
        kill_tagged(running.tag)
    else:
        running.signal_group(sig)
        deadline = time.monotonic() + grace
        while tagged(running.tag) and time.monotonic() < deadline:
            running.proc.poll()
            time.sleep(0.01)
        if kill_tagged(running.tag) and running.killed_at_task:
            running.killed_at_task += f' (still running {grace:.0f}s after SIGINT: SIGKILLed)'
    return running.wait(timeout=30)


# ----------------------------------------------------------------------------------------------------------
# Release content
# ----------------------------------------------------------------------------------------------------------

PAGE_LINE = 'version={version} line={index:06d} {pad}\n'
_CHECK = re.compile(rb'checksum=sha256:(?P<hex>[0-9a-f]{64}) version=(?P<version>\S+) lines=(?P<lines>\d+)\n\Z')


def page(version: str, *, size: int = 64 * 1024) -> bytes:
    """A page made of one repeated version token, closed by a checksum line over everything before it."""
    pad = 'x' * 40
    sample = PAGE_LINE.format(version=version, index=0, pad=pad)
    lines = max(1, size // len(sample))
    body = ''.join(PAGE_LINE.format(version=version, index=i, pad=pad) for i in range(lines)).encode('ascii')
    digest = hashlib.sha256(body).hexdigest()
    return body + f'checksum=sha256:{digest} version={version} lines={lines}\n'.encode('ascii')


def verify_page(body: bytes) -> str:
    """The version a body belongs to; ValueError if it is partial, mixed or corrupt."""
    cut = body.rfind(b'\n', 0, len(body) - 1)
    trailer = body[cut + 1 :]
    match = _CHECK.match(trailer)
    if not match:
        raise ValueError(f'no checksum trailer ({len(body)} bytes, ends {body[-60:]!r})')
    content = body[: cut + 1]
    if hashlib.sha256(content).hexdigest() != match.group('hex').decode():
        raise ValueError(f'checksum mismatch ({len(body)} bytes)')
    version = match.group('version').decode()
    expected_prefix = f'version={version} '.encode()
    lines = content.split(b'\n')[:-1]
    if len(lines) != int(match.group('lines')) or any(not line.startswith(expected_prefix) for line in lines):
        raise ValueError(f'lines of another version inside a {version} page')
    return version


CONSTANT_CSS = b'body { font-family: sans-serif; }\n' * 1024


@dataclasses.dataclass
class Archive:
    path: Path
    version: str
    manifest: dict[str, str]  # relative path -> sha256 of every regular file the archive ships

    @property
    def checksum(self) -> str:
        return 'sha256:' + sha256_file(self.path)


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _add(tf: tarfile.TarFile, name: str, data: bytes, *, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1_700_000_000
    tf.addfile(info, io.BytesIO(data))


def build_archive(
    *,
    dest: Path,
    version: str,
    page_size: int = 64 * 1024,
    filler_files: int = 0,
    filler_size: int = 256,
    random_bytes: int = 0,
    compresslevel: int = 1,
) -> Archive:
    """A release tarball: public/index.html (the checked page), an unchanging css, a version file, optional
    filler files (for a long extraction) and optional incompressible data (to fill a disk)."""
    manifest: dict[str, str] = {}
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, 'w:gz', compresslevel=compresslevel) as tf:
        members = {
            'public/index.html': page(version, size=page_size),
            'public/app.css': CONSTANT_CSS,
            'public/version.txt': f'{version}\n'.encode(),
            'app/config.php': b"<?php return ['env' => getenv('APP_ENV')];\n",
        }
        for i in range(filler_files):
            members[f'public/assets/{i // 500:03d}/f{i:06d}.txt'] = (f'{version} {i} '.encode() * filler_size)[
                :filler_size
            ]
        if random_bytes:
            members['data/blob.bin'] = os.urandom(random_bytes)
        for name, data in members.items():
            _add(tf, name, data)
            manifest[name] = hashlib.sha256(data).hexdigest()
    return Archive(path=dest, version=version, manifest=manifest)


def release_manifest(
    path: Path, *, skip: tuple[str, ...] = ('.release.json', '.release.manifest.json')
) -> dict[str, str]:
    """sha256 of every regular file in a release (not following links: shared links are not content)."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(path).as_posix()
            if rel in skip or full.is_symlink():
                continue
            found[rel] = sha256_file(full)
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
    return found


# ----------------------------------------------------------------------------------------------------------
# Snapshots
# ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Entry:
    kind: str  # d f l o
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    target: str | None = None
    digest: str | None = None


Snapshot = dict[str, Entry]


def snapshot(root: Path) -> Snapshot:
    """Every entry under ``root`` (inclusive, as "."): type, mode, owner, size, mtime, link text, content hash.
    Symlinks are recorded, never followed."""
    result: Snapshot = {}
    if not os.path.lexists(root):
        return result

    def visit(path: Path, rel: str) -> None:
        st = os.lstat(path)
        common = dict(mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, mtime_ns=st.st_mtime_ns)
        if stat.S_ISLNK(st.st_mode):
            result[rel] = Entry(kind='l', size=0, target=os.readlink(path), **common)
        elif stat.S_ISDIR(st.st_mode):
            result[rel] = Entry(kind='d', size=0, **common)
            for entry in sorted(os.scandir(path), key=lambda e: e.name):
                visit(Path(entry.path), entry.name if rel == '.' else f'{rel}/{entry.name}')
        elif stat.S_ISREG(st.st_mode):
            result[rel] = Entry(kind='f', size=st.st_size, digest=sha256_file(path), **common)
        else:
            result[rel] = Entry(kind='o', size=0, **common)

    visit(root, '.')
    return result


def snapshot_diff(before: Snapshot, after: Snapshot, *, ignore_dir_mtime: bool = False) -> list[str]:
    """Human-readable differences ("+ path", "- path", "~ path: field a -> b")."""
    lines = []
    for rel in sorted(set(before) | set(after)):
        old, new = before.get(rel), after.get(rel)
        if old is None:
            lines.append(f'+ {rel} ({new.kind})')
        elif new is None:
            lines.append(f'- {rel} ({old.kind})')
        elif old != new:
            fields = [
                f'{f.name} {getattr(old, f.name)!r} -> {getattr(new, f.name)!r}'
                for f in dataclasses.fields(Entry)
                if getattr(old, f.name) != getattr(new, f.name)
                and not (ignore_dir_mtime and f.name == 'mtime_ns' and old.kind == 'd' and new.kind == 'd')
            ]
            if fields:
                lines.append(f'~ {rel}: {", ".join(fields)}')
    return lines


def copy_root(source: Path, dest: Path) -> None:
    """Copy a deploy root keeping links as links, modes and times."""
    shutil.copytree(source, dest, symlinks=True, copy_function=shutil.copy2)


@contextlib.contextmanager
def tmpfs(path: Path, *, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``path`` for the body of the block (needs root)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size},mode=0755', 'tmpfs', str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(['umount', '-l', str(path)], check=False)


def can_mount() -> bool:
    return hasattr(os, 'geteuid') and os.geteuid() == 0 and shutil.which('mount') is not None


def figures_line(suite: str, **figures) -> str:
    return f'{suite} figures: ' + ', '.join(f'{key}={value}' for key, value in figures.items())
