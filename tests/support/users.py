# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Acting as another user: a forked child with that user's ids, or a command run through setpriv."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
from collections.abc import Callable

# The web server's user, and an identity that is www-data with another primary group: a file it
# creates gets the group www-data only through the setgid bit of the directory.
WEB_USER = 'www-data'
WEB_WRITER = ['setpriv', '--reuid=www-data', '--regid=nogroup', '--groups=www-data', '--']


class ChildError(AssertionError):
    """The function raised in the child; the message carries its repr."""


class UserMissing(AssertionError):
    """No unprivileged user to run the web server's workers as."""


def web_user() -> str:
    """The unprivileged user web server workers run as: the web user (www-data), else nobody; never
    the deploy user (root here)."""
    for name in (WEB_USER, 'nobody'):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise UserMissing(f'neither {WEB_USER} nor nobody exists to run the web workers as')


def run_as(user: str, func: Callable[[], object]) -> object:
    """Run ``func`` in a forked child whose real, effective and saved ids (and only group) are
    ``user``'s; return its JSON-able result, or raise ChildError with what it raised.

    Import before calling what ``func`` would import lazily: after dropping privileges the child may
    not be able to read files below root's 0700 home (the venv, ansible-test's copy).
    """
    entry = pwd.getpwnam(user)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
            os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)
            payload = {'ok': func()}
        except BaseException as exc:  # reported to the parent
            payload = {'error': f'{type(exc).__name__}: {exc}'}
            code = 1
        try:
            os.write(write_fd, json.dumps(payload).encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    while True:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    payload = json.loads(b''.join(chunks) or b'{"error": "the child wrote nothing"}')
    if 'error' in payload:
        raise ChildError(f'as {user}: {payload["error"]}')
    return payload['ok']


def as_web_user(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run argv as www-data (primary group nogroup, supplementary group www-data), never via a shell."""
    return subprocess.run([*WEB_WRITER, *argv], input=stdin, capture_output=True, text=True, check=False, timeout=30)
