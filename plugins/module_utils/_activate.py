# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The activation flows of the ``release`` module: switch (``active``), finalize (``complete``) and
fail (``failed``) a staged release of a deploy root.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: plain pytest tests it with ``tmp_path``.

Every flow is a keyword-only function that fills in the ``result`` dict it is given and returns it,
like the staging flow (``_stage.present``); on an exception ``result`` holds what was known so far.
"""

from __future__ import annotations

import typing as t

from ansible_collections.atomic.deploy.plugins.module_utils import _fs, _history, _lock, _prune, _release
from ansible_collections.atomic.deploy.plugins.module_utils._release import Layout, Release, ReleaseError
from ansible_collections.atomic.deploy.plugins.module_utils._stage_options import Warn


def usable_release(
    *,
    layout: Layout,
    releases: list[Release],
    release_id: str,
    verb: str,
    lock_token: str | None,
    check_mode: bool,
) -> Release | None:
    """The release to finalize or activate, with the lock checked.

    None in check mode when it does not exist: in --check of a whole deploy the staging task did not
    really create it, and the caller reports what would happen.
    """
    release = _release.find(releases, release_id)
    if release is None:
        if check_mode:
            return None
        raise ReleaseError(f'release {release_id} does not exist in {layout.releases}', path=layout.release(release_id))
    if release.state in (_release.FAILED, _release.UNMANAGED):
        raise ReleaseError(
            f'refusing to {verb} release {release_id} at {release.path}: it is {release.state}', path=release.path
        )
    if lock_token and not check_mode:
        _lock.verify(deploy_dir=layout.deploy, token=lock_token)
    return release


def active(
    *,
    layout: Layout,
    release_id: str,
    link_style: str = 'relative',
    switch_at: float | None = None,
    adopt: bool = False,
    prune: bool = False,
    keep: int = 5,
    protect: t.Sequence[str] = (),
    min_age: int = 0,
    lock_token: str | None = None,
    unlock: bool = False,
    owner: dict | None = None,
    fsync: bool = True,
    check_mode: bool = False,
    warn: Warn,
    result: dict,
) -> dict:
    """Finalize the release if needed, switch ``current`` to it, record the history, prune, unlock.

    Pruning here only warns about releases it must leave whole: the release is live by then, and a
    failure would make a deploy roll back a healthy release for the sake of housekeeping.
    """
    result.setdefault('removed', [])
    releases, _ignored = _release.list_releases(layout)
    current = _release.current_id(layout)
    result['current_before'] = current
    target = layout.link_text(release_id, style=link_style)
    result['diff'] = {'before': {'current': _fs.read_link(layout.current)}, 'after': {'current': target}}
    release = usable_release(
        layout=layout,
        releases=releases,
        release_id=release_id,
        verb='activate',
        lock_token=lock_token,
        check_mode=check_mode,
    )
    if release is None:
        result.update(changed=True, state=_release.UNFINISHED)
        return result
    was_complete = release.state == _release.COMPLETE
    switch = current != release_id or _fs.read_link(layout.current) != target
    result['changed'] = switch or not was_complete
    result['state'] = _release.COMPLETE
    if check_mode:
        if prune:
            pruned = _prune.prune(
                layout=layout,
                current=release_id,
                keep=keep,
                protect=protect,
                previous=current,
                min_age=min_age,
                check_mode=True,
            )
            result['removed'] = pruned['removed']
        return result
    if not was_complete:
        _release.finalize(release=release, fsync=fsync)
    if switch:
        outcome = _release.switch_current(
            layout=layout, release_id=release_id, style=link_style, switch_at=switch_at, fsync=fsync, adopt=adopt
        )
        result.update(switched_at=outcome['switched_at'], switch_late=outcome['late'], backup=outcome['backup'])
        if outcome['late'] > 0.5:
            warn(f'switched {outcome["late"]:.3f}s after the agreed instant switch_at; other hosts switched earlier')
    if prune:
        pruned = _prune.prune(
            layout=layout, current=release_id, keep=keep, protect=protect, previous=current, min_age=min_age
        )
        result['removed'] = pruned['removed']
        for line in _prune.blocked_messages(pruned):
            warn(f'could not prune {line} (left whole: this user cannot delete them)')
        result['changed'] = result['changed'] or bool(pruned['removed'] or pruned['leftovers'])
    if switch or not was_complete:
        _history.record(
            layout=layout,
            event='deploy' if not was_complete else 'activate',
            release_id=release_id,
            owner=owner,
            fsync=fsync,
            previous=current,
            switched_at=result.get('switched_at'),
            switch_late=result.get('switch_late'),
            removed=result['removed'] or None,
            source=release.meta.get('source') or None,
        )
    if unlock and lock_token:
        _lock.release(deploy_dir=layout.deploy, token=lock_token)
        result['unlocked'] = True
    return result


def complete(
    *,
    layout: Layout,
    release_id: str,
    lock_token: str | None = None,
    fsync: bool = True,
    check_mode: bool = False,
    result: dict,
) -> dict:
    """Finalize a staged release: write its metadata as complete."""
    releases, _ignored = _release.list_releases(layout)
    release = usable_release(
        layout=layout,
        releases=releases,
        release_id=release_id,
        verb='finalize',
        lock_token=lock_token,
        check_mode=check_mode,
    )
    if release is None:
        result.update(changed=True, state=_release.COMPLETE)
        return result
    result['state'] = _release.COMPLETE
    if release.state == _release.UNFINISHED:
        result['changed'] = True
        if not check_mode:
            _release.finalize(release=release, fsync=fsync)
    return result


def failed(
    *,
    layout: Layout,
    release_id: str,
    reason: str = 'failed',
    lock_token: str | None = None,
    unlock: bool = False,
    owner: dict | None = None,
    fsync: bool = True,
    check_mode: bool = False,
    warn: Warn,
    result: dict,
) -> dict:
    """Mark the release failed with ``reason`` and record it; optionally release the lock."""
    releases, _ignored = _release.list_releases(layout)
    release = _release.find(releases, release_id)
    result['current_before'] = _release.current_id(layout)
    if release is None:
        result['state'] = 'absent'
    elif release.state == _release.UNMANAGED:
        raise ReleaseError(
            f'refusing to mark {release.path} failed: it is not a release made by atomic.deploy', path=release.path
        )
    elif release.state == _release.FAILED:
        result['state'] = _release.FAILED
    else:
        result.update(changed=True, state=_release.FAILED)
        if release.current:
            warn(f'release {release_id} is live; marking it failed does not roll it back (use release_rollback)')
        if not check_mode:
            _release.mark_failed(release=release, reason=reason, fsync=fsync)
            _history.record(
                layout=layout,
                event='failed',
                release_id=release_id,
                owner=owner,
                fsync=fsync,
                reason=reason,
                previous=result['current_before'],
            )
    if unlock and lock_token and not check_mode:
        outcome = _lock.release(deploy_dir=layout.deploy, token=lock_token)
        result['unlocked'] = outcome['changed']
    return result
