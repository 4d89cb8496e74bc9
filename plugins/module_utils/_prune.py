# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pruning old releases: the keep/protect/min_age rules (:func:`prune_plan`) and carrying them out
(:func:`execute_prune`, :func:`prune`), shared by ``release prune=true`` and ``release_prune``.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: plain pytest tests it.
"""

from __future__ import annotations

import datetime
import os
import time

from ansible_collections.atomic.deploy.plugins.module_utils import _fs, _history, _release
from ansible_collections.atomic.deploy.plugins.module_utils._release import (
    COMPLETE,
    UNMANAGED,
    Layout,
    Release,
    ReleaseError,
)


def validate_prune_args(*, keep, protect, min_age=0) -> None:
    """The keep/protect/min_age rule shared by ``release prune=true`` and ``release_prune``."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ReleaseError(f'keep must be at least 1, got {keep}', name='keep')
    for ident in protect:
        _release.validate_id(ident, name='protect')
    if isinstance(min_age, bool) or not isinstance(min_age, int) or min_age < 0:
        raise ReleaseError(f'min_age must be a number of seconds >= 0, got {min_age}', name='min_age')


def deactivated_at(release: Release) -> float | None:
    """Epoch time ``current`` last left this release (metadata ``deactivated_at``), or None."""
    value = release.meta.get('deactivated_at')
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.datetime.strptime(value, '%Y-%m-%dT%H:%M:%S.%fZ')
    except ValueError:
        return None
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def last_deactivated(releases: list[Release], current: str | None) -> str | None:
    """The release ``current`` pointed at before the latest switch: the one it left last."""
    best, best_at = None, None
    for release in releases:
        at = deactivated_at(release)
        if release.id != current and at is not None and (best_at is None or at >= best_at):
            best, best_at = release.id, at
    return best


def prune_plan(
    releases: list[Release],
    *,
    current: str | None,
    keep: int,
    protect: list[str] | tuple = (),
    previous: str | None = None,
    min_age: int = 0,
    now: float | None = None,
) -> tuple[list[Release], list[Release]]:
    """Split releases into (remove, keep) by the documented rules.

    - the newest ``keep`` complete releases stay; so do current and every id in ``protect``;
    - so does ``previous``, the release that was current before the latest switch (default: the
      one ``current`` left last, by ``deactivated_at``): a server that resolved ``current`` before
      the switch may still serve it, until the next deploy;
    - with ``min_age`` seconds, so does every release that was live less than that long ago;
    - unfinished and failed releases never count toward ``keep``; they go once they are older
      than the current release (callers hold the deploy lock, so none of them is being built);
    - unmanaged directories are never removed.
    """
    validate_prune_args(keep=keep, protect=protect, min_age=min_age)
    protected = set(protect)
    if current is not None:
        protected.add(current)
    previous = previous or last_deactivated(releases, current)
    if previous is not None:
        protected.add(previous)
    if min_age:
        horizon = (time.time() if now is None else now) - min_age
        protected.update(r.id for r in releases if (deactivated_at(r) or float('-inf')) > horizon)
    complete = [r for r in releases if r.state == COMPLETE]
    newest = {r.id for r in complete[-keep:]}
    current_index = None
    for index, release in enumerate(releases):
        if release.id == current:
            current_index = index
    remove: list[Release] = []
    kept: list[Release] = []
    for index, release in enumerate(releases):
        if release.id in protected or release.state == UNMANAGED:
            kept.append(release)
        elif release.state == COMPLETE:
            (kept if release.id in newest else remove).append(release)
        elif current_index is not None and index < current_index:
            remove.append(release)
        else:
            kept.append(release)
    return remove, kept


def execute_prune(*, layout: Layout, remove: list[Release], check_mode: bool = False) -> dict:
    """Delete the planned releases and leftover temp/trash dirs.

    A release holding entries this user cannot delete (files of the web user in a dir it does
    not own, say) is left whole and reported, rather than half-deleted.
    Returns {'removed': ids, 'leftovers': paths, 'blocked': {id: [paths]}}.
    """
    result: dict = {'removed': [], 'leftovers': [], 'blocked': {}}
    for release in remove:
        problems = _fs.undeletable(release.path)
        if problems:
            result['blocked'][release.id] = problems
            continue
        result['removed'].append(release.id)
        if not check_mode:
            failed = _release.discard_release(layout=layout, release=release)
            if failed:
                result['blocked'][release.id] = failed
    for path in _release.leftovers(layout):
        problems = _fs.undeletable(path)
        if problems:
            result['blocked'][os.path.basename(path)] = problems
            continue
        result['leftovers'].append(path)
        if not check_mode:
            _fs.remove_tree(path)
    return result


def prune(
    *,
    layout: Layout,
    current: str | None,
    keep: int,
    protect: list[str] | tuple = (),
    check_mode: bool = False,
    previous: str | None = None,
    min_age: int = 0,
    now: float | None = None,
) -> dict:
    """Plan and carry out a prune of ``layout`` as if ``current`` were live (callers hold the lock).

    The release ``next`` points at is never removed (a pre-switch check may be serving it).
    Returns {'removed', 'kept', 'leftovers', 'blocked', 'before'}: ids removed (in check mode, that
    would be), ids kept in deploy order, temp/trash paths removed, {id: [paths]} left whole because
    this user cannot delete them, and every release id before the prune.
    """
    releases, _ignored = _release.list_releases(layout)
    protect = list(protect)
    staged = _release.next_id(layout)
    if staged is not None:
        protect.append(staged)
    if previous is None and not any(deactivated_at(r) is not None for r in releases):
        previous = previous_from_history(layout, current)
    remove, kept = prune_plan(
        releases, current=current, keep=keep, protect=protect, previous=previous, min_age=min_age, now=now
    )
    outcome = execute_prune(layout=layout, remove=remove, check_mode=check_mode)
    outcome['kept'] = [r.id for r in kept]
    outcome['before'] = [r.id for r in releases]
    return outcome


def previous_from_history(layout: Layout, current: str | None) -> str | None:
    """The release the latest switch left, from the history: for roots whose releases have no deactivated_at yet
    (switched by a version that did not record it)."""

    for entry in reversed(_history.read(path=layout.history, last=50)):
        if entry.get('event') in ('deploy', 'activate', 'rollback') and entry.get('id') == current:
            left = entry.get('previous')
            return left if isinstance(left, str) and left != current else None
    return None


def blocked_messages(pruned: dict) -> list[str]:
    """One line per release that pruning left whole, listing what this user cannot delete."""
    return [
        f'{name}: {", ".join(paths[:10])}' + (f' and {len(paths) - 10} more' if len(paths) > 10 else '')
        for name, paths in pruned['blocked'].items()
    ]
