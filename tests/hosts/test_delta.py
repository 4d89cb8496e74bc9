"""Delta staging over real SSH, with become, to a host from tests/hosts/hostctl.py.

Bytes controller -> host are counted on the host's root-namespace veth (tx_bytes). The
artifact is bench/generate.py's, scaled down (500 files, 5 MB; v2 changes 1% of the files).
Needs root and the cached rootfs, like test_hostctl.py; skipped without them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ansible_collections.atomic.deploy.plugins.plugin_utils import _tar_manifest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HOSTCTL = HERE / 'hostctl.py'
MANIFEST_PY = REPO / 'plugins' / 'module_utils' / '_manifest.py'
_spec = importlib.util.spec_from_file_location('hostctl', HOSTCTL)
assert _spec is not None and _spec.loader is not None
hostctl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostctl)
_mspec = importlib.util.spec_from_file_location('delta_manifest', MANIFEST_PY)
assert _mspec is not None and _mspec.loader is not None
manifest = importlib.util.module_from_spec(_mspec)
_mspec.loader.exec_module(manifest)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0
    or not hostctl.rootfs_current(
        path=hostctl.rootfs_path(packages=hostctl.package_set(extra=[])), packages=hostctl.package_set(extra=[])
    ),
    reason='needs root and the cached rootfs (python3 tests/hosts/hostctl.py build)',
)

NAME = f'delta-{os.getpid() % 100000}'
ROOT = '/srv/delta'
PLAYBOOK = """
- name: Deploy with delta staging
  hosts: all
  gather_facts: false
  become: true
  tasks:
    - name: Stage the release
      atomic.deploy.release:
        root: "{{ root }}"
        id: "{{ rid }}"
        source: archive
        archive: "{{ art }}"
        lock: true
        lock_steal: "{{ steal | bool }}"
      register: staged
    - name: Switch to it
      atomic.deploy.release:
        root: "{{ root }}"
        id: "{{ rid }}"
        state: active
        lock_token: "{{ staged.token }}"
        unlock: true
      when: not staged.live
    - name: Keep the staging result
      ansible.builtin.copy:
        content: "{{ staged | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
      delegate_to: localhost
      become: false
"""


class Host:
    def __init__(self, *, work: Path, inventory: Path, state: dict) -> None:
        self.work = work
        self.inventory = inventory
        self.host = state['hosts'][0]
        self.key = state['private_key']
        self.veth = self.host['veth']

    def tx(self) -> int:
        return int(Path(f'/sys/class/net/{self.veth}/statistics/tx_bytes').read_text())

    def ssh(self, command: str, *, stdin: str | None = None) -> str:
        done = subprocess.run(
            ['ssh', *hostctl.ssh_args(key=Path(self.key)), f'deploy@{self.host["address"]}', command],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def tree_digest(self, path: str) -> str:
        script = MANIFEST_PY.read_text() + (
            f'\nprint(digest(from_tree(root={path!r}, exclude=(".release.json", MANIFEST_NAME))[0]))\n'
        )
        return self.ssh('sudo -n python3 -', stdin=script).strip()

    def playbook_argv(self, *, rid: str, art: Path, steal: bool = False) -> tuple[list[str], Path]:
        book = self.work / 'deploy.yml'
        book.write_text(PLAYBOOK)
        out = self.work / f'result-{rid}-{time.monotonic_ns()}.json'
        extra = {'root': ROOT, 'rid': rid, 'art': str(art), 'steal': steal, 'out': str(out)}
        argv = [
            str(Path(sys.executable).with_name('ansible-playbook')),
            '-i',
            str(self.inventory),
            str(book),
            '-e',
            json.dumps(extra),
        ]
        return argv, out

    def env(self) -> dict:
        env = dict(os.environ)
        env.setdefault('ANSIBLE_COLLECTIONS_PATH', str(REPO / 'build' / 'collections'))
        env['ANSIBLE_SSH_CONTROL_PATH_DIR'] = str(self.work / 'cp')
        env['ANSIBLE_HOST_KEY_CHECKING'] = 'false'
        env['ATOMIC_DEPLOY_DELTA_CACHE'] = str(self.work / 'cache')
        return env

    def deploy(self, *, rid: str, art: Path, steal: bool = False) -> tuple[dict, int]:
        argv, out = self.playbook_argv(rid=rid, art=art, steal=steal)
        before = self.tx()
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env(), timeout=300, check=False)
        sent = self.tx() - before
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return json.loads(out.read_text()), sent


@pytest.fixture(scope='module')
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    work = tmp_path_factory.mktemp('delta')
    inventory = work / 'inventory.yml'
    up = subprocess.run(
        [sys.executable, str(HOSTCTL), 'up', '--name', NAME, '--count', '1', '--inventory', str(inventory)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stderr
        assert yaml.safe_load(inventory.read_text())['all']['hosts']
        yield Host(work=work, inventory=inventory, state=hostctl.load_state(names=hostctl.Names(name=NAME)))
    finally:
        subprocess.run(
            [sys.executable, str(HOSTCTL), 'down', '--name', NAME], capture_output=True, timeout=120, check=False
        )


@pytest.fixture(scope='module')
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp('artifacts')
    other = tmp_path_factory.mktemp('other')
    gen = [sys.executable, str(REPO / 'bench' / 'generate.py'), '--files', '500', '--mb', '5']
    subprocess.run([*gen, '--out', str(out)], check=True, capture_output=True, timeout=300)
    subprocess.run([*gen, '--out', str(other), '--seed', '7'], check=True, capture_output=True, timeout=300)
    found = {'v1': out / 'v1.tar.gz', 'v2': out / 'v2.tar.gz', 'other': other / 'v1.tar.gz'}
    for path in list(found.values()):
        with open(path, 'rb') as handle:
            found[f'{path}:digest'] = manifest.digest(_tar_manifest.from_tar(fileobj=handle))
    return found


def digest_of(artifacts: dict, name: str) -> str:
    return artifacts[f'{artifacts[name]}:digest']


def changed_paths(a: Path, b: Path) -> list[str]:
    """Files whose content differs between two artifacts."""
    with open(a, 'rb') as one, open(b, 'rb') as two:
        first = {e[0]: e for e in _tar_manifest.from_tar(fileobj=one) if e[1] == 'f'}
        second = {e[0]: e for e in _tar_manifest.from_tar(fileobj=two) if e[1] == 'f'}
    return sorted(p for p in first if p in second and first[p][4] != second[p][4])


def member(archive: Path, rel: str) -> bytes:
    with tarfile.open(archive) as tf:
        for info in tf:
            if info.name.lstrip('./') == rel:
                handle = tf.extractfile(info)
                assert handle is not None
                return handle.read()
    raise KeyError(rel)


FIGURES: dict = {}
MODULE_RUN = 250_000
"""Upper bound of what one run of the release module costs on the wire (its AnsiballZ payload)."""


def test_first_deploy_sends_the_archive_once(host: Host, artifacts: dict) -> None:
    result, sent = host.deploy(rid='v1', art=artifacts['v1'])
    size = artifacts['v1'].stat().st_size
    FIGURES['v1'] = sent
    assert result['delta']['mode'] == 'full'
    assert host.tree_digest(f'{ROOT}/releases/v1') == digest_of(artifacts, 'v1')
    assert result['source']['content_digest'] == digest_of(artifacts, 'v1')
    # the archive itself once, plus three module runs (probe, stage, switch: about 200 kB each
    # with ansible-core 2.19, whatever is deployed)
    assert result['delta']['sent_bytes'] == size
    assert sent <= 1.05 * size + 3 * MODULE_RUN, (sent, size)


def test_one_percent_change_sends_only_the_delta(host: Host, artifacts: dict) -> None:
    result, sent = host.deploy(rid='v2', art=artifacts['v2'])
    FIGURES['v2'] = sent
    FIGURES['v2_bundle'] = result['delta']['sent_bytes']
    assert result['delta']['mode'] == 'delta'
    assert result['delta']['sent_files'] == len(changed_paths(artifacts['v1'], artifacts['v2']))
    assert host.tree_digest(f'{ROOT}/releases/v2') == digest_of(artifacts, 'v2')
    size = artifacts['v2'].stat().st_size
    assert result['delta']['sent_bytes'] < 0.05 * size, result['delta']
    assert sent < 0.05 * size + 3 * MODULE_RUN, sent
    assert sent < 0.25 * FIGURES['v1'], sent


def test_noop_redeploy_sends_no_artifact_bytes(host: Host, artifacts: dict) -> None:
    result, sent = host.deploy(rid='v2', art=artifacts['v2'])
    FIGURES['noop'] = sent
    assert result['live'] is True and result['delta']['mode'] == 'none'
    assert sent <= 50_000, sent


def test_reused_id_with_another_artifact_fails_clearly(host: Host, artifacts: dict) -> None:
    argv, _out = host.playbook_argv(rid='v2', art=artifacts['v1'])
    done = subprocess.run(argv, capture_output=True, text=True, env=host.env(), timeout=300, check=False)
    assert done.returncode != 0
    assert 'release v2 already exists' in done.stdout
    assert digest_of(artifacts, 'v1') in done.stdout and digest_of(artifacts, 'v2') in done.stdout
    assert 'under a new id' in done.stdout


def test_hot_patched_file_in_an_older_release_is_sent_again(host: Host, artifacts: dict) -> None:
    # A file whose v1 content only v1 holds (v2 changed it), edited in place on the host.
    rel = changed_paths(artifacts['v1'], artifacts['v2'])[0]
    original = member(artifacts['v1'], rel)
    patched = original[:-1] + (b'X' if original[-1:] != b'X' else b'Y')
    target = f'{ROOT}/releases/v1/{rel}'
    script = (
        'import os, sys\n'
        f'p = {target!r}\n'
        'st = os.stat(p)\n'
        f'with open(p, "r+b") as f: f.write({patched!r})\n'
        'os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))\n'
    )
    host.ssh('sudo -n python3 -', stdin=script)
    # v1's artifact again, under a new id: everything but the patched file is on the host
    result, sent = host.deploy(rid='v3', art=artifacts['v1'])
    assert result['delta']['mode'] == 'delta'
    assert result['delta']['sent_files'] == 1, result['delta']
    assert host.tree_digest(f'{ROOT}/releases/v3') == digest_of(artifacts, 'v1')
    inodes = host.ssh(f'sudo -n stat -c %i {target} {ROOT}/releases/v3/{rel}').split()
    assert inodes[0] != inodes[1]
    assert result['delta']['sent_bytes'] < 0.05 * artifacts['v1'].stat().st_size
    assert sent < 0.05 * artifacts['v1'].stat().st_size + 3 * MODULE_RUN


def test_drift_check_names_the_hot_patched_file(host: Host, artifacts: dict) -> None:
    rel = changed_paths(artifacts['v1'], artifacts['v2'])[0]
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name('ansible')),
            '-i',
            str(host.inventory),
            'all',
            '-b',
            '-m',
            'atomic.deploy.releases_info',
            '-a',
            f'root={ROOT} verify=true history=0',
        ],
        capture_output=True,
        text=True,
        env=host.env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    info = json.loads(done.stdout.split('=>', 1)[1])
    drift = {r['id']: r['drift'] for r in info['releases']}
    assert drift['v1']['changed'] == [rel]
    assert drift['v2']['drifted'] is False and drift['v3']['drifted'] is False


def test_host_without_usable_release_gets_the_full_artifact(host: Host, artifacts: dict) -> None:
    # Releases from before manifests existed (or whose content was pruned) are "nothing known".
    host.ssh(f'sudo -n sh -c "rm -f {ROOT}/releases/*/.release.manifest.json"')
    result, sent = host.deploy(rid='v4', art=artifacts['v2'])
    assert result['delta']['mode'] == 'full'
    assert host.tree_digest(f'{ROOT}/releases/v4') == digest_of(artifacts, 'v2')
    assert sent >= artifacts['v2'].stat().st_size


def test_kill_mid_transfer_then_next_deploy_succeeds(host: Host, artifacts: dict) -> None:
    # A 4 Mbit/s link makes the transfer of an unrelated artifact take seconds; kill inside it.
    subprocess.run(
        [
            'tc',
            'qdisc',
            'replace',
            'dev',
            host.veth,
            'root',
            'tbf',
            'rate',
            '4mbit',
            'burst',
            '32kbit',
            'latency',
            '500ms',
        ],
        check=True,
    )
    try:
        argv, _out = host.playbook_argv(rid='v5', art=artifacts['other'])
        before = host.tx()
        process = subprocess.Popen(
            argv, env=host.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while host.tx() - before < 1_000_000 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, 'the deploy ended before the kill'
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        subprocess.run(['tc', 'qdisc', 'del', 'dev', host.veth, 'root'], check=False)
    assert host.ssh(f'readlink {ROOT}/current').strip() == 'releases/v4'
    result, _sent = host.deploy(rid='v5', art=artifacts['other'], steal=True)
    assert result['delta']['mode'] == 'delta'
    assert host.tree_digest(f'{ROOT}/releases/v5') == digest_of(artifacts, 'other')
    assert host.ssh(f'readlink {ROOT}/current').strip() == 'releases/v5'


def test_report_figures(host: Host, artifacts: dict) -> None:
    """Not a check: the bytes per host, for the record (pytest -s shows them)."""
    print(json.dumps({'bytes_per_host': FIGURES, 'archive': artifacts['v1'].stat().st_size}), file=sys.stderr)
    report = os.environ.get('ATOMIC_DEPLOY_DELTA_FIGURES')
    if report:
        Path(report).write_text(json.dumps(FIGURES) + '\n')
