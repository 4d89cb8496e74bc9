# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fetching release code: checksummed downloads and git exports.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: the caller passes the I/O it needs
(an ``opener`` for URLs, a ``run`` callable for git) so plain pytest can test the logic.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shlex
import stat
import tarfile

from ansible_collections.atomic.deploy.plugins.module_utils import _fs
from ansible_collections.atomic.deploy.plugins.module_utils._release import ReleaseError

_CHUNK = 1024 * 1024
_HEX = re.compile(r'^[0-9a-fA-F]+$')
# git refuses option-like refs itself, but a value starting with "-" must never reach argv as an option.
_GIT_VERSION = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9._/@{}^~-]*$')


def parse_checksum(value, *, name: str = 'checksum') -> tuple[str, str]:
    """'sha256:<hex>' -> ('sha256', '<hex>'), refusing unknown algorithms and bad digests."""
    if not isinstance(value, str) or ':' not in value:
        raise ReleaseError(f'{name} must look like "sha256:<hex digest>", got {value!r}', name=name)
    algorithm, digest = value.split(':', 1)
    algorithm = algorithm.strip().lower()
    digest = digest.strip().lower()
    if algorithm not in hashlib.algorithms_guaranteed or algorithm.startswith('shake'):
        raise ReleaseError(f'{name} uses unsupported algorithm {algorithm!r}; use sha256 or sha512', name=name)
    expected_len = hashlib.new(algorithm).digest_size * 2
    if not _HEX.match(digest) or len(digest) != expected_len:
        raise ReleaseError(f'{name} digest for {algorithm} must be {expected_len} hex characters', name=name)
    return algorithm, digest


def file_digest(path: str, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(*, path: str, checksum: str, name: str = 'checksum') -> str:
    """Raise unless the file matches; return the checksum in canonical form."""
    algorithm, expected = parse_checksum(checksum, name=name)
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise ReleaseError(
            f'{name} mismatch for {path}: expected {algorithm}:{expected}, got {algorithm}:{actual}', path=path
        )
    return f'{algorithm}:{actual}'


def download(*, url: str, directory: str, checksum: str, opener, name: str = 'url') -> tuple[str, str]:
    """Stream ``url`` to a temp file in ``directory`` while hashing; verify before returning.

    ``opener(url)`` returns a readable response. On any failure the partial file is removed.
    Returns (path, canonical checksum).
    """
    algorithm, expected = parse_checksum(checksum)
    path = _fs.temp_path(directory=directory, prefix='download-')
    digest = hashlib.new(algorithm)
    try:
        response = opener(url)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'wb') as handle:
            for chunk in iter(lambda: response.read(_CHUNK), b''):
                digest.update(chunk)
                handle.write(chunk)
        actual = digest.hexdigest()
        if actual != expected:
            raise ReleaseError(
                f'checksum mismatch for {name} {url}: expected {algorithm}:{expected}, got {algorithm}:{actual}',
                url=url,
            )
    except BaseException:
        _fs.discard(path)
        raise
    return path, f'{algorithm}:{actual}'


def validate_git_version(value: str) -> str:
    if not isinstance(value, str) or not _GIT_VERSION.match(value) or '..' in value:
        raise ReleaseError(f'git_version {value!r} is not a valid branch, tag or commit', name='git_version')
    return value


def validate_key_file(path: str) -> str:
    """The deploy key for git over ssh: an absolute path to a regular file this user can read."""
    name = 'git_key_file'
    if not isinstance(path, str) or not os.path.isabs(path) or any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise ReleaseError(f'{name} {path!r} must be an absolute path on the host', name=name)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ReleaseError(f'{name} {path} cannot be read: {exc.strerror}', path=path, name=name) from None
    if not stat.S_ISREG(info.st_mode) or not os.access(path, os.R_OK):
        raise ReleaseError(f'{name} {path} is not a readable regular file', path=path, name=name)
    return path


def git_environment(key_file: str | None) -> dict | None:
    """The environment that makes every git call (submodules too) use only the deploy key, or None."""
    if not key_file:
        return None
    validate_key_file(key_file)
    # git hands GIT_SSH_COMMAND to sh, so it is built from an argv with every word quoted: a key
    # path with spaces or quotes stays one argument and can never become shell syntax.
    return {'GIT_SSH_COMMAND': shlex.join(['ssh', '-i', key_file, '-o', 'IdentitiesOnly=yes'])}


def excluded(name: str, excludes: tuple[str, ...]) -> bool:
    name = name.strip('/')
    return any(name == path or name.startswith(path + '/') for path in excludes)


def merge_tars(parts: list[bytes], *, excludes: tuple[str, ...] = ()) -> bytes:
    """One tar of every member of ``parts`` (in order) except the excluded paths, names unchanged."""
    out = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=out, mode='w', format=tarfile.PAX_FORMAT) as merged:
        for part in parts:
            with tarfile.open(fileobj=io.BytesIO(part), mode='r:') as tar:
                for member in tar:
                    name = member.name.strip('/')
                    # a submodule is an empty directory in its parent's archive, then its own tree
                    if excluded(name, excludes) or (member.isdir() and name in seen):
                        continue
                    seen.add(name)
                    merged.addfile(member, tar.extractfile(member) if member.isfile() else None)
    return out.getvalue()


def git_export(
    *,
    run,
    repo: str,
    version: str,
    mirror: str,
    work: str | None = None,
    submodules: bool = False,
    excludes: tuple[str, ...] = (),
    env: dict | None = None,
) -> tuple[str, bytes]:
    """Update a bare mirror of ``repo`` in ``mirror`` and return (sha, uncompressed tar of the tree).

    ``run(argv, env=...)`` returns (rc, stdout bytes, stderr text); ``env`` (see
    :func:`git_environment`) is added to the environment of every git call. The release gets the
    tree from ``git archive``, so it carries no .git directory and the mirror is reused by later
    deploys. With ``submodules``, the commit is checked out in ``work`` (removed afterwards), its
    submodules are initialised recursively, and each one's tree is archived at its path.
    ``excludes`` (normalised relative paths) are left out of the tar.
    """
    validate_git_version(version)
    if repo.startswith('-'):
        raise ReleaseError(f'git_repo {repo!r} is not a repository url or path', name='git_repo')

    def call(argv: list[str], what: str) -> bytes:
        rc, out, err = run(argv, env=env)
        if rc != 0:
            raise ReleaseError(f'{what} failed for git_repo {repo}: {err.strip() or "no output"}', name='git_repo')
        return out

    def git(*args: str) -> bytes:
        return call(['git', f'--git-dir={mirror}', *args], f'git {args[0]}')

    if not os.path.isdir(mirror):
        rc, _out, err = run(['git', 'clone', '--mirror', '--quiet', '--', repo, mirror], env=env)
        if rc != 0:
            if os.path.lexists(mirror):
                _fs.remove_tree(mirror)
            raise ReleaseError(f'git clone of git_repo {repo} failed: {err.strip() or "no output"}', name='git_repo')
    else:
        git('remote', 'set-url', 'origin', repo)
        git('fetch', '--prune', '--quiet', 'origin', '+refs/*:refs/*')
    rc, out, err = run(
        ['git', f'--git-dir={mirror}', 'rev-parse', '--verify', '--quiet', f'{version}^{{commit}}'], env=env
    )
    if rc != 0:
        raise ReleaseError(f'git_version {version!r} does not exist in git_repo {repo}', name='git_version')
    sha = out.decode('ascii').strip()
    if not submodules:
        tar = archive(call, [f'--git-dir={mirror}'], sha)
        return sha, merge_tars([tar], excludes=excludes) if excludes else tar
    if not work:
        raise ReleaseError('git submodules need a work directory', name='git_submodules')
    try:
        call(['git', 'clone', '--quiet', '--shared', '--no-checkout', '--', mirror, work], 'git clone')
        # relative submodule urls (../lib.git) resolve against the real repository, not the mirror
        call(['git', '-C', work, 'remote', 'set-url', 'origin', repo], 'git remote')
        call(['git', '-C', work, 'checkout', '--quiet', '--detach', sha], 'git checkout')
        call(['git', '-C', work, 'submodule', 'update', '--init', '--recursive', '--quiet'], 'git submodule update')
        parts = [archive(call, [f'--git-dir={mirror}'], sha)]
        parts.extend(submodule_archives(call, work=work, prefix=''))
        return sha, merge_tars(parts, excludes=excludes)
    finally:
        if os.path.lexists(work):
            _fs.remove_tree(work)


def archive(call, where: list[str], sha: str, prefix: str = '') -> bytes:
    """``git archive`` of commit ``sha`` of the repository ``where`` (git's own options) names."""
    # git archive's default tar.umask (0002) would make every file group-writable; match an archive's 0644.
    argv = ['git', '-c', 'tar.umask=0022', *where, 'archive', '--format=tar']
    if prefix:
        argv.append(f'--prefix={prefix}')
    return call([*argv, sha], 'git archive')


def submodule_archives(call, *, work: str, prefix: str) -> list[bytes]:
    """The tree of every submodule checked out under ``work``, recursively, each at its path."""
    parts = []
    listing = call(['git', '-C', work, 'ls-files', '--stage', '-z'], 'git ls-files')
    for entry in listing.split(b'\0'):
        if not entry.startswith(b'160000 '):
            continue
        meta, _tab, path = entry.partition(b'\t')
        sha = meta.split(b' ')[1].decode('ascii')
        rel = path.decode('utf-8', 'surrogateescape')
        sub = os.path.join(work, rel)
        parts.append(archive(call, ['-C', sub], sha, prefix=f'{prefix}{rel}/'))
        parts.extend(submodule_archives(call, work=sub, prefix=f'{prefix}{rel}/'))
    return parts
