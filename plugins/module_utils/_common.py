# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plumbing shared by the collection's modules: argument spec pieces and error reporting.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice.
"""

from __future__ import annotations

import contextlib

from ansible_collections.atomic.deploy.plugins.module_utils import _lock, _release

ROOT_SPEC = dict(root=dict(type='path', required=True))
LOCK_SPEC = dict(lock_token=dict(type='str', no_log=False), owner=dict(type='dict'))


def fail(module, exc: BaseException, **result) -> None:
    """The one failure report of every module: a lower-case message that names the path involved."""
    msg = str(exc)
    if isinstance(exc, _lock.LockHeld):
        # The holder's token stays private: it would let any reader of the job log release their lock.
        result['lock'] = _lock.public(exc.record)
    elif isinstance(exc, OSError):
        where = exc.filename or ''
        reason = (exc.strerror or str(exc)).lower()
        # No 'path' key: AnsibleModule would stat it and overwrite the result's 'state'.
        msg = f'{where}: {reason}' if where else reason
    module.fail_json(msg=msg, **result)


# lock_timeout and lock_steal: documented once in the doc fragment atomic.deploy.common.inline_lock.
TAKE_LOCK_SPEC = dict(
    lock_timeout=dict(type='int', default=3600),
    lock_steal=dict(type='bool', default=False),
)
INLINE_LOCK_SPEC = dict(LOCK_SPEC, **TAKE_LOCK_SPEC)


@contextlib.contextmanager
def held_lock(module, layout: _release.Layout, *, release_id: str | None = None):
    """Hold the deploy lock for the body of a standalone operation.

    With ``lock_token`` the caller's deploy already holds it: only verify. Otherwise take it for
    the duration of this module run and release it afterwards, so a rollback or prune never
    runs in the middle of somebody else's deploy.
    """
    params = module.params
    if params.get('lock_token'):
        if not module.check_mode:
            _lock.verify(deploy_dir=layout.deploy, token=params['lock_token'])
        yield params['lock_token']
        return
    token = _lock.new_token()
    if module.check_mode:
        _lock.acquire(deploy_dir=layout.deploy, token=token, steal=params['lock_steal'], check_mode=True)
        yield token
        return
    _release.ensure_deploy_dir(layout)
    outcome = _lock.acquire(
        deploy_dir=layout.deploy,
        token=token,
        owner=params.get('owner'),
        release_id=release_id,
        timeout=params['lock_timeout'],
        steal=params['lock_steal'],
    )
    if outcome['warning']:
        module.warn(outcome['warning'])
    try:
        yield token
    finally:
        _lock.release(deploy_dir=layout.deploy, token=token)
