"""Release hygiene: the demo deploy runs from the installed tarball, not from the checkout.

The built tarball is installed offline into a scratch collections path, which is the only collections
path Ansible may search (ANSIBLE_COLLECTIONS_PATH, ANSIBLE_HOME pointing away from ~/.ansible), and the
playbooks are run by their FQCN (``ansible-playbook atomic.deploy.deploy``) from a directory outside the
checkout. The app comes from the checkout's examples/ (the sample app, whether or not the tarball
carries it); every task that runs must come from the installed copy, which ``-vvv`` shows.

The demo's flow: deploy v1, deploy v2, status, rollback, status, with the demo's own variables file and
an HTTP server on 127.0.0.1 serving ROOT/current/public for the role's health check URL.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import FQCN, REPO_ROOT, Collection, run, tool

pytestmark = pytest.mark.slow

DEMO = REPO_ROOT / 'examples' / 'demo'
APP = REPO_ROOT / 'examples' / 'app'
TASK_PATH_RE = re.compile(r'^task path: (.+?):\d+$', re.MULTILINE)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture(scope='module')
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A deploy root and an HTTP server on 127.0.0.1 serving ROOT/current/public (resolved per request)."""
    root = tmp_path_factory.mktemp('installed-demo') / 'srv' / 'example'
    handler = functools.partial(QuietHandler, directory=str(root / 'current' / 'public'))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True)
    thread.start()
    try:
        yield root, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def playbook(
    *, collection: Collection, name: str, root: Path, port: int, workdir: Path, extra: dict | None = None
) -> str:
    extra_vars = {'release_root': str(root), 'demo_port': port, **(extra or {})}
    proc = run(
        [
            tool('ansible-playbook'),
            f'{FQCN}.{name}',
            '-vvv',
            '-i',
            str(DEMO / 'inventory.yml'),
            '-e',
            f'@{DEMO / "deploy-vars.yml"}',
            '-e',
            json.dumps(extra_vars),
        ],
        env=collection.env(),
        cwd=workdir,
        timeout=300,
    )
    return proc.stdout


def fetch(port: int) -> str:
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/index.html', timeout=10) as response:
        return response.read().decode('utf-8')


@pytest.fixture(scope='module')
def demo(collection: Collection, site: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory) -> dict:
    root, port = site
    workdir = tmp_path_factory.mktemp('outside-the-checkout')
    outputs: dict[str, str] = {}
    pages: dict[str, str] = {}
    outputs['deploy v1'] = playbook(
        collection=collection,
        name='deploy',
        root=root,
        port=port,
        workdir=workdir,
        extra={'release_directory': str(APP / 'v1')},
    )
    pages['v1'] = fetch(port)
    time.sleep(1.1)  # release ids are UTC seconds
    outputs['deploy v2'] = playbook(
        collection=collection,
        name='deploy',
        root=root,
        port=port,
        workdir=workdir,
        extra={'release_directory': str(APP / 'v2')},
    )
    pages['v2'] = fetch(port)
    outputs['status'] = playbook(collection=collection, name='status', root=root, port=port, workdir=workdir)
    outputs['rollback'] = playbook(collection=collection, name='rollback', root=root, port=port, workdir=workdir)
    pages['rollback'] = fetch(port)
    outputs['status after rollback'] = playbook(
        collection=collection, name='status', root=root, port=port, workdir=workdir
    )
    return {'root': root, 'outputs': outputs, 'pages': pages}


def test_only_the_install_is_searched(collection: Collection, tmp_path: Path) -> None:
    proc = run([tool('ansible-galaxy'), 'collection', 'list', '--format', 'json'], env=collection.env(), cwd=tmp_path)
    listing = json.loads(proc.stdout)
    paths = {path for path, found in listing.items() if FQCN in found}
    assert paths == {str(collection.path.parent.parent)}, f'{FQCN} is found in {sorted(paths)}, not only the install'


def test_demo_deploys_serve_each_version(demo: dict) -> None:
    assert 'id="version">version 1<' in demo['pages']['v1'], f'after deploy v1 the site serves:\n{demo["pages"]["v1"]}'
    assert 'id="version">version 2<' in demo['pages']['v2'], f'after deploy v2 the site serves:\n{demo["pages"]["v2"]}'


def test_demo_rollback_serves_v1_again(demo: dict) -> None:
    root: Path = demo['root']
    assert 'id="version">version 1<' in demo['pages']['rollback'], (
        f'after the rollback the site serves:\n{demo["pages"]["rollback"]}'
    )
    assert (root / 'current' / 'VERSION').read_text(encoding='utf-8').strip() == '1', f'{root}/current is not v1'
    assert os.readlink(root / 'current').startswith('releases/'), f'{root}/current is not a relative releases/ link'


def test_status_reports_the_releases(demo: dict) -> None:
    root: Path = demo['root']
    ids = sorted(path.name for path in (root / 'releases').iterdir() if not path.name.startswith('.'))
    assert len(ids) == 2, f'{root}/releases holds {ids}, expected the v1 and v2 releases'
    for name in ('status', 'status after rollback'):
        for release_id in ids:
            assert release_id in demo['outputs'][name], f'the {name} output does not mention release {release_id}'


def test_every_task_came_from_the_install(demo: dict, collection: Collection) -> None:
    install = str(collection.path.resolve())
    checkout = str(REPO_ROOT.resolve())
    for name, output in demo['outputs'].items():
        paths = {os.path.realpath(path) for path in TASK_PATH_RE.findall(output)}
        assert paths, f'ansible-playbook -vvv printed no task paths for {name}'
        outside = sorted(path for path in paths if not path.startswith(install + os.sep))
        assert not outside, f'{name}: tasks ran from outside the install {install}: {outside}'
        # the collection's code in the checkout (or the checkout's collection tree) must not appear at all
        code = [f'{checkout}/{part}' for part in ('plugins', 'roles', 'playbooks', 'build/collections')]
        mentioned = sorted(path for path in code if path in output)
        assert not mentioned, f"{name}: the output mentions the checkout's collection code: {mentioned}"
