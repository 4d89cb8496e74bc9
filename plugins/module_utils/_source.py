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
import os
import re

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


def git_export(*, run, repo: str, version: str, mirror: str) -> tuple[str, bytes]:
    """Update a bare mirror of ``repo`` in ``mirror`` and return (sha, uncompressed tar of the tree).

    ``run(argv)`` returns (rc, stdout bytes, stderr text). The release gets the tree from
    ``git archive``, so it carries no .git directory and the mirror is reused by later deploys.
    """
    validate_git_version(version)
    if repo.startswith('-'):
        raise ReleaseError(f'git_repo {repo!r} is not a repository url or path', name='git_repo')

    def git(*args: str) -> bytes:
        rc, out, err = run(['git', f'--git-dir={mirror}', *args])
        if rc != 0:
            raise ReleaseError(
                f'git {args[0]} failed for git_repo {repo}: {err.strip() or "no output"}', name='git_repo'
            )
        return out

    if not os.path.isdir(mirror):
        rc, _out, err = run(['git', 'clone', '--mirror', '--quiet', '--', repo, mirror])
        if rc != 0:
            if os.path.lexists(mirror):
                _fs.remove_tree(mirror)
            raise ReleaseError(f'git clone of git_repo {repo} failed: {err.strip() or "no output"}', name='git_repo')
    else:
        git('remote', 'set-url', 'origin', repo)
        git('fetch', '--prune', '--quiet', 'origin', '+refs/*:refs/*')
    rc, out, err = run(['git', f'--git-dir={mirror}', 'rev-parse', '--verify', '--quiet', f'{version}^{{commit}}'])
    if rc != 0:
        raise ReleaseError(f'git_version {version!r} does not exist in git_repo {repo}', name='git_version')
    sha = out.decode('ascii').strip()
    # git archive's default tar.umask (0002) would make every file group-writable; match an archive's 0644.
    rc, tar, err = run(['git', '-c', 'tar.umask=0022', f'--git-dir={mirror}', 'archive', '--format=tar', sha])
    if rc != 0:
        raise ReleaseError(f'git archive failed for git_repo {repo}: {err.strip() or "no output"}', name='git_repo')
    return sha, tar
