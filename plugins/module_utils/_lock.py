# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The deploy lock: ROOT/.deploy/lock, a JSON record that outlives the process that wrote it.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: plain pytest tests it.

A deploy spans many module runs, so the lock cannot be a flock held by one process. It is a
file with an owner, a token and an expiry. Every change to it (acquire, take over, release)
happens under flock(2) on ``lock.guard``: the kernel drops that flock when a process dies, so a
cancelled job can never leave the guard held, and two takers of an expired lock cannot both win.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import time

from ansible_collections.atomic.deploy.plugins.module_utils import _fs, _release

GUARD_NAME = 'lock.guard'


class LockHeld(Exception):
    """Another deploy holds the lock. ``record`` is its lock record."""

    def __init__(self, msg: str, *, record: dict, path: str) -> None:
        super().__init__(msg)
        self.record = record
        self.path = path


def new_token() -> str:
    return secrets.token_hex(16)


@contextlib.contextmanager
def guard(deploy_dir: str):
    path = os.path.join(deploy_dir, GUARD_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0), 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            # NFS mounted without locking (nolock, or no lock daemon) answers "not supported" or
            # ENOLCK: without the guard two deploys could both take the lock, so refuse.
            if exc.errno in {errno.ENOLCK} | _fs.unsupported_errnos():
                reason = (exc.strerror or os.strerror(exc.errno)).lower()
                raise _release.ReleaseError(
                    f'cannot lock {path}: the file system refuses flock(2) ({reason}); '
                    'a deploy root on NFS without locking is not supported: mount it with locking '
                    '(NFSv4, or NFSv3 with a lock daemon) or use a local file system',
                    path=path,
                ) from exc
            raise
        yield
    finally:
        os.close(fd)


def _epoch_to_iso(value: float) -> str:
    return _release.iso(_release.datetime.datetime.fromtimestamp(value, _release.datetime.timezone.utc))


def read(path: str) -> dict | None:
    """The lock record, None when there is no lock.

    An unreadable record (a hand edit, a foreign tool) is reported as such, and it expires
    ``timeout`` after its mtime is unknown: it only goes with ``steal``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        # FreeBSD answers O_NOFOLLOW on a symlink with EMLINK, Linux and macOS with ELOOP.
        if exc.errno in _fs.nofollow_errnos():
            return {'corrupt': True, 'reason': 'the lock is a symlink', 'expires_at': None}
        raise
    with os.fdopen(fd, 'rb') as handle:
        raw = handle.read()
    try:
        record = json.loads(raw.decode('utf-8'))
        if not isinstance(record, dict) or not isinstance(record.get('token'), str):
            raise ValueError('not a lock record')
    except (ValueError, UnicodeDecodeError):
        return {'corrupt': True, 'reason': 'the lock file is not a valid lock record', 'expires_at': None}
    return record


def public(record: dict | None) -> dict | None:
    """The lock record without its token, for results and messages: the token is the holder's."""
    if not record:
        return None
    return {key: value for key, value in record.items() if key != 'token'}


def shown(record: dict | None) -> dict | None:
    """``public`` plus ``expired`` and ``holder`` (the ``describe`` text), for people reading a result."""
    if not record:
        return None
    return dict(public(record), expired=expired(record), holder=describe(record))


def expired(record: dict, *, now: float | None = None) -> bool:
    expires_at = record.get('expires_at')
    if not isinstance(expires_at, (int, float)):
        return False
    return (time.time() if now is None else now) >= expires_at


def describe(record: dict) -> str:
    """'USER@CONTROLLER (playbook P, release R) since T, expires E' for error messages."""
    if record.get('corrupt'):
        return f'an unknown owner ({record.get("reason")})'
    owner = record.get('owner') or {}
    who = f'{owner.get("user") or "unknown user"}@{owner.get("controller") or "unknown controller"}'
    details = []
    if owner.get('playbook'):
        details.append(f'playbook {owner["playbook"]}')
    if owner.get('awx_job_id'):
        details.append(f'awx job {owner["awx_job_id"]}')
    if owner.get('ci_job_url'):
        details.append(f'ci job {owner["ci_job_url"]}')
    if record.get('release_id'):
        details.append(f'release {record["release_id"]}')
    text = who + (f' ({", ".join(details)})' if details else '')
    return f'{text} since {record.get("started")}, expires {record.get("expires")}'


def _record(*, token: str, owner: dict | None, release_id: str | None, timeout: int, now: float) -> dict:
    owner = dict(owner or {})
    owner.setdefault('pid', os.getpid())
    return {
        'token': token,
        'owner': owner,
        'release_id': release_id,
        'started': _epoch_to_iso(now),
        'started_at': now,
        'expires': _epoch_to_iso(now + timeout),
        'expires_at': now + timeout,
        'timeout': timeout,
    }


def acquire(
    *,
    deploy_dir: str,
    token: str,
    owner: dict | None = None,
    release_id: str | None = None,
    timeout: int = 3600,
    steal: bool = False,
    wait: float = 0,
    check_mode: bool = False,
    poll: float = 0.5,
) -> dict:
    """Take the lock. Returns {'record', 'changed', 'taken_over', 'warning'}; raises LockHeld.

    Holding it already with ``token`` changes nothing. An expired lock, or any lock with
    ``steal``, is taken over and reported.
    """
    if timeout < 1:
        raise ValueError(f'lock timeout must be at least 1 second, got {timeout}')
    path = os.path.join(deploy_dir, 'lock')
    deadline = time.monotonic() + max(wait, 0)
    while True:
        if check_mode:
            held = read(path)
            result = _decide(held=held, token=token, steal=steal, path=path)
            if result is None:
                return {'record': held, 'changed': False, 'taken_over': None, 'warning': None}
        else:
            with guard(deploy_dir):
                held = read(path)
                result = _decide(held=held, token=token, steal=steal, path=path)
                if result is None:
                    return {'record': held, 'changed': False, 'taken_over': None, 'warning': None}
                if not isinstance(result, LockHeld):
                    now = time.time()
                    record = _record(token=token, owner=owner, release_id=release_id, timeout=timeout, now=now)
                    data = json.dumps(record, sort_keys=True).encode('utf-8') + b'\n'
                    _fs.atomic_write(path=path, data=data, mode=0o640)
                    return {'record': record, 'changed': True, 'taken_over': held, 'warning': result}
        if check_mode and not isinstance(result, LockHeld):
            return {'record': None, 'changed': True, 'taken_over': held, 'warning': result}
        if time.monotonic() >= deadline:
            raise result
        time.sleep(poll)


def _decide(*, held: dict | None, token: str, steal: bool, path: str):
    """None: already ours. str|'' : take it (the str is a warning, '' none). LockHeld: refuse."""
    if held is None:
        return ''
    if not held.get('corrupt') and held.get('token') == token:
        return None
    if expired(held):
        return f'took over the expired deploy lock {path} held by {describe(held)}'
    if steal:
        return f'stole the deploy lock {path} held by {describe(held)}'
    return LockHeld(
        f'deploy lock {path} is held by {describe(held)}; wait for that deploy to finish, '
        f'or take the lock over with steal=true (role variable release_lock_steal=true)',
        record=held,
        path=path,
    )


def release(*, deploy_dir: str, token: str | None, check_mode: bool = False) -> dict:
    """Drop the lock. Returns {'changed', 'record', 'warning'}.

    With a token only our own lock goes: one that was taken over is left to its new owner.
    Without a token any lock goes (an administrator's unlock). Releasing no lock changes nothing.
    """
    path = os.path.join(deploy_dir, 'lock')
    if not os.path.isdir(deploy_dir):
        return {'changed': False, 'record': None, 'warning': None}
    with contextlib.ExitStack() as stack:
        if not check_mode:
            stack.enter_context(guard(deploy_dir))
        held = read(path)
        if held is None:
            return {'changed': False, 'record': None, 'warning': None}
        if token is not None and held.get('token') != token:
            return {
                'changed': False,
                'record': held,
                'warning': f'deploy lock {path} is now held by {describe(held)}; left in place',
            }
        if not check_mode:
            os.unlink(path)
            _fs.fsync_dir(deploy_dir)
        return {'changed': True, 'record': held, 'warning': None}


def verify(*, deploy_dir: str, token: str) -> dict:
    """The lock record, if the lock is still held with ``token``; else raise LockHeld."""
    path = os.path.join(deploy_dir, 'lock')
    held = read(path)
    if held is None:
        raise LockHeld(f'deploy lock {path} is no longer held by this deploy (no lock is held)', record={}, path=path)
    if held.get('token') != token:
        raise LockHeld(
            f'deploy lock {path} is no longer held by this deploy; it is now held by {describe(held)}',
            record=held,
            path=path,
        )
    return held
