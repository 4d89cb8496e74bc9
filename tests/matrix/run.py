# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""make matrix: every ansible-core of tests/matrix/cores.yml, each in its own venv.

Each core runs on two controller Pythons: its oldest and its newest (the newest this kind of machine has),
both read from the core's own code through cores.yml, each in its own venv. For each core, in this order:
the Python ranges in cores.yml are checked against the core's own code, then ``ansible-test sanity`` (every
test, no ignore files; on the newest controller), ``ansible-test units`` (on the oldest controller,
where an API the oldest Python lacks fails), one end-to-end run of the role's playbooks on localhost
(deploy v1, deploy v2, status, rollback, status, like scripts/demo.sh) on each controller, the same run
under Mitogen's ``mitogen_linear`` strategy (newest controller; the cores cores.yml marks ``mitogen``), and
every module on every target Python of the core that this kind of machine has (tests/matrix/targets.yml;
newest controller). Two cores run at a time (the machine has 2 cores). Venvs, logs and scratch dirs live
in build/matrix/.

Once per run, not per core, the ``floor`` step runs the module_utils unit tests under the oldest target
Python the modules support (MIN_TARGET, cores.yml ``floor``), in a venv with only pytest: the module code
and its tests must not use anything newer.

usage: python tests/matrix/run.py [--core VERSION ...] [--steps sanity,units,e2e,mitogen,targets,floor] [--jobs N]
Ends with a table and "matrix: N passed, N failed"; exits non-zero when any step failed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
# MATRIX_BUILD: another directory for venvs, logs and scratch (two matrix runs at once)
BUILD = Path(os.environ.get('MATRIX_BUILD') or REPO_ROOT / 'build' / 'matrix').resolve()
STEPS = ('sanity', 'units', 'e2e', 'mitogen', 'targets')
ONCE_STEPS = ('floor',)
# the columns of the table: e2e runs once per controller
COLUMNS = {'e2e': ('e2e oldest', 'e2e newest')}
MIN_TARGET = (3, 8)
_print_lock = threading.Lock()


def say(message: str) -> None:
    with _print_lock:
        print(message, flush=True)


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split('.'))


# --- Pythons ------------------------------------------------------------------------------------------


def pyenv_root() -> Path | None:
    root = os.environ.get('PYENV_ROOT')
    if root:
        return Path(root)
    if shutil.which('pyenv'):
        proc = subprocess.run(['pyenv', 'root'], capture_output=True, text=True, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return Path(proc.stdout.strip())
    default = Path.home() / '.pyenv'
    return default if default.is_dir() else None


def find_python(version: str) -> str | None:
    """The newest pyenv-installed X.Y.*, else pythonX.Y on PATH (not a pyenv shim, which may refuse)."""
    root = pyenv_root()
    if root is not None:
        found = sorted(
            glob.glob(str(root / 'versions' / f'{version}.*' / 'bin' / f'python{version}')),
            key=lambda path: version_tuple(Path(path).parents[1].name.split('-')[0]),
        )
        if found:
            return found[-1]
    for directory in os.environ.get('PATH', '').split(os.pathsep):
        candidate = Path(directory) / f'python{version}'
        if 'shims' not in directory and candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


# --- results ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Step:
    core: str
    name: str
    ok: bool
    seconds: float
    detail: str = ''
    log: str = ''


@dataclasses.dataclass
class CoreRun:
    core: dict
    steps: list[Step] = dataclasses.field(default_factory=list)
    targets: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.core['version']


def run_logged(argv: list[str], *, log: Path, env: dict | None = None, cwd: Path = REPO_ROOT, timeout: float = 1800):
    """Run argv with stdout and stderr into log; returns (ok, seconds)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open('w', encoding='utf-8') as handle:
        handle.write(f'$ {" ".join(argv)}\n')
        handle.flush()
        try:
            proc = subprocess.run(
                argv,
                env=env,
                cwd=cwd,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            handle.write(f'\nmatrix: timed out after {timeout} s\n')
            rc = 124
    return rc == 0, time.monotonic() - started


def tail(log: Path, lines: int = 25) -> str:
    try:
        return '\n'.join(log.read_text(encoding='utf-8', errors='replace').splitlines()[-lines:])
    except OSError:
        return ''


# --- one core -----------------------------------------------------------------------------------------


def controllers(core: dict, machine: list[str]) -> tuple[str, str | None]:
    """The oldest controller Python of the core and its newest that this kind of machine has (None: none)."""
    ranked = sorted(core['controller_pythons'], key=version_tuple)
    present = [v for v in ranked if v in machine]
    return ranked[0], (present[-1] if present else None)


class Core:
    """One core on one controller Python: its own venv, home, logs and scratch dirs."""

    def __init__(self, *, core: dict, config: dict, pythons: dict[str, str], controller: str) -> None:
        self.core = core
        self.version = core['version']
        self.config = config
        self.pythons = pythons
        self.controller = controller
        name = f'{self.version}-py{controller}'
        self.venv = BUILD / 'venvs' / name
        self.home = BUILD / 'home' / name
        self.logs = BUILD / 'logs' / self.version / f'py{controller}'
        self.scratch = BUILD / 'scratch' / name
        self.python = self.venv / 'bin' / 'python'
        self.with_mitogen = False

    # venv
    def packages(self) -> list[str]:
        extra = [self.config['mitogen']['package']] if self.with_mitogen else []
        return [f'ansible-core=={self.version}', *self.config.get('venv_packages', []), *extra]

    def ensure_venv(self) -> Step:
        started = time.monotonic()
        want = hashlib.sha256(json.dumps([self.pythons[self.controller], self.packages()]).encode()).hexdigest()
        stamp = self.venv / '.matrix-stamp'
        if stamp.is_file() and stamp.read_text().strip() == want and self.python.is_file():
            return Step(self.version, 'venv', True, time.monotonic() - started, 'up to date')
        if self.venv.is_symlink() or self.venv.is_file():
            self.venv.unlink()
        shutil.rmtree(self.venv, ignore_errors=True)
        log = self.logs / 'venv.log'
        base = self.pythons[self.controller]
        ok, _seconds = run_logged([base, '-m', 'venv', str(self.venv)], log=log)
        if ok:
            ok, _seconds = run_logged(
                [str(self.python), '-m', 'pip', 'install', '--disable-pip-version-check', '-q', *self.packages()],
                log=self.logs / 'pip.log',
            )
            log = self.logs / 'pip.log'
        if ok:
            stamp.write_text(want + '\n')
        return Step(self.version, 'venv', ok, time.monotonic() - started, '' if ok else tail(log), str(log))

    def site_packages(self) -> Path:
        found = glob.glob(str(self.venv / 'lib' / 'python3.*' / 'site-packages'))
        return Path(found[0])

    # ranges
    def check_ranges(self) -> Step:
        """cores.yml must say what the core's own code says."""
        started = time.monotonic()
        site = self.site_packages()
        constants = (site / 'ansible_test' / '_util' / 'target' / 'common' / 'constants.py').read_text()
        scope: dict = {}
        exec(compile(constants, 'constants.py', 'exec'), scope)  # a plain data module of the core
        controller = list(scope['CONTROLLER_PYTHON_VERSIONS'])
        targets = list(scope['REMOTE_ONLY_PYTHON_VERSIONS']) + controller
        basic = (site / 'ansible' / 'module_utils' / 'basic.py').read_text()
        found = re.search(r'^_PY_MIN = \((\d+), (\d+)\)', basic, re.M)
        if found:
            minimum = f'{found.group(1)}.{found.group(2)}'
        else:
            py2 = re.search(r'^_PY2_MIN = \((\d+), (\d+)\) <=', basic, re.M)
            minimum = f'{py2.group(1)}.{py2.group(2)}' if py2 else '?'
        problems = []
        for key, actual in (('controller_pythons', controller), ('target_pythons', targets)):
            if list(self.core[key]) != actual:
                problems.append(f'{key} is {self.core[key]} in cores.yml, {actual} in ansible-core {self.version}')
        if str(self.core['module_minimum']) != minimum:
            problems.append(f'module_minimum is {self.core["module_minimum"]} in cores.yml, {minimum} in basic.py')
        return Step(self.version, 'ranges', not problems, time.monotonic() - started, '; '.join(problems))

    # ansible-test
    def ansible_test_env(self) -> dict:
        env = dict(os.environ)
        for key in [k for k in env if k.startswith('ANSIBLE_')]:
            del env[key]
        env.update(
            HOME=str(self.home),
            ATOMIC_VENV=str(self.venv),
            ATOMIC_TEST_PYTHON=self.controller,
            ATOMIC_TEST_TREE=str(BUILD / 'tree' / self.version),
            ATOMIC_TEST_OUTPUT=str(BUILD / 'output' / self.version),
            PATH=f'{self.venv / "bin"}{os.pathsep}{env.get("PATH", "")}',
        )
        return env

    def install_get_pip_standin(self) -> None:
        source = (self.site_packages() / 'ansible_test' / '_internal' / 'python_requirements.py').read_text()
        version = re.search(r"^ *pip='([0-9.]+)',$", source, re.M).group(1)
        cache = self.home / '.ansible' / 'test' / 'cache'
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / 'scripts' / 'get_pip_standin.py', cache / f'get_pip_{version.replace(".", "_")}.py')

    def sanity(self) -> Step:
        self.install_get_pip_standin()
        log = self.logs / 'sanity.log'
        ok, seconds = run_logged(
            ['bash', str(REPO_ROOT / 'scripts' / 'ansible-test.sh'), 'sanity'], log=log, env=self.ansible_test_env()
        )
        summary = [line for line in tail(log, 200).splitlines() if line.startswith('sanity: ')]
        return Step(self.version, 'sanity', ok, seconds, summary[-1] if summary else tail(log), str(log))

    def units(self) -> Step:
        log = self.logs / 'units.log'
        ok, seconds = run_logged(
            ['bash', str(REPO_ROOT / 'scripts' / 'ansible-test.sh'), 'units'], log=log, env=self.ansible_test_env()
        )
        counts = re.findall(r'=+ (\d+) passed', log.read_text(errors='replace'))
        detail = f'{sum(int(c) for c in counts)} passed' if ok else tail(log)
        return Step(self.version, 'units', ok, seconds, detail, str(log))

    # playbooks
    def ansible_env(self, *, config: Path | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}
        env.update(
            ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / 'build' / 'collections'),
            ANSIBLE_HOME=str(self.scratch / 'ansible-home'),
            ANSIBLE_LOCAL_TEMP=str(self.scratch / 'ansible-home' / 'tmp'),
            ANSIBLE_NOCOLOR='1',
            ANSIBLE_FORCE_COLOR='0',
            ANSIBLE_RETRY_FILES_ENABLED='false',
            ANSIBLE_LOCALHOST_WARNING='false',
            ANSIBLE_PIPELINING='true',
            PATH=f'{self.venv / "bin"}{os.pathsep}{env.get("PATH", "")}',
        )
        if config is not None:
            env['ANSIBLE_CONFIG'] = str(config)
        return env

    def mitogen(self) -> Step:
        """The end-to-end run under Mitogen's mitogen_linear strategy (the mitogen package in this venv)."""
        strategy = self.site_packages() / 'ansible_mitogen' / 'plugins' / 'strategy'
        if not (strategy / 'mitogen_linear.py').is_file():
            return Step(self.version, 'mitogen', False, 0.0, f'{strategy}/mitogen_linear.py not found')
        # ansible-playbook fails ("Invalid play strategy") rather than fall back when it cannot load it
        extra = {'ANSIBLE_STRATEGY': 'mitogen_linear', 'ANSIBLE_STRATEGY_PLUGINS': str(strategy)}
        return self.e2e(label='mitogen', extra_env=extra)

    def e2e(self, *, label: str = 'e2e', extra_env: dict | None = None) -> Step:
        """deploy v1, deploy v2, status, rollback, status: the flow of scripts/demo.sh, with checks."""
        started = time.monotonic()
        base = self.scratch / label
        shutil.rmtree(base, ignore_errors=True)
        root = base / 'root'
        (root / 'shared').mkdir(parents=True)
        (root / 'shared' / '.env').write_text('APP_ENV=demo\nAPP_NAME=atomic-deploy-demo\n')
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        # serves current/public, following the link on every request, like scripts/demo.sh
        serve = ['--bind', '127.0.0.1', '--directory', str(root / 'current' / 'public')]
        server = subprocess.Popen(
            [sys.executable, '-m', 'http.server', str(port), *serve],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        env = self.ansible_env(config=REPO_ROOT / 'examples' / 'demo' / 'ansible.cfg')
        env.update(extra_env or {})
        demo = REPO_ROOT / 'examples' / 'demo'
        problems: list[str] = []
        log = self.logs / f'{label}.log'

        def playbook(step: str, name: str, *extra: str) -> str | None:
            argv = [
                str(self.venv / 'bin' / 'ansible-playbook'),
                '-i',
                str(demo / 'inventory.yml'),
                f'atomic.deploy.{name}',
                '-e',
                f'release_root={root}',
                *extra,
            ]
            ok, _seconds = run_logged(argv, log=self.logs / f'{label}-{step}.log', env=env)
            text = (self.logs / f'{label}-{step}.log').read_text(errors='replace')
            with log.open('a', encoding='utf-8') as handle:
                handle.write(f'==> {step}\n{text}\n')
            if not ok:
                problems.append(f'{step} failed (see {self.logs / f"{label}-{step}.log"})')
                return None
            return text

        def current() -> str:
            try:
                return os.readlink(root / 'current')
            except OSError:
                return '(none)'

        log.write_text('')
        try:
            deploy = ('-e', f'@{demo / "deploy-vars.yml"}', '-e', f'demo_port={port}')
            if playbook('deploy-v1', 'deploy', *deploy, '-e', f'release_directory={REPO_ROOT}/examples/app/v1'):
                first = current()
                # release ids are UTC timestamps with one-second resolution
                time.sleep(1.1)
                if playbook('deploy-v2', 'deploy', *deploy, '-e', f'release_directory={REPO_ROOT}/examples/app/v2'):
                    second = current()
                    if second == first:
                        problems.append(f'deploy v2 left current at {first}')
                    status = playbook('status', 'status')
                    if status is not None and '?@?' in status:
                        problems.append('status prints "?@?" for a free lock')
                    if playbook('rollback', 'rollback') and current() != first:
                        problems.append(f'rollback left current at {current()}, not {first}')
                    status = playbook('status-after-rollback', 'status')
                    if status is not None and '?@?' in status:
                        problems.append('status after the rollback prints "?@?" for a free lock')
        finally:
            server.terminate()
            server.wait(timeout=10)
        ok = not problems
        return Step(self.version, label, ok, time.monotonic() - started, '; '.join(problems), str(log))

    def target_pythons(self) -> tuple[list[str], list[str]]:
        machine = set(self.config['machine_pythons'])
        tested = [v for v in self.core['target_pythons'] if v in machine]
        absent = [v for v in self.core['target_pythons'] if v not in machine]
        return tested, absent

    def targets(self, run: CoreRun) -> Step:
        started = time.monotonic()
        tested, absent = self.target_pythons()
        base = self.scratch / 'targets'
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        hosts = {}
        for version in tested:
            host = f'py{version}'
            hosts[host] = {
                'ansible_connection': 'local',
                'ansible_python_interpreter': self.pythons[version],
                'matrix_python': version,
                'matrix_refused': version_tuple(version) < MIN_TARGET,
            }
        inventory = base / 'inventory.yml'
        inventory.write_text(
            yaml.safe_dump(
                {
                    'all': {
                        'vars': {'matrix_base': str(base), 'matrix_app': str(REPO_ROOT / 'examples' / 'app')},
                        'children': {'targets': {'hosts': hosts}},
                    }
                }
            )
        )
        log = self.logs / 'targets.log'
        env = self.ansible_env()
        env['ANSIBLE_FORKS'] = str(len(hosts))
        ok, _seconds = run_logged(
            [str(self.venv / 'bin' / 'ansible-playbook'), '-i', str(inventory), str(HERE / 'targets.yml')],
            log=log,
            env=env,
        )
        recap = log.read_text(errors='replace').split('PLAY RECAP')[-1]
        for host, values in hosts.items():
            found = re.search(rf'^{re.escape(host)}\s+:.*?failed=(\d+)', recap, re.M)
            passed = found is not None and found.group(1) == '0'
            expect = 'refused' if values['matrix_refused'] else 'works'
            run.targets[values['matrix_python']] = f'{expect}: {"pass" if passed else "FAIL"}'
            ok = ok and passed
        for version in absent:
            run.targets[version] = 'not on this kind of machine'
        detail = ', '.join(f'{v} {r}' for v, r in run.targets.items())
        return Step(self.version, 'targets', ok, time.monotonic() - started, detail, str(log))


def floor_units(*, floor: dict, python: str) -> Step:
    """The module_utils unit tests under the target Python floor, with only pytest installed."""
    started = time.monotonic()
    name = f'python {floor["python"]}'
    venv = BUILD / 'venvs' / f'floor-{floor["python"]}'
    logs = BUILD / 'logs' / 'floor'
    want = hashlib.sha256(json.dumps([python, floor['packages']]).encode()).hexdigest()
    stamp = venv / '.matrix-stamp'
    if not (stamp.is_file() and stamp.read_text().strip() == want):
        shutil.rmtree(venv, ignore_errors=True)
        ok, _seconds = run_logged([python, '-m', 'venv', str(venv)], log=logs / 'venv.log')
        pip = [str(venv / 'bin' / 'python'), '-m', 'pip', 'install', '--disable-pip-version-check', '-q']
        ok = ok and run_logged([*pip, *floor['packages']], log=logs / 'pip.log')[0]
        if not ok:
            return Step(name, 'floor', False, time.monotonic() - started, 'venv: ' + tail(logs / 'pip.log'))
        stamp.write_text(want + '\n')
    log = logs / 'units.log'
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}
    argv = [str(venv / 'bin' / 'python'), '-m', 'pytest', '-q', '-p', 'no:cacheprovider', *floor['tests']]
    ok, _seconds = run_logged(argv, log=log, env=env)
    counts = re.findall(r'(\d+) passed', log.read_text(errors='replace'))
    detail = f'{counts[-1]} passed' if ok and counts else tail(log)
    return Step(name, 'floor', ok, time.monotonic() - started, detail, str(log))


def core_steps(core: dict, steps: tuple[str, ...], config: dict) -> list[tuple[str, str, str]]:
    """(column, step, controller) in running order; a step whose controller is absent is left out."""
    oldest, newest = controllers(core, config['machine_pythons'])
    newest = newest or oldest
    planned = []
    for name in steps:
        if name == 'e2e':
            planned += [('e2e oldest', 'e2e', oldest), ('e2e newest', 'e2e', newest)]
        elif name == 'mitogen':
            if core.get('mitogen'):
                planned.append(('mitogen', 'mitogen', newest))
        else:
            planned.append((name, name, oldest if name == 'units' else newest))
    return planned


def run_core(core: dict, *, steps: tuple[str, ...], config: dict, pythons: dict[str, str]) -> CoreRun:
    run = CoreRun(core)
    version = core['version']
    planned = core_steps(core, steps, config)
    venvs: dict[str, Core] = {}
    for _column, name, controller in planned:
        venv = venvs.setdefault(controller, Core(core=core, config=config, pythons=pythons, controller=controller))
        venv.with_mitogen = venv.with_mitogen or name == 'mitogen'
    say(f'==> ansible-core {version}: starting ({", ".join(f"{c} on {p}" for c, _n, p in planned)})')
    for controller, venv in venvs.items():
        step = venv.ensure_venv()
        run.steps.append(step)
        if not step.ok:
            say(f'==> ansible-core {version}: venv for Python {controller} FAILED: {step.detail}')
            return run
    step = next(iter(venvs.values())).check_ranges()
    run.steps.append(step)
    if not step.ok:
        say(f'==> ansible-core {version}: ranges FAILED: {step.detail}')
        return run
    for column, name, controller in planned:
        venv = venvs[controller]
        step = venv.targets(run) if name == 'targets' else getattr(venv, name)()
        step.name = column
        step.detail = f'[Python {controller}] {step.detail}'.rstrip()
        run.steps.append(step)
        status = 'passed' if step.ok else 'FAILED'
        say(f'==> ansible-core {version}: {column} {status} in {step.seconds:.0f} s {step.detail}')
        if not step.ok and step.log:
            say(f'    log: {step.log}\n' + '\n'.join(f'    | {line}' for line in tail(Path(step.log)).splitlines()))
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--core', action='append', help='only this version (repeatable)')
    known = ','.join(STEPS + ONCE_STEPS)
    parser.add_argument('--steps', default=known, help=f'comma-separated subset of {known}')
    parser.add_argument('--jobs', type=int, default=int(os.environ.get('MATRIX_JOBS', '2')))
    args = parser.parse_args()
    steps = tuple(s for s in args.steps.split(',') if s)
    unknown = [s for s in steps if s not in STEPS + ONCE_STEPS]
    if unknown:
        parser.error(f'unknown steps {unknown}; known: {STEPS + ONCE_STEPS}')
    once = [s for s in steps if s in ONCE_STEPS]
    steps = tuple(s for s in steps if s in STEPS)
    config = yaml.safe_load((HERE / 'cores.yml').read_text(encoding='utf-8'))
    cores = [c for c in config['cores'] if not args.core or c['version'] in args.core]
    cores = cores if steps else []  # --steps floor: no core
    if args.core and len(cores) != len(args.core):
        parser.error(f'unknown core in {args.core}; cores.yml has {[c["version"] for c in config["cores"]]}')

    # Every Python the run needs must be on this machine: none is skipped silently.
    needed = {v for c in cores for v in controllers(c, config['machine_pythons']) if v}
    if 'floor' in once:
        needed.add(config['floor']['python'])
    if 'targets' in steps:
        needed |= {v for c in cores for v in c['target_pythons'] if v in config['machine_pythons']}
    pythons = {v: find_python(v) for v in sorted(needed, key=version_tuple)}
    missing = [v for v, path in pythons.items() if path is None]
    if missing:
        print(
            f'matrix: Python {", ".join(missing)} not found (looked in $(pyenv root)/versions/X.Y.*/bin and on PATH); '
            'install them (pyenv install X.Y) or remove them from machine_pythons in tests/matrix/cores.yml',
            file=sys.stderr,
        )
        print('matrix: 0 passed, 1 failed')
        return 1
    say('matrix: Pythons ' + ', '.join(f'{v}={p}' for v, p in pythons.items()))
    (REPO_ROOT / 'build' / 'collections').exists() or subprocess.run(
        ['bash', str(REPO_ROOT / 'scripts' / 'collection-tree.sh')], check=True, stdout=subprocess.DEVNULL
    )

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = list(pool.map(lambda core: run_core(core, steps=steps, config=config, pythons=pythons), cores))
    total = time.monotonic() - started

    passed = failed = 0
    rows = []
    columns = []
    for core in cores:
        columns += [c for c, _n, _p in core_steps(core, steps, config) if c not in columns]
    machine = config['machine_pythons']
    for run in runs:
        by_name = {s.name: s for s in run.steps}
        cells = []
        for name in ('ranges', *columns):
            step = by_name.get(name)
            cells.append('-' if step is None else f'{"pass" if step.ok else "FAIL"} {step.seconds / 60:.1f}m')
        minutes = sum(s.seconds for s in run.steps) / 60
        tested = ' '.join(v for v, r in run.targets.items() if 'not on' not in r)
        absent = [v for v, r in run.targets.items() if 'not on' in r]
        absent += [f'controller {v}' for v in run.core['controller_pythons'] if v not in machine]
        oldest, newest = controllers(run.core, machine)
        used = oldest if newest in (None, oldest) else f'{oldest} {newest}'
        rows.append([run.version, f'python {used}', *cells, f'{minutes:.1f}m', tested, ' '.join(absent)])
        done = [step for step in run.steps if step.name != 'venv']
        passed += sum(step.ok for step in done)
        failed += sum(not step.ok for step in done)
        # a venv or ranges failure stopped the core: every step it did not run counts as failed
        failed += 1 + len(core_steps(run.core, steps, config)) - len(done)
    header = ['core', 'controllers', 'ranges', *columns, 'total', 'targets tested', 'not on this machine']
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    say('')
    for row in [header, *rows]:
        say('  '.join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    say(f'matrix: {len(runs)} cores in {total / 60:.1f} min with {args.jobs} at a time')
    results = BUILD / 'results.json'
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(
        json.dumps(
            {
                'minutes': round(total / 60, 1),
                'cores': [
                    {
                        'version': r.version,
                        'controllers': [v for v in controllers(r.core, machine) if v],
                        'steps': [dataclasses.asdict(s) for s in r.steps],
                        'targets': r.targets,
                    }
                    for r in runs
                ],
            },
            indent=2,
        )
    )
    if 'floor' in once:
        step = floor_units(floor=config['floor'], python=pythons[config['floor']['python']])
        passed += step.ok
        failed += not step.ok
        say(f'matrix: floor ({step.core}) {"passed" if step.ok else "FAILED"} in {step.seconds:.0f} s {step.detail}')
    say(f'matrix: {passed} passed, {failed} failed')
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
