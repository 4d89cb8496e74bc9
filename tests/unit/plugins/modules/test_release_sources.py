# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""release with source=url and url_headers (a local HTTP server), and source=git with submodules."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading

import pytest
from ansible_collections.atomic.deploy.plugins.modules import release

TOKEN = 'Bearer tok-5e3c4d-never-logged'


def tarball(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w:gz') as tf:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def artifact_server():
    """An HTTP server on 127.0.0.1 that serves /app.tar.gz only with the Authorization header, recording it."""
    body = tarball({'index.html': 'v1'})
    seen: list = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get('Authorization'))
            if self.path != '/app.tar.gz' or self.headers.get('Authorization') != TOKEN:
                self.send_response(403)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {
            'url': f'http://127.0.0.1:{server.server_address[1]}/app.tar.gz',
            'checksum': 'sha256:' + hashlib.sha256(body).hexdigest(),
            'seen': seen,
        }
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def root(tmp_path) -> str:
    path = tmp_path / 'app'
    (path / '.deploy').mkdir(parents=True, mode=0o750)
    return str(path)


def test_url_headers_reach_the_server_and_never_the_result(root, run_module, capsys, artifact_server):
    args = {
        'root': root,
        'id': 'r1',
        'source': 'url',
        'url': artifact_server['url'],
        'checksum': artifact_server['checksum'],
        'url_headers': {'Authorization': TOKEN},
    }
    result = run_module(release, args)
    assert artifact_server['seen'] == [TOKEN]
    with open(os.path.join(root, 'releases', 'r1', 'index.html')) as handle:
        assert handle.read() == 'v1'
    assert TOKEN not in json.dumps(result)
    assert 'tok-5e3c4d' not in json.dumps(result)
    with open(os.path.join(root, 'releases', 'r1', '.release.json')) as handle:
        assert 'tok-5e3c4d' not in handle.read()


def test_url_download_refused_by_the_server_fails_without_the_header(root, run_module, artifact_server):
    args = {
        'root': root,
        'id': 'r1',
        'source': 'url',
        'url': artifact_server['url'],
        'checksum': artifact_server['checksum'],
        'url_headers': {'Authorization': 'Bearer tok-wrong-5e3c4d'},
    }
    result = run_module(release, args, failed=True)
    assert artifact_server['seen'] == ['Bearer tok-wrong-5e3c4d']
    assert '403' in result['msg']
    assert 'tok-wrong' not in json.dumps(result)


@pytest.mark.parametrize(
    ('args', 'names'),
    [
        ({'source': 'none', 'url_headers': {'X-Token': 'tok-7f1e'}}, ['url_headers', 'none']),
        ({'source': 'none', 'git_submodules': True}, ['git_submodules', 'source=none']),
        ({'source': 'git', 'git_repo': '/x', 'git_excludes': ['../etc']}, ['git_excludes', '../etc']),
        ({'source': 'git', 'git_repo': '/x', 'git_key_file': 'keys/deploy'}, ['git_key_file', 'keys/deploy']),
        ({'source': 'git', 'git_repo': '/x', 'git_key_file': '/nonexistent/key'}, ['git_key_file', '/nonexistent']),
    ],
)
def test_invalid_source_options_fail_before_changing_anything(root, run_module, assert_error, args, names):
    for check in (True, False):
        result = run_module(release, dict(args, root=root, id='r1'), check=check, failed=True)
        assert_error(result, *names)
    assert os.listdir(root) == ['.deploy']


GIT_ENV = {
    'GIT_AUTHOR_NAME': 'test',
    'GIT_AUTHOR_EMAIL': 'test@example.invalid',
    'GIT_COMMITTER_NAME': 'test',
    'GIT_COMMITTER_EMAIL': 'test@example.invalid',
    'GIT_CONFIG_NOSYSTEM': '1',
    'GIT_CONFIG_GLOBAL': os.devnull,
}


def git(repo: str, *args: str) -> None:
    subprocess.run(['git', '-C', repo, *args], check=True, capture_output=True, env={**os.environ, **GIT_ENV})


@pytest.mark.skipif(shutil.which('git') is None, reason='git is not installed')
def test_git_submodules_and_excludes_in_the_release(root, tmp_path, run_module, monkeypatch):
    lib, app = str(tmp_path / 'lib'), str(tmp_path / 'src')
    for path, files in ((lib, {'lib.php': 'lib'}), (app, {'index.php': 'app', 'tests/t.php': 't'})):
        os.mkdir(path)
        for name, content in files.items():
            os.makedirs(os.path.dirname(os.path.join(path, name)), exist_ok=True)
            with open(os.path.join(path, name), 'w') as handle:
                handle.write(content)
        git(path, 'init', '-q', '-b', 'main')
        git(path, 'add', '-A')
        git(path, 'commit', '-q', '-m', 'first')
    git(app, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', lib, 'vendor/lib')
    git(app, 'commit', '-q', '-m', 'lib')
    # the module's git calls inherit the environment: allow the local submodule url (CVE-2022-39253)
    for key, value in {**GIT_ENV, 'GIT_CONFIG_COUNT': '1', 'GIT_CONFIG_KEY_0': 'protocol.file.allow'}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv('GIT_CONFIG_VALUE_0', 'always')
    args = {
        'root': root,
        'id': 'r1',
        'source': 'git',
        'git_repo': app,
        'git_submodules': True,
        'git_excludes': ['tests'],
    }
    result = run_module(release, args)
    release_dir = os.path.join(root, 'releases', 'r1')
    with open(os.path.join(release_dir, 'vendor', 'lib', 'lib.php')) as handle:
        assert handle.read() == 'lib'
    assert os.path.isfile(os.path.join(release_dir, 'index.php'))
    assert not os.path.lexists(os.path.join(release_dir, 'tests'))
    assert result['source']['git_submodules'] is True and result['source']['git_excludes'] == ['tests']
    assert os.listdir(os.path.join(root, '.deploy', 'tmp')) == []
