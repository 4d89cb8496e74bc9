# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for plugins/module_utils/_source.py: checksums, downloads, git exports from a real repository."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _source
from ansible_collections.atomic.deploy.plugins.module_utils._release import ReleaseError

SHA256_EMPTY = hashlib.sha256(b'').hexdigest()
SHA512_EMPTY = hashlib.sha512(b'').hexdigest()

# --- parse_checksum / verify_file --------------------------------------------------------------


@pytest.mark.parametrize(
    ('value', 'expected'),
    [
        (f'sha256:{SHA256_EMPTY}', ('sha256', SHA256_EMPTY)),
        (f'SHA256:{SHA256_EMPTY.upper()}', ('sha256', SHA256_EMPTY)),
        (f' sha256 : {SHA256_EMPTY} ', ('sha256', SHA256_EMPTY)),
        (f'sha512:{SHA512_EMPTY}', ('sha512', SHA512_EMPTY)),
        (f'sha1:{hashlib.sha1(b"").hexdigest()}', ('sha1', hashlib.sha1(b'').hexdigest())),
        (f'md5:{hashlib.md5(b"").hexdigest()}', ('md5', hashlib.md5(b'').hexdigest())),
    ],
)
def test_parse_checksum_accepts(value, expected):
    assert _source.parse_checksum(value) == expected


@pytest.mark.parametrize(
    ('value', 'fragment'),
    [
        (SHA256_EMPTY, 'must look like "sha256:<hex digest>"'),
        (None, 'must look like'),
        (42, 'must look like'),
        ('', 'must look like'),
        (f'sha999:{SHA256_EMPTY}', "unsupported algorithm 'sha999'"),
        (f'shake_128:{SHA256_EMPTY}', "unsupported algorithm 'shake_128'"),
        (f'whirlpool:{SHA256_EMPTY}', 'unsupported algorithm'),
        ('sha256:abc', 'must be 64 hex characters'),
        (f'sha256:{SHA256_EMPTY}00', 'must be 64 hex characters'),
        ('sha256:' + 'g' * 64, 'must be 64 hex characters'),
        (f'sha512:{SHA256_EMPTY}', 'must be 128 hex characters'),
        ('sha256:', 'must be 64 hex characters'),
    ],
)
def test_parse_checksum_rejects(value, fragment):
    with pytest.raises(ReleaseError) as info:
        _source.parse_checksum(value, name='release_checksum')
    assert fragment in str(info.value)
    assert str(info.value).startswith('release_checksum ')


def test_verify_file(tmp_path):
    path = tmp_path / 'app.tar.gz'
    path.write_bytes(b'payload')
    good = hashlib.sha256(b'payload').hexdigest()
    assert _source.verify_file(path=str(path), checksum=f'SHA256:{good.upper()}') == f'sha256:{good}'
    with pytest.raises(ReleaseError, match='checksum mismatch for') as info:
        _source.verify_file(path=str(path), checksum=f'sha256:{SHA256_EMPTY}')
    assert str(path) in str(info.value)
    assert f'expected sha256:{SHA256_EMPTY}, got sha256:{good}' in str(info.value)


# --- download ----------------------------------------------------------------------------------


class FakeResponse(io.BytesIO):
    pass


def opener_for(data: bytes, calls: list):
    def opener(url):
        calls.append(url)
        return FakeResponse(data)

    return opener


def test_download_streams_and_verifies(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks
    digest = hashlib.sha256(data).hexdigest()
    calls: list = []
    path, checksum = _source.download(
        url='http://127.0.0.1/app.tar.gz',
        directory=str(tmp_path),
        checksum=f'sha256:{digest}',
        opener=opener_for(data, calls),
    )
    assert calls == ['http://127.0.0.1/app.tar.gz']
    assert checksum == f'sha256:{digest}'
    assert os.path.dirname(path) == str(tmp_path)
    with open(path, 'rb') as handle:
        assert handle.read() == data
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o600)


def test_download_mismatch_leaves_no_file(tmp_path):
    with pytest.raises(ReleaseError) as info:
        _source.download(
            url='http://127.0.0.1/app.tar.gz',
            directory=str(tmp_path),
            checksum=f'sha256:{SHA256_EMPTY}',
            opener=opener_for(b'not empty', []),
        )
    message = str(info.value)
    assert message.startswith('checksum mismatch for url http://127.0.0.1/app.tar.gz')
    assert f'expected sha256:{SHA256_EMPTY}, got sha256:{hashlib.sha256(b"not empty").hexdigest()}' in message
    assert os.listdir(tmp_path) == []


def test_download_failure_mid_stream_leaves_no_file(tmp_path):
    class Broken:
        def __init__(self):
            self.calls = 0

        def read(self, _size):
            self.calls += 1
            if self.calls > 1:
                raise OSError('connection reset by peer')
            return b'partial'

    with pytest.raises(OSError, match='connection reset'):
        _source.download(
            url='http://127.0.0.1/x',
            directory=str(tmp_path),
            checksum=f'sha256:{SHA256_EMPTY}',
            opener=lambda url: Broken(),
        )
    assert os.listdir(tmp_path) == []


def test_download_opener_failure_leaves_no_file(tmp_path):
    def refused(url):
        raise OSError(f'connection refused: {url}')

    with pytest.raises(OSError, match='connection refused'):
        _source.download(
            url='http://127.0.0.1:9/x', directory=str(tmp_path), checksum=f'sha256:{SHA256_EMPTY}', opener=refused
        )
    assert os.listdir(tmp_path) == []


def test_download_bad_checksum_is_refused_before_fetching(tmp_path):
    calls: list = []
    with pytest.raises(ReleaseError):
        _source.download(
            url='http://x/', directory=str(tmp_path), checksum='sha256:nothex', opener=opener_for(b'', calls)
        )
    assert calls == []


# --- git ---------------------------------------------------------------------------------------

GIT_ENV = {
    'GIT_AUTHOR_NAME': 'test',
    'GIT_AUTHOR_EMAIL': 'test@example.invalid',
    'GIT_COMMITTER_NAME': 'test',
    'GIT_COMMITTER_EMAIL': 'test@example.invalid',
    'GIT_CONFIG_NOSYSTEM': '1',
    'GIT_CONFIG_GLOBAL': os.devnull,
}

pytestmark_git = pytest.mark.skipif(shutil.which('git') is None, reason='git is not installed')


def git(repo: str, *args: str) -> str:
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(
        ['git', '-C', repo, *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


class Runner:
    """The ``run`` callable the module passes: records argv, returns (rc, stdout bytes, stderr text)."""

    def __init__(self, extra_env: dict | None = None) -> None:
        self.calls: list[list[str]] = []
        self.envs: list[dict | None] = []
        self.extra_env = extra_env or {}

    def __call__(self, argv: list[str], env: dict | None = None):
        self.calls.append(argv)
        self.envs.append(env)
        env = {**os.environ, **GIT_ENV, **self.extra_env, **(env or {})}
        proc = subprocess.run(argv, capture_output=True, env=env, check=False)
        return proc.returncode, proc.stdout, proc.stderr.decode('utf-8', 'replace')


def commit(repo: str, files: dict[str, str], message: str) -> str:
    for name, content in files.items():
        path = os.path.join(repo, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as handle:
            handle.write(content)
    git(repo, 'add', '-A')
    git(repo, 'commit', '-q', '-m', message)
    return git(repo, 'rev-parse', 'HEAD')


@pytest.fixture
def repo(tmp_path) -> dict:
    path = str(tmp_path / 'app')
    os.mkdir(path)
    git(path, 'init', '-q', '-b', 'main')
    first = commit(path, {'version': 'one', 'src/app.py': 'print(1)'}, 'first')
    git(path, 'tag', 'v1.0')
    second = commit(path, {'version': 'two'}, 'second')
    git(path, 'checkout', '-q', '-b', 'feature')
    feature = commit(path, {'version': 'feature', 'feature.txt': 'new'}, 'feature')
    git(path, 'checkout', '-q', 'main')
    return {'path': path, 'first': first, 'second': second, 'feature': feature}


def tree(tar_bytes: bytes) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tf:
        return {m.name: tf.extractfile(m).read().decode() for m in tf.getmembers() if m.isfile()}


@pytestmark_git
@pytest.mark.parametrize(
    ('version', 'expected_commit', 'version_file'),
    [
        ('HEAD', 'second', 'two'),
        ('main', 'second', 'two'),
        ('feature', 'feature', 'feature'),
        ('v1.0', 'first', 'one'),
        ('first-sha', 'first', 'one'),
        ('first-short-sha', 'first', 'one'),
    ],
)
def test_git_export_versions(repo, tmp_path, version, expected_commit, version_file):
    if version == 'first-sha':
        version = repo['first']
    elif version == 'first-short-sha':
        version = repo['first'][:10]
    mirror = str(tmp_path / 'repo.git')
    sha, tar_bytes = _source.git_export(run=Runner(), repo=repo['path'], version=version, mirror=mirror)
    assert sha == repo[expected_commit]
    files = tree(tar_bytes)
    assert files['version'] == version_file
    assert files['src/app.py'] == 'print(1)'
    assert ('feature.txt' in files) is (expected_commit == 'feature')
    assert not any(name.startswith('.git') for name in files)


@pytestmark_git
def test_git_export_files_are_not_group_writable(repo, tmp_path):
    # git archive's default tar.umask of 0002 would ship every file group-writable
    mirror = str(tmp_path / 'r.git')
    _sha, tar_bytes = _source.git_export(run=Runner(), repo=repo['path'], version='HEAD', mirror=mirror)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tf:
        modes = {m.name: m.mode for m in tf.getmembers()}
    assert modes['version'] == 0o644
    assert modes['src'] == 0o755


@pytestmark_git
def test_git_missing_version(repo, tmp_path):
    with pytest.raises(ReleaseError) as info:
        _source.git_export(run=Runner(), repo=repo['path'], version='no-such-branch', mirror=str(tmp_path / 'repo.git'))
    assert str(info.value) == f"git_version 'no-such-branch' does not exist in git_repo {repo['path']}"


@pytestmark_git
def test_git_mirror_is_reused_and_fetched(repo, tmp_path):
    mirror = str(tmp_path / 'repo.git')
    runner = Runner()
    sha1, _tar = _source.git_export(run=runner, repo=repo['path'], version='main', mirror=mirror)
    assert any(call[1:3] == ['clone', '--mirror'] for call in runner.calls)
    inode = os.stat(mirror).st_ino
    newer = commit(repo['path'], {'version': 'three'}, 'third')
    git(repo['path'], 'tag', 'v3.0')
    second_runner = Runner()
    sha2, tar_bytes = _source.git_export(run=second_runner, repo=repo['path'], version='v3.0', mirror=mirror)
    assert sha1 == repo['second'] and sha2 == newer
    assert tree(tar_bytes)['version'] == 'three'
    assert os.stat(mirror).st_ino == inode
    assert not any('clone' in call for call in second_runner.calls)
    assert any('fetch' in call for call in second_runner.calls)


@pytestmark_git
def test_git_clone_failure_leaves_no_mirror(tmp_path):
    mirror = str(tmp_path / 'repo.git')
    with pytest.raises(ReleaseError, match='git clone of git_repo .* failed') as info:
        _source.git_export(run=Runner(), repo=str(tmp_path / 'no-such-repo'), version='HEAD', mirror=mirror)
    assert str(tmp_path / 'no-such-repo') in str(info.value)
    assert not os.path.lexists(mirror)


@pytest.mark.parametrize('version', ['-oops', '--upload-pack=touch /tmp/x', 'a..b', '', 'a b', 'x;y'])
def test_git_version_rejected_before_running_git(tmp_path, version):
    runner = Runner()
    with pytest.raises(ReleaseError, match='is not a valid branch, tag or commit'):
        _source.git_export(run=runner, repo='/nowhere', version=version, mirror=str(tmp_path / 'm'))
    assert runner.calls == []


def test_git_option_like_repo_rejected(tmp_path):
    runner = Runner()
    with pytest.raises(ReleaseError, match="git_repo '--upload-pack=x' is not a repository"):
        _source.git_export(run=runner, repo='--upload-pack=x', version='HEAD', mirror=str(tmp_path / 'm'))
    assert runner.calls == []


@pytest.mark.parametrize('version', ['HEAD', 'main', 'v1.2.3', 'release/2026-01', 'HEAD~1', 'main@{1}', 'abc123^'])
def test_git_version_accepted(version):
    assert _source.validate_git_version(version) == version


# --- git submodules, excludes and the deploy key -------------------------------------------------

# git refuses file:// submodules unless told (CVE-2022-39253); the test repositories are local paths.
ALLOW_FILE = {'GIT_CONFIG_COUNT': '1', 'GIT_CONFIG_KEY_0': 'protocol.file.allow', 'GIT_CONFIG_VALUE_0': 'always'}


@pytest.fixture
def super_repo(tmp_path) -> dict:
    """app -> lib (submodule at vendor/lib) -> deep (submodule of lib at inner)."""
    paths = {}
    for name in ('deep', 'lib', 'app'):
        paths[name] = str(tmp_path / name)
        os.mkdir(paths[name])
        git(paths[name], 'init', '-q', '-b', 'main')
    commit(paths['deep'], {'deep.txt': 'deep'}, 'deep')
    commit(paths['lib'], {'lib.txt': 'lib', 'tests/test_lib.txt': 'lib test'}, 'lib')
    git(paths['lib'], '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', paths['deep'], 'inner')
    git(paths['lib'], 'commit', '-q', '-m', 'inner')
    commit(paths['app'], {'app.txt': 'app', 'tests/test_app.txt': 'test', 'docs/a.md': 'doc'}, 'app')
    git(paths['app'], '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', paths['lib'], 'vendor/lib')
    git(paths['app'], 'commit', '-q', '-m', 'lib')
    return paths


@pytestmark_git
def test_git_export_with_submodules_includes_their_trees(super_repo, tmp_path):
    work = str(tmp_path / 'work')
    sha, tar_bytes = _source.git_export(
        run=Runner(ALLOW_FILE),
        repo=super_repo['app'],
        version='main',
        mirror=str(tmp_path / 'repo.git'),
        work=work,
        submodules=True,
    )
    assert sha == git(super_repo['app'], 'rev-parse', 'HEAD')
    files = tree(tar_bytes)
    assert files['app.txt'] == 'app'
    assert files['vendor/lib/lib.txt'] == 'lib'
    assert files['vendor/lib/inner/deep.txt'] == 'deep'
    assert not any(part.startswith('.git') and part != '.gitmodules' for name in files for part in name.split('/'))
    assert not os.path.lexists(work)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tf:
        names = [m.name.rstrip('/') for m in tf.getmembers()]
        modes = {m.name.rstrip('/'): m.mode for m in tf.getmembers()}
    assert len(names) == len(set(names))
    assert modes['vendor/lib/lib.txt'] == 0o644


@pytestmark_git
def test_git_export_without_submodules_leaves_them_empty(super_repo, tmp_path):
    _sha, tar_bytes = _source.git_export(
        run=Runner(ALLOW_FILE), repo=super_repo['app'], version='main', mirror=str(tmp_path / 'repo.git')
    )
    assert not any(name.startswith('vendor/lib/') for name in tree(tar_bytes))


@pytestmark_git
def test_git_submodule_failure_names_the_repo_and_removes_the_work_dir(super_repo, tmp_path):
    work = str(tmp_path / 'work')
    with pytest.raises(ReleaseError, match='git submodule update failed for git_repo') as info:
        # without protocol.file.allow git refuses the local submodule urls, as it would any refused url
        _source.git_export(
            run=Runner(),
            repo=super_repo['app'],
            version='main',
            mirror=str(tmp_path / 'repo.git'),
            work=work,
            submodules=True,
        )
    assert super_repo['app'] in str(info.value)
    assert not os.path.lexists(work)


@pytestmark_git
@pytest.mark.parametrize('submodules', [False, True])
def test_git_excludes_leave_paths_out(super_repo, tmp_path, submodules):
    _sha, tar_bytes = _source.git_export(
        run=Runner(ALLOW_FILE),
        repo=super_repo['app'],
        version='main',
        mirror=str(tmp_path / 'repo.git'),
        work=str(tmp_path / 'work'),
        submodules=submodules,
        excludes=('tests', 'docs/a.md', 'vendor/lib/tests'),
    )
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tf:
        names = {m.name.rstrip('/') for m in tf.getmembers()}
    assert 'app.txt' in names
    assert not {'tests', 'tests/test_app.txt', 'docs/a.md'} & names
    assert 'docs' in names  # only the named file went, not its directory
    assert ('vendor/lib/lib.txt' in names) is submodules
    assert not any(name.startswith('vendor/lib/tests') for name in names)


FAKE_SSH = """#!/bin/sh
for arg in "$@"; do printf '%s\\n' "$arg"; done > "$SSH_ARGV_LOG"
exit 1
"""


@pytestmark_git
def test_git_key_file_reaches_ssh_as_one_argument(tmp_path):
    # a path with a space, a quote and a shell expansion must reach ssh as one literal argument
    key = tmp_path / "deploy key's $(touch pwned)"
    key.write_text('not a real key')
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    (bindir / 'ssh').write_text(FAKE_SSH)
    (bindir / 'ssh').chmod(0o755)
    log = tmp_path / 'argv.log'
    env = {'PATH': f'{bindir}{os.pathsep}{os.environ["PATH"]}', 'SSH_ARGV_LOG': str(log)}
    runner = Runner(env)
    with pytest.raises(ReleaseError, match='git clone of git_repo ssh://git.example.invalid/app.git failed'):
        _source.git_export(
            run=runner,
            repo='ssh://git.example.invalid/app.git',
            version='main',
            mirror=str(tmp_path / 'repo.git'),
            env=_source.git_environment(str(key)),
        )
    argv = log.read_text().splitlines()
    assert argv[:4] == ['-i', str(key), '-o', 'IdentitiesOnly=yes']
    assert not (tmp_path / 'pwned').exists()
    assert all(env is not None and 'GIT_SSH_COMMAND' in env for env in runner.envs)


def test_git_environment_without_key_is_none():
    assert _source.git_environment(None) is None
    assert _source.git_environment('') is None


@pytest.mark.parametrize(
    ('name', 'fragment'),
    [
        ('relative/key', 'must be an absolute path'),
        ('{tmp}/missing', 'cannot be read'),
        ('{tmp}', 'is not a readable regular file'),
        ('{tmp}/a\nb', 'must be an absolute path'),
    ],
)
def test_git_key_file_refused(tmp_path, name, fragment):
    with pytest.raises(ReleaseError, match=fragment) as info:
        _source.git_environment(name.format(tmp=tmp_path))
    assert str(info.value).startswith('git_key_file ')


def test_merge_tars_drops_excluded_and_duplicate_directories():
    def tar_of(*names: str) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode='w') as tf:
            for name in names:
                info = tarfile.TarInfo(name)
                if name.endswith('/'):
                    info.type = tarfile.DIRTYPE
                    tf.addfile(info)
                else:
                    info.size = 1
                    tf.addfile(info, io.BytesIO(b'x'))
        return out.getvalue()

    merged = _source.merge_tars([tar_of('a/', 'a/b', 'testsuite'), tar_of('a/', 'a/c', 'tests/x')], excludes=('tests',))
    with tarfile.open(fileobj=io.BytesIO(merged)) as tf:
        assert [m.name for m in tf.getmembers()] == ['a', 'a/b', 'testsuite', 'a/c']
