#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_rollback
short_description: Switch current back to the previous complete release, or to a named one
version_added: 0.1.0
description:
  - One module run takes the deploy lock (unless O(lock_token) says the caller holds it), picks
    the target, switches C(current) with one C(rename(2)), marks the release rolled back from as
    failed (kept for inspection), records the rollback in the history, and releases the lock.
  - Without O(to), the target is the newest complete release older than the current one in deploy
    order (the start time each release recorded), skipping failed and unfinished releases.
  - An unfinished, failed or missing target is refused with a clear error and nothing changes.
  - Rolling back to the release that is already live changes nothing.
author:
  - atomic.deploy maintainers (@atomic-deploy)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - atomic.deploy.common
  - atomic.deploy.common.lock
  - atomic.deploy.common.inline_lock
options:
  to:
    description: The release id to roll back to. Default is the previous complete release.
    type: str
  mark_failed:
    description: Mark the release rolled back from as failed, so no later rollback returns to it.
    type: bool
    default: true
  reason:
    description: Recorded in the history and in the failed release's metadata.
    type: str
    default: rolled back
  switch_at:
    description: Epoch time at which to rename, for a fleet that rolls back together (see M(atomic.deploy.release)).
    type: float
  link_style:
    description: V(relative) or V(absolute) text for the C(current) link.
    type: str
    choices: [relative, absolute]
    default: relative
  fsync:
    description: Fsync the switch, metadata and history.
    type: bool
    default: true
attributes:
  action:
    support: full
    details: the action plugin fills in O(owner) from the controller.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
seealso:
  - module: atomic.deploy.releases_info
  - module: atomic.deploy.release
"""

EXAMPLES = r"""
- name: Roll back to the previous good release
  atomic.deploy.release_rollback:
    root: /srv/www/example

- name: Roll back to a named release
  atomic.deploy.release_rollback:
    root: /srv/www/example
    to: "20260110T083022Z"
"""

RETURN = r"""
rolled_back_from:
  description: The release id that was live before (rolled back from).
  returned: always
  type: str
current:
  description: The release id live after the task.
  returned: always
  type: str
switched_at:
  description: Epoch time of the rename.
  returned: when switched (changed, not in check mode)
  type: float
lock:
  description: The record (without its token) of the deploy lock another deploy holds.
  returned: on failure, when the deploy lock is held by another deploy or no longer by this one
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.atomic.deploy.plugins.module_utils import _common, _fs, _history, _lock, _release


def rollback(*, module: AnsibleModule, layout: _release.Layout, result: dict) -> dict:
    """Switch ``current`` back and record it; fills in and returns ``result``."""
    p = module.params
    if p['to'] is not None:
        _release.validate_id(p['to'], name='to')
    if not _fs.lexists(layout.releases):
        raise _release.ReleaseError(f'there are no releases to roll back to in {layout.releases}', path=layout.releases)
    with _common.held_lock(module, layout, release_id=p['to']):
        untrusted: list = []
        releases, _ignored = _release.list_releases(layout, untrusted)
        for warning in _release.untrusted_warnings(untrusted):
            module.warn(warning)
        current = _release.current_id(layout)
        result.update(rolled_back_from=current, current=current)
        if p['to'] is not None:
            target = _release.find(releases, p['to'])
            refused = [u for u in untrusted if u['path'] in (layout.release(p['to']), layout.releases)]
            if target is None and refused:
                raise _release.ReleaseError(
                    f'refusing to roll back to {p["to"]}: {refused[0]["path"]} is not trusted ({refused[0]["reason"]})',
                    path=refused[0]['path'],
                )
            if target is None:
                raise _release.ReleaseError(
                    f'rollback target {p["to"]} does not exist in {layout.releases}', path=layout.release(p['to'])
                )
            if target.state != _release.COMPLETE:
                raise _release.ReleaseError(
                    f'refusing to roll back to {p["to"]}: it is {target.state} '
                    f'({target.meta.get("reason") or "never finished"})',
                    path=target.path,
                )
        else:
            target = _release.rollback_candidate(releases, current)
            if target is None:
                raise _release.ReleaseError(
                    f'no complete release older than {current or "the current one"} '
                    f'to roll back to in {layout.releases}',
                    path=layout.releases,
                )
        text = layout.link_text(target.id, style=p['link_style'])
        result['diff'] = {'before': {'current': _fs.read_link(layout.current)}, 'after': {'current': text}}
        if target.id == current and _fs.read_link(layout.current) == text:
            return result
        result.update(changed=True, current=target.id)
        if module.check_mode:
            return result
        outcome = _release.switch_current(
            layout=layout, release_id=target.id, style=p['link_style'], switch_at=p['switch_at'], fsync=p['fsync']
        )
        result['switched_at'] = outcome['switched_at']
        left = _release.find(releases, current)
        if (
            p['mark_failed']
            and left is not None
            and left.id != target.id
            and left.state in (_release.COMPLETE, _release.UNFINISHED)
        ):
            _release.mark_failed(release=left, reason=p['reason'], fsync=p['fsync'])
        _history.record(
            layout=layout,
            event='rollback',
            release_id=target.id,
            owner=p['owner'],
            fsync=p['fsync'],
            previous=current,
            reason=p['reason'],
            switched_at=outcome['switched_at'],
        )
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            _common.ROOT_SPEC,
            **_common.INLINE_LOCK_SPEC,
            to=dict(type='str'),
            mark_failed=dict(type='bool', default=True),
            reason=dict(type='str', default='rolled back'),
            switch_at=dict(type='float'),
            link_style=dict(type='str', choices=['relative', 'absolute'], default='relative'),
            fsync=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    result = dict(changed=False, rolled_back_from=None, current=None)
    try:
        rollback(module=module, layout=_release.Layout(module.params['root']), result=result)
    except (_release.ReleaseError, _lock.LockHeld, OSError) as exc:
        _common.fail(module, exc, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
