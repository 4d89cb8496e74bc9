"""Benchmark harness for atomic.deploy: our deploy, rollback and fleet switch against the floors and peers.

bench/run.sh prepares everything this needs (the bench venv, the artifacts, a tmpfs) and runs it; see
bench/README.md. Every case runs in the same environment: one ansible.cfg (pipelining on, facts off,
forks 32), the same explicit python interpreter, and Ansible's temp directories and every deploy root on
the tmpfs. Cases run interleaved, one round after another, after one warm-up round; each run starts from
a fresh copy of a prepared root (copying is not timed) and its result is checked before it counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SHARED_DIRS = ['storage']
SHARED_FILES = ['.env']
KEEP = 5
README_START = '<!-- bench:results:start -->'
README_END = '<!-- bench:results:end -->'

# Figures of the peers, from the issue that asked for this benchmark (measured on another machine).
PEERS = {
    'deploy_vs_floor': 'ansistrano ~2.9x, deploy_helper flow ~1.8x',
    'noop_vs_one_task': '-',
    'rollback_vs_one_task': 'ansistrano ~1.9x',
    'wall32_vs_floor': 'ansistrano 45x (187 s)',
    'skew32_ms': 'ansistrano ~4000 ms',
    'disk_added': 'ansistrano +100%',
}


class BenchError(Exception):
    """A case failed or produced the wrong result: the figures would be meaningless."""


@dataclass
class Env:
    """Paths and the process environment shared by every case."""

    work: Path
    venv: Path
    python: str
    archives: dict[str, Path]
    manifest: dict
    environ: dict[str, str]
    logs: Path
    inventories: Path
    templates: Path
    roots: Path
    deploy_playbook: str
    rollback_playbook: str

    @property
    def ansible_playbook(self) -> str:
        return str(self.venv / 'bin' / 'ansible-playbook')


@dataclass
class Case:
    key: str
    label: str
    prepare: Callable[[], None]  # build the template root once (not timed)
    reset: Callable[[], None]  # fresh working root before each run (not timed)
    command: list[str]
    check: Callable[[bool], None]  # verify the run's result; True = thorough (warm-up)
    times: list[float] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)


def log(message: str) -> None:
    print(f'bench: {message}', file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------
# environment


def make_environ(*, work: Path, venv: Path, collections: Path, config: Path) -> dict[str, str]:
    """The environment of every case: inherited ANSIBLE_* settings dropped, ours on the tmpfs."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith('ANSIBLE_')}
    environ.update(
        {
            'PATH': f'{venv / "bin"}:{environ.get("PATH", "/usr/bin:/bin")}',
            'VIRTUAL_ENV': str(venv),
            'ANSIBLE_CONFIG': str(config),
            'ANSIBLE_COLLECTIONS_PATH': str(collections),
            'ANSIBLE_LOCAL_TEMP': str(work / 'ansible' / 'local'),
            'ANSIBLE_REMOTE_TEMP': str(work / 'ansible' / 'remote'),
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_FORCE_COLOR': '0',
            'TMPDIR': str(work / 'tmp'),
            'LC_ALL': 'C.UTF-8',
        }
    )
    return environ


def write_config(*, work: Path, python: str) -> Path:
    for sub in ('ansible/local', 'ansible/remote', 'tmp'):
        (work / sub).mkdir(parents=True, exist_ok=True)
    config = work / 'ansible.cfg'
    config.write_text(
        '\n'.join(
            [
                '[defaults]',
                'forks = 32',
                'gathering = explicit',
                f'interpreter_python = {python}',
                f'local_tmp = {work / "ansible" / "local"}',
                f'remote_tmp = {work / "ansible" / "remote"}',
                'host_key_checking = false',
                'retry_files_enabled = false',
                'deprecation_warnings = false',
                '',
                '[connection]',
                'pipelining = true',
                '',
            ]
        )
    )
    return config


def collection_tree(*, work: Path) -> Path:
    """WORK/collections/ansible_collections/atomic/deploy -> the checkout."""
    collections = work / 'collections'
    namespace = collections / 'ansible_collections' / 'atomic'
    namespace.mkdir(parents=True, exist_ok=True)
    link = namespace / 'deploy'
    if not link.is_symlink():
        link.symlink_to(REPO_ROOT)
    return collections


def write_inventory(*, env: Env, name: str, roots: list[Path], root_var: str) -> Path:
    """A YAML inventory (JSON is YAML) of local hosts, one root each."""
    hosts = {f'bench-{index:02d}': {root_var: str(root)} for index, root in enumerate(roots)}
    inventory = {
        'all': {
            'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': env.python},
            'hosts': hosts,
        }
    }
    path = env.inventories / f'{name}.yml'
    path.write_text(json.dumps(inventory, indent=2) + '\n')
    return path


def write_vars(*, env: Env, name: str, values: dict) -> Path:
    path = env.inventories / f'{name}.vars.json'
    path.write_text(json.dumps(values, indent=2) + '\n')
    return path


def run_logged(*, env: Env, command: list[str], log_name: str) -> tuple[float, str]:
    """Run a command with output to a log on the tmpfs; returns (seconds, output). Fails on non-zero exit."""
    log_path = env.logs / f'{log_name}.log'
    with log_path.open('w') as handle:
        started = time.perf_counter()
        result = subprocess.run(command, env=env.environ, stdout=handle, stderr=subprocess.STDOUT, check=False)
        elapsed = time.perf_counter() - started
    output = log_path.read_text(errors='replace')
    if result.returncode != 0:
        tail = '\n'.join(output.splitlines()[-40:])
        raise BenchError(f'{log_name}: {" ".join(command)} exited {result.returncode}; log {log_path}:\n{tail}')
    return elapsed, output


def recap_changed(output: str) -> int:
    """Sum of changed= over the PLAY RECAP lines (-1 when there is no recap, e.g. the shell floor)."""
    total = -1
    in_recap = False
    for line in output.splitlines():
        if line.startswith('PLAY RECAP'):
            in_recap = True
            total = 0
            continue
        if in_recap and 'changed=' in line:
            total += int(line.split('changed=', 1)[1].split()[0])
    return total


def copy_tree(*, source: Path, dest: Path) -> None:
    """A fresh copy of a prepared root; cp -a keeps hard links, symlinks, modes and times."""
    if dest.exists() or dest.is_symlink():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(['cp', '-a', '--', str(source), str(dest)], check=True)


def seed_shared(*, root: Path) -> None:
    """The shared dir and file every flow links; present before the first deploy, as on a real server."""
    (root / 'shared' / 'storage').mkdir(parents=True, exist_ok=True)
    (root / 'shared' / '.env').write_text('APP_ENV=bench\n')


# ---------------------------------------------------------------------------------------------------------
# checks


def tree_digest(path: Path) -> tuple[str, int]:
    """The generator's content digest of the regular files under path (top-level dotfiles, links skipped)."""
    entries: list[tuple[str, bytes]] = []
    for folder, dirs, files in os.walk(path):
        rel_folder = os.path.relpath(folder, path)
        if rel_folder == '.':
            dirs[:] = [name for name in dirs if not name.startswith('.')]
        for name in files:
            full = os.path.join(folder, name)
            rel = name if rel_folder == '.' else f'{rel_folder}/{name}'
            if os.path.islink(full) or (rel_folder == '.' and name.startswith('.')):
                continue
            with open(full, 'rb') as handle:
                entries.append((rel, hashlib.sha256(handle.read()).digest()))
    digest = hashlib.sha256()
    for rel, file_digest in sorted(entries):
        digest.update(rel.encode() + b'\0' + file_digest)
    return digest.hexdigest(), len(entries)


def expect_current(*, root: Path, release: str, env: Env, thorough: bool, version: str | None = None) -> None:
    current = root / 'current'
    if not current.is_symlink():
        raise BenchError(f'{current} is not a symlink')
    target = (root / os.readlink(current)).resolve() if not os.path.isabs(os.readlink(current)) else current.resolve()
    wanted = (root / 'releases' / release).resolve()
    if target != wanted:
        raise BenchError(f'{current} points to {target}, expected {wanted}')
    if thorough and version:
        digest, count = tree_digest(wanted)
        expected = env.manifest['archives'][f'{version}.tar.gz']['content']
        if digest != expected:
            raise BenchError(f'{wanted}: content digest {digest} ({count} files) differs from the {version} artifact')


def expect_shared_links(*, root: Path, release: str) -> None:
    for name in [*SHARED_DIRS, *SHARED_FILES]:
        link = root / 'releases' / release / name
        if not link.is_symlink() or link.resolve() != (root / 'shared' / name).resolve():
            raise BenchError(f'{link} is not a link to {root / "shared" / name}')


def release_state(*, root: Path, release: str) -> str:
    meta = root / 'releases' / release / '.release.json'
    try:
        return str(json.loads(meta.read_text())['state'])
    except (OSError, ValueError, KeyError) as exc:
        raise BenchError(f'{meta}: cannot read the release state ({exc})') from exc


def switched_at(*, root: Path, release: str) -> tuple[float, float]:
    """(switched_at, switch_late) of the last deploy event of release in ROOT/.deploy/history.jsonl."""
    history = root / '.deploy' / 'history.jsonl'
    found: tuple[float, float] | None = None
    for line in history.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get('event') == 'deploy' and event.get('id') == release and 'switched_at' in event:
            found = (float(event['switched_at']), float(event.get('switch_late') or 0.0))
    if found is None:
        raise BenchError(f'{history}: no deploy event with switched_at for release {release}')
    return found


def du_bytes(*paths: Path) -> int:
    """Bytes used (du -sk, one invocation, so an inode hard-linked from several paths counts once)."""
    result = subprocess.run(['du', '-skc', '--', *map(str, paths)], capture_output=True, text=True, check=True)
    return int(result.stdout.splitlines()[-1].split()[0]) * 1024


# ---------------------------------------------------------------------------------------------------------
# cases


DEFAULT_DEPLOY_PLAYBOOK = 'atomic.deploy.deploy'
DEFAULT_ROLLBACK_PLAYBOOK = str(REPO_ROOT / 'playbooks' / 'rollback.yml')


def ours_available(*, env: Env, rollback: bool) -> str | None:
    """Why our cases cannot run, or None."""
    needed = [Path(env.rollback_playbook)] if rollback else []
    if env.deploy_playbook == DEFAULT_DEPLOY_PLAYBOOK:
        needed += [REPO_ROOT / 'roles' / 'release' / 'tasks' / 'main.yml', REPO_ROOT / 'playbooks' / 'deploy.yml']
    else:
        needed.append(Path(env.deploy_playbook))
    for path in needed:
        if not path.is_file():
            return f'{path} does not exist'
    return None


def ours_vars(*, env: Env, release: str) -> dict:
    return {
        'release_id': release,
        'release_source': 'archive',
        'release_archive': str(env.archives[release]),
        'release_shared_dirs': SHARED_DIRS,
        'release_shared_files': SHARED_FILES,
        'release_keep': KEEP,
    }


def ours_deploy_command(*, env: Env, inventory: Path, extra: Path) -> list[str]:
    return [env.ansible_playbook, '-i', str(inventory), '-e', f'@{extra}', env.deploy_playbook]


def build_cases(*, env: Env, selected: set[str]) -> list[Case]:
    cases: list[Case] = []
    play = BENCH_DIR / 'playbooks'

    def template(name: str) -> Path:
        return env.templates / name

    def root(name: str) -> Path:
        return env.roots / name

    # 1. shell floor -----------------------------------------------------------------------------------
    def floor_prepare() -> None:
        base = template('floor')
        (base / 'releases').mkdir(parents=True)
        seed_shared(root=base)
        run_logged(
            env=env,
            command=['bash', str(BENCH_DIR / 'floor.sh'), str(base), 'v1', str(env.archives['v1'])],
            log_name='prepare-floor',
        )
        expect_current(root=base, release='v1', env=env, thorough=True, version='v1')

    def floor_check(thorough: bool) -> None:
        expect_current(root=root('floor'), release='v2', env=env, thorough=thorough, version='v2')
        expect_shared_links(root=root('floor'), release='v2')

    cases.append(
        Case(
            key='shell_floor',
            label='1 shell floor (mkdir, tar -xzf, links, mv -T)',
            prepare=floor_prepare,
            reset=lambda: copy_tree(source=template('floor'), dest=root('floor')),
            command=['bash', str(BENCH_DIR / 'floor.sh'), str(root('floor')), 'v2', str(env.archives['v2'])],
            check=floor_check,
        )
    )

    # 2. Ansible floor ---------------------------------------------------------------------------------
    floor_inventory = write_inventory(
        env=env, name='ansible_floor', roots=[root('ansible_floor')], root_var='bench_root'
    )
    floor_vars = write_vars(
        env=env, name='ansible_floor', values={'bench_release': 'v2', 'bench_archive': str(env.archives['v2'])}
    )

    def ansible_floor_prepare() -> None:
        base = template('ansible_floor')
        (base / 'releases' / 'v1').mkdir(parents=True)
        subprocess.run(['tar', '-xzf', str(env.archives['v1']), '-C', str(base / 'releases' / 'v1')], check=True)
        (base / 'current').symlink_to('releases/v1')
        # unarchive needs its destination; creating it is not part of the floor being measured.
        (base / 'releases' / 'v2').mkdir()

    cases.append(
        Case(
            key='ansible_floor',
            label='2 Ansible floor (unarchive + file link)',
            prepare=ansible_floor_prepare,
            reset=lambda: copy_tree(source=template('ansible_floor'), dest=root('ansible_floor')),
            command=[
                env.ansible_playbook,
                '-i',
                str(floor_inventory),
                '-e',
                f'@{floor_vars}',
                str(play / 'ansible_floor.yml'),
            ],
            check=lambda thorough: expect_current(
                root=root('ansible_floor'), release='v2', env=env, thorough=thorough, version='v2'
            ),
        )
    )

    # 3. one task --------------------------------------------------------------------------------------
    one_inventory = write_inventory(env=env, name='one_task', roots=[root('one_task')], root_var='bench_root')
    one_vars = write_vars(env=env, name='one_task', values={'bench_release': 'v2'})

    def one_task_prepare() -> None:
        base = template('one_task')
        (base / 'releases' / 'v1').mkdir(parents=True)
        (base / 'releases' / 'v2').mkdir()
        (base / 'current').symlink_to('releases/v1')

    cases.append(
        Case(
            key='one_task',
            label='3 one-task playbook (file link)',
            prepare=one_task_prepare,
            reset=lambda: copy_tree(source=template('one_task'), dest=root('one_task')),
            command=[env.ansible_playbook, '-i', str(one_inventory), '-e', f'@{one_vars}', str(play / 'one_task.yml')],
            check=lambda thorough: expect_current(root=root('one_task'), release='v2', env=env, thorough=False),
        )
    )

    # 4. community.general.deploy_helper flow ----------------------------------------------------------
    dh_inventory = write_inventory(env=env, name='deploy_helper', roots=[root('deploy_helper')], root_var='bench_root')
    dh_template_inventory = write_inventory(
        env=env, name='deploy_helper-template', roots=[template('deploy_helper')], root_var='bench_root'
    )

    def dh_vars(release: str) -> Path:
        return write_vars(
            env=env,
            name=f'deploy_helper-{release}',
            values={
                'bench_release': release,
                'bench_archive': str(env.archives[release]),
                'bench_shared_dirs': SHARED_DIRS,
                'bench_shared_files': SHARED_FILES,
            },
        )

    def dh_prepare() -> None:
        base = template('deploy_helper')
        seed_shared(root=base)
        run_logged(
            env=env,
            command=[
                env.ansible_playbook,
                '-i',
                str(dh_template_inventory),
                '-e',
                f'@{dh_vars("v1")}',
                str(play / 'deploy_helper.yml'),
            ],
            log_name='prepare-deploy_helper',
        )
        expect_current(root=base, release='v1', env=env, thorough=True, version='v1')

    def dh_check(thorough: bool) -> None:
        expect_current(root=root('deploy_helper'), release='v2', env=env, thorough=thorough, version='v2')
        expect_shared_links(root=root('deploy_helper'), release='v2')

    cases.append(
        Case(
            key='deploy_helper',
            label='4 community.general.deploy_helper flow',
            prepare=dh_prepare,
            reset=lambda: copy_tree(source=template('deploy_helper'), dest=root('deploy_helper')),
            command=[
                env.ansible_playbook,
                '-i',
                str(dh_inventory),
                '-e',
                f'@{dh_vars("v2")}',
                str(play / 'deploy_helper.yml'),
            ],
            check=dh_check,
        )
    )

    # 5-7. ours ----------------------------------------------------------------------------------------
    ours_wanted = selected & {'deploy', 'noop', 'rollback', 'scale'}
    if ours_wanted:
        missing = ours_available(env=env, rollback='rollback' in selected)
        if missing:
            raise BenchError(f'our cases ({", ".join(sorted(ours_wanted))}) cannot run: {missing}')
        cases.extend(build_our_cases(env=env))
    return [case for case in cases if case.key in selected or (case.key == 'ours_v1' and ours_wanted)]


def build_our_cases(*, env: Env) -> list[Case]:
    v1_vars = write_vars(env=env, name='ours-v1', values=ours_vars(env=env, release='v1'))
    v2_vars = write_vars(env=env, name='ours-v2', values=ours_vars(env=env, release='v2'))
    rollback_play = env.rollback_playbook
    templates = env.templates
    roots = env.roots

    def prepare_v1() -> None:
        """ours-v1: v1 deployed by our playbook; ours-v2: v2 deployed over it (the rollback start)."""
        base = templates / 'ours-v1'
        seed_shared(root=base)
        inventory = write_inventory(env=env, name='ours-template-v1', roots=[base], root_var='release_root')
        run_logged(
            env=env,
            command=ours_deploy_command(env=env, inventory=inventory, extra=v1_vars),
            log_name='prepare-ours-v1',
        )
        expect_current(root=base, release='v1', env=env, thorough=True, version='v1')
        expect_shared_links(root=base, release='v1')
        live = templates / 'ours-v2'
        copy_tree(source=base, dest=live)
        inventory = write_inventory(env=env, name='ours-template-v2', roots=[live], root_var='release_root')
        run_logged(
            env=env,
            command=ours_deploy_command(env=env, inventory=inventory, extra=v2_vars),
            log_name='prepare-ours-v2',
        )
        expect_current(root=live, release='v2', env=env, thorough=True, version='v2')

    deploy_inventory = write_inventory(
        env=env, name='ours-deploy', roots=[roots / 'ours-deploy'], root_var='release_root'
    )
    noop_inventory = write_inventory(env=env, name='ours-noop', roots=[roots / 'ours-noop'], root_var='release_root')
    rollback_inventory = write_inventory(
        env=env, name='ours-rollback', roots=[roots / 'ours-rollback'], root_var='release_root'
    )

    def deploy_check(thorough: bool) -> None:
        root = roots / 'ours-deploy'
        expect_current(root=root, release='v2', env=env, thorough=thorough, version='v2')
        expect_shared_links(root=root, release='v2')
        if release_state(root=root, release='v2') != 'complete':
            raise BenchError(f'{root}/releases/v2 is not complete after the deploy')

    def noop_check(thorough: bool) -> None:
        root = roots / 'ours-noop'
        expect_current(root=root, release='v1', env=env, thorough=thorough, version='v1')
        if (root / 'releases' / 'v2').exists():
            raise BenchError(f'{root}/releases/v2 exists after a no-op re-deploy of v1')

    def rollback_check(thorough: bool) -> None:
        root = roots / 'ours-rollback'
        expect_current(root=root, release='v1', env=env, thorough=thorough, version='v1')
        if release_state(root=root, release='v2') != 'failed':
            raise BenchError(f'{root}/releases/v2 is not marked failed after the rollback')

    return [
        Case(
            key='ours_v1',
            label='(prepares our v1 and v2 roots)',
            prepare=prepare_v1,
            reset=lambda: None,
            command=[],
            check=lambda thorough: None,
        ),
        Case(
            key='deploy',
            label='5 our deploy, steady state (v2 over v1)',
            prepare=lambda: None,
            reset=lambda: copy_tree(source=templates / 'ours-v1', dest=roots / 'ours-deploy'),
            command=ours_deploy_command(env=env, inventory=deploy_inventory, extra=v2_vars),
            check=deploy_check,
        ),
        Case(
            key='noop',
            label='6 our no-op re-deploy of the live release',
            prepare=lambda: None,
            reset=lambda: copy_tree(source=templates / 'ours-v1', dest=roots / 'ours-noop'),
            command=ours_deploy_command(env=env, inventory=noop_inventory, extra=v1_vars),
            check=noop_check,
        ),
        Case(
            key='rollback',
            label='7 our rollback (v2 -> v1)',
            prepare=lambda: None,
            reset=lambda: copy_tree(source=templates / 'ours-v2', dest=roots / 'ours-rollback'),
            command=[env.ansible_playbook, '-i', str(rollback_inventory), rollback_play],
            check=rollback_check,
        ),
    ]


# ---------------------------------------------------------------------------------------------------------
# running


def summary(times: list[float]) -> dict:
    return {
        'median': statistics.median(times),
        'min': min(times),
        'max': max(times),
        'runs': len(times),
        'times': [round(value, 4) for value in times],
    }


def run_rounds(*, env: Env, cases: list[Case], runs: int) -> None:
    timed = [case for case in cases if case.command]
    for case in cases:
        log(f'preparing {case.key}')
        case.prepare()
    for round_index in range(runs + 1):
        warm = round_index == 0
        for case in timed:
            case.reset()
            name = f'{case.key}-{"warmup" if warm else round_index}'
            elapsed, output = run_logged(env=env, command=case.command, log_name=name)
            case.check(warm)
            if not warm:
                case.times.append(elapsed)
                case.changed.append(recap_changed(output))
        done = ', '.join(f'{case.key} {case.times[-1]:.2f}s' for case in timed if case.times and not warm)
        log(f'round {"warm-up" if warm else round_index}/{runs} done{": " + done if done else ""}')


def run_scaling(*, env: Env, hosts_list: list[int], runs: int) -> dict:
    v2_vars = env.inventories / 'ours-v2.vars.json'
    source = env.templates / 'ours-v1'
    results: dict = {}
    for count in hosts_list:
        base = env.roots / f'scale-{count}'
        roots = [base / f'host-{index:02d}' for index in range(count)]
        inventory = write_inventory(env=env, name=f'scale-{count}', roots=roots, root_var='release_root')
        command = ours_deploy_command(env=env, inventory=inventory, extra=v2_vars)
        walls: list[float] = []
        skews: list[float] = []
        lates: list[float] = []
        for run_index in range(runs + 1):
            warm = run_index == 0
            if base.exists():
                shutil.rmtree(base)
            base.mkdir(parents=True)
            for root in roots:
                copy_tree(source=source, dest=root)
            elapsed, _output = run_logged(
                env=env, command=command, log_name=f'scale-{count}-{"warmup" if warm else run_index}'
            )
            for root in roots:
                expect_current(root=root, release='v2', env=env, thorough=warm and root == roots[0], version='v2')
            switches = [switched_at(root=root, release='v2') for root in roots]
            stamps = [stamp for stamp, _late in switches]
            late = max(late for _stamp, late in switches)
            if not warm:
                walls.append(elapsed)
                skews.append(max(stamps) - min(stamps))
                lates.append(late)
            log(
                f'scale {count} hosts run {"warm-up" if warm else run_index}/{runs}: {elapsed:.2f}s, '
                f'skew {1000 * (max(stamps) - min(stamps)):.1f} ms, latest host {1000 * late:.0f} ms late'
            )
        shutil.rmtree(base)
        # switch_late > 0: a host reached the agreed instant late (the switch delay was too short for the load).
        results[str(count)] = {**summary(walls), 'skew_s': summary(skews), 'max_switch_late_s': summary(lates)}
    return results


def measure_disk(*, env: Env, has_ours: bool, has_dh: bool) -> dict:
    disk: dict = {}
    if has_ours:
        v1_only = du_bytes(env.templates / 'ours-v1' / 'releases')
        both = du_bytes(env.roots / 'ours-deploy' / 'releases')
        disk['ours'] = {'after_v1': v1_only, 'after_v2': both, 'added_fraction': (both - v1_only) / v1_only}
    if has_dh:
        v1_only = du_bytes(env.templates / 'deploy_helper' / 'releases')
        both = du_bytes(env.roots / 'deploy_helper' / 'releases')
        disk['deploy_helper'] = {'after_v1': v1_only, 'after_v2': both, 'added_fraction': (both - v1_only) / v1_only}
    return disk


# ---------------------------------------------------------------------------------------------------------
# reporting


def machine_info(*, env: Env) -> dict:
    cpu = 'unknown'
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    memory = 'unknown'
    try:
        for line in Path('/proc/meminfo').read_text().splitlines():
            if line.startswith('MemTotal:'):
                memory = f'{int(line.split()[1]) // 1024 // 1024} GiB'
                break
    except OSError:
        pass
    os_name = platform.system()
    try:
        for line in Path('/etc/os-release').read_text().splitlines():
            if line.startswith('PRETTY_NAME='):
                os_name = line.split('=', 1)[1].strip('"')
    except OSError:
        pass

    def version_of(package: str) -> str:
        result = subprocess.run(
            [env.python, '-c', f'import importlib.metadata as m; print(m.version({package!r}))'],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() or 'not installed'

    return {
        'cpu': cpu,
        'cores': os.cpu_count(),
        'memory': memory,
        'os': os_name,
        'kernel': platform.release(),
        'python': subprocess.run([env.python, '-V'], capture_output=True, text=True, check=False).stdout.strip(),
        'ansible_core': version_of('ansible-core'),
        'ansible': version_of('ansible'),
        'deploy_roots': 'tmpfs' if is_tmpfs(env.work) else 'not a tmpfs',
    }


def is_tmpfs(path: Path) -> bool:
    best = ('', '')
    for line in Path('/proc/mounts').read_text().splitlines():
        parts = line.split()
        mount_point, fs_type = parts[1], parts[2]
        if (str(path) == mount_point or str(path).startswith(mount_point.rstrip('/') + '/')) and len(mount_point) > len(
            best[0]
        ):
            best = (mount_point, fs_type)
    return best[1] == 'tmpfs'


def ratios(*, cases: dict, scaling: dict, disk: dict) -> list[dict]:
    def median(key: str) -> float | None:
        return cases[key]['median'] if key in cases else None

    def ratio(num: float | None, den: float | None) -> float | None:
        return num / den if num is not None and den else None

    rows = [
        (
            'deploy_vs_floor',
            'steady-state deploy / Ansible floor',
            ratio(median('deploy'), median('ansible_floor')),
            '<=',
            0.7,
            'x',
        ),
        (
            'noop_vs_one_task',
            'no-op re-deploy / one-task playbook',
            ratio(median('noop'), median('one_task')),
            '<=',
            1.0,
            'x',
        ),
        (
            'rollback_vs_one_task',
            'rollback / one-task playbook',
            ratio(median('rollback'), median('one_task')),
            '<=',
            1.2,
            'x',
        ),
        (
            'wall32_vs_floor',
            'wall(32 hosts) / one-host Ansible floor',
            ratio(scaling.get('32', {}).get('median'), median('ansible_floor')),
            '<=',
            11.0,
            'x',
        ),
        (
            'skew32_ms',
            'switch skew at 32 hosts (median, ms)',
            1000 * scaling['32']['skew_s']['median'] if '32' in scaling else None,
            '<',
            100.0,
            'ms',
        ),
        (
            'disk_added',
            'disk added by v2 / v1',
            disk['ours']['added_fraction'] if 'ours' in disk else None,
            '<=',
            0.05,
            '%',
        ),
    ]
    info_rows = [
        (
            'deploy_helper_vs_floor',
            'deploy_helper flow / Ansible floor',
            ratio(median('deploy_helper'), median('ansible_floor')),
            'x',
        ),
        (
            'ansible_floor_vs_shell',
            'Ansible floor / shell floor',
            ratio(median('ansible_floor'), median('shell_floor')),
            'x',
        ),
        (
            'deploy_vs_deploy_helper',
            'steady-state deploy / deploy_helper flow',
            ratio(median('deploy'), median('deploy_helper')),
            'x',
        ),
        (
            'deploy_helper_disk_added',
            'deploy_helper disk added by v2 / v1',
            disk['deploy_helper']['added_fraction'] if 'deploy_helper' in disk else None,
            '%',
        ),
    ]
    out = []
    for key, label, value, op, target, unit in rows:
        met = None if value is None else (value <= target if op == '<=' else value < target)
        out.append(
            {
                'key': key,
                'label': label,
                'value': value,
                'op': op,
                'target': target,
                'unit': unit,
                'met': met,
                'peer': PEERS.get(key, '-'),
            }
        )
    peers_info = {
        'deploy_helper_vs_floor': '~1.8x',
        'ansible_floor_vs_shell': '10x (4.1 s)',
        'deploy_helper_disk_added': '+100%',
    }
    for key, label, value, unit in info_rows:
        out.append(
            {
                'key': key,
                'label': label,
                'value': value,
                'op': None,
                'target': None,
                'unit': unit,
                'met': None,
                'peer': peers_info.get(key, '-'),
            }
        )
    return out


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return 'n/a'
    if unit == '%':
        return f'{100 * value:+.1f}%'
    if unit == 'ms':
        return f'{value:.1f} ms'
    return f'{value:.2f}x'


def fmt_target(row: dict) -> str:
    if row['target'] is None:
        return '(info)'
    return f'{row["op"]} {fmt_value(row["target"], row["unit"]).lstrip("+")}'


def render_table(results: dict) -> str:
    lines = ['| case | median | min - max | runs | changed |', '| --- | ---: | ---: | ---: | ---: |']
    for data in results['cases'].values():
        changed = data.get('changed')
        changed_text = '-' if not changed or changed[0] < 0 else '/'.join(str(value) for value in sorted(set(changed)))
        lines.append(
            f'| {data["label"]} | {data["median"]:.2f} s | {data["min"]:.2f} - {data["max"]:.2f} s | '
            f'{data["runs"]} | {changed_text} |'
        )
    for count, data in results['scaling'].items():
        skew = data['skew_s']
        late = data['max_switch_late_s']['max']
        late_text = f', a host up to {1000 * late:.0f} ms late' if late > 0 else ''
        lines.append(
            f'| 8 our deploy to {count} host{"s" if count != "1" else ""} (switch skew median '
            f'{1000 * skew["median"]:.1f} ms, max {1000 * skew["max"]:.1f} ms{late_text}) | {data["median"]:.2f} s | '
            f'{data["min"]:.2f} - {data["max"]:.2f} s | {data["runs"]} | - |'
        )
    for flow, data in results['disk'].items():
        lines.append(
            f'| 9 disk, {flow}: releases/ after v1 {data["after_v1"] / 1e6:.1f} MB, after v2 '
            f'{data["after_v2"] / 1e6:.1f} MB | {100 * data["added_fraction"]:+.1f}% | | | |'
        )
    lines += ['', '| ratio | value | target | met | peers |', '| --- | ---: | ---: | :---: | --- |']
    for row in results['ratios']:
        met = {True: 'yes', False: 'NO', None: '-'}[row['met']]
        lines.append(
            f'| {row["label"]} | {fmt_value(row["value"], row["unit"])} | {fmt_target(row)} | {met} | {row["peer"]} |'
        )
    return '\n'.join(lines)


def render_header(results: dict) -> str:
    machine = results['machine']
    params = results['parameters']
    artifact = results['artifact']
    scaling = (
        f'scaling: {params["scale_runs"]} per host count, hosts {", ".join(map(str, params["hosts"]))}'
        if results['scaling']
        else 'scaling not run'
    )
    return (
        f'Run {results["finished"]} on {machine["cpu"]}, {machine["cores"]} cores, {machine["memory"]}, '
        f'{machine["os"]} (kernel {machine["kernel"]}), {machine["python"]}, ansible-core {machine["ansible_core"]}, '
        f'ansible {machine["ansible"]}; deploy roots on {machine["deploy_roots"]}. Load average '
        f'{results["load_before"]} before, {results["load_after"]} after. {params["runs"]} timed runs per case '
        f'after a warm-up ({scaling}). '
        f'Artifact: {artifact["files"]} files in {artifact["dirs"]} dirs, {artifact["bytes"] / 1e6:.1f} MB '
        f"({artifact['archives']['v1.tar.gz']['bytes'] / 1e6:.1f} MB gzip'd), v2 changes "
        f'{artifact["changed_files"]} files; content digest v1 {artifact["archives"]["v1.tar.gz"]["content"][:12]}.'
    )


def update_readme(*, text: str) -> None:
    readme = BENCH_DIR / 'README.md'
    current = readme.read_text()
    start = current.find(README_START)
    end = current.find(README_END)
    if start < 0 or end < start:
        raise BenchError(f'{readme}: markers {README_START} / {README_END} not found')
    updated = current[: start + len(README_START)] + '\n' + text + '\n' + current[end:]
    readme.write_text(updated)


def load_average() -> str:
    try:
        return ' '.join(Path('/proc/loadavg').read_text().split()[:3])
    except OSError:
        return 'unknown'


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work', type=Path, required=True, help='scratch directory, normally a fresh tmpfs')
    parser.add_argument('--artifacts', type=Path, required=True, help='directory with v1.tar.gz, v2.tar.gz, manifest')
    parser.add_argument('--venv', type=Path, required=True, help='the bench venv (ansible + community.general)')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--scale-runs', type=int, default=None)
    parser.add_argument('--hosts', default='1,8,32', help='host counts for the scaling case')
    parser.add_argument(
        '--cases', default='shell_floor,ansible_floor,one_task,deploy_helper,deploy,noop,rollback,scale,disk'
    )
    parser.add_argument('--deploy-playbook', default=DEFAULT_DEPLOY_PLAYBOOK, help='our deploy playbook')
    parser.add_argument('--rollback-playbook', default=DEFAULT_ROLLBACK_PLAYBOOK, help='our rollback playbook')
    parser.add_argument('--results', type=Path, default=BENCH_DIR / 'results')
    parser.add_argument('--readme', action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument('--strict', action='store_true', help='exit 1 when a target is missed')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.runs < 1:
        raise SystemExit('bench: --runs (BENCH_RUNS) must be at least 1')
    selected = {name.strip() for name in args.cases.replace(' ', ',').split(',') if name.strip()}
    hosts_list = sorted({int(value) for value in args.hosts.replace(' ', ',').split(',') if value.strip()})
    scale_runs = args.scale_runs if args.scale_runs is not None else args.runs
    work = args.work.resolve()
    manifest = json.loads((args.artifacts / 'manifest.json').read_text())
    (work / 'artifacts').mkdir(parents=True, exist_ok=True)
    archives = {}
    for version in ('v1', 'v2'):
        # The controller reads the archive from the tmpfs too, not from the noisy disk.
        archives[version] = work / 'artifacts' / f'{version}.tar.gz'
        shutil.copyfile(args.artifacts / f'{version}.tar.gz', archives[version])
    python = str(args.venv / 'bin' / 'python')
    config = write_config(work=work, python=python)
    env = Env(
        work=work,
        venv=args.venv,
        python=python,
        archives=archives,
        manifest=manifest,
        environ=make_environ(work=work, venv=args.venv, collections=collection_tree(work=work), config=config),
        logs=work / 'logs',
        inventories=work / 'inventories',
        templates=work / 'templates',
        roots=work / 'roots',
        deploy_playbook=args.deploy_playbook,
        rollback_playbook=args.rollback_playbook,
    )
    for folder in (env.logs, env.inventories, env.templates, env.roots):
        folder.mkdir(parents=True, exist_ok=True)

    load_before = load_average()
    started = time.time()
    cases = build_cases(env=env, selected=selected)
    run_rounds(env=env, cases=cases, runs=args.runs)
    has_ours = any(case.key == 'ours_v1' for case in cases)
    scaling = run_scaling(env=env, hosts_list=hosts_list, runs=scale_runs) if 'scale' in selected else {}
    disk = (
        measure_disk(env=env, has_ours=has_ours and 'deploy' in selected, has_dh='deploy_helper' in selected)
        if 'disk' in selected
        else {}
    )
    case_results = {
        case.key: {'label': case.label, **summary(case.times), 'changed': case.changed}
        for case in cases
        if case.command
    }
    results = {
        'finished': dt.datetime.now(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'duration_s': round(time.time() - started, 1),
        'machine': machine_info(env=env),
        'load_before': load_before,
        'load_after': load_average(),
        'parameters': {
            'runs': args.runs,
            'scale_runs': scale_runs,
            'hosts': hosts_list,
            'cases': sorted(selected),
            'keep': KEEP,
            'deploy_playbook': args.deploy_playbook,
            'rollback_playbook': args.rollback_playbook,
            'shared_dirs': SHARED_DIRS,
            'shared_files': SHARED_FILES,
        },
        'artifact': {key: value for key, value in manifest.items() if key != 'cached'},
        'cases': case_results,
        'scaling': scaling,
        'disk': disk,
    }
    results['ratios'] = ratios(cases=case_results, scaling=scaling, disk=disk)
    table = render_table(results)
    header = render_header(results)
    print()
    print(header)
    print()
    print(table)

    args.results.mkdir(parents=True, exist_ok=True)
    raw = args.results / 'raw'
    raw.mkdir(exist_ok=True)
    stamp = results['finished'].replace(':', '')
    for path in (args.results / 'latest.json', raw / f'{stamp}.json'):
        temp = path.with_name(f'.{path.name}.tmp')
        temp.write_text(json.dumps(results, indent=2) + '\n')
        os.replace(temp, path)
    log(f'wrote {args.results / "latest.json"} and {raw / f"{stamp}.json"} ({results["duration_s"]} s)')
    if args.readme:
        update_readme(text=f'{header}\n\n{table}')
        log(f'updated the results section of {BENCH_DIR / "README.md"}')
    missed = [row['label'] for row in results['ratios'] if row['met'] is False]
    if missed:
        log(f'targets missed: {"; ".join(missed)}')
        if args.strict:
            return 1
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f'bench: error: {exc}', file=sys.stderr)
        sys.exit(1)
