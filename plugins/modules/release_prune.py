#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_prune
short_description: Remove old releases without ever touching the live or last good one
version_added: 0.1.0
description:
  - Keeps the newest O(keep) B(complete) releases in deploy order (the start time each release
    recorded, never the file mtime), the release C(current) points at, and every id in O(protect).
    After a rollback the current release may be older than newer failed ones; it is still kept.
  - Also keeps the release that was current before the latest switch (the one C(current) left
    last, by the C(deactivated_at) time a switch records in its metadata), until the next switch, as a
    server that resolved C(current) only once, at start or at its last reload, may still serve it.
    When no release has C(deactivated_at) yet (switched by an earlier version), the latest switch
    in the history names it.
  - Keeps every release that was live less than O(min_age) seconds ago, and the release
    C(ROOT/next) points at (see O(atomic.deploy.release#module:next_link)).
  - Unfinished and failed releases never count toward O(keep). They are removed once they are
    older than the current release, and kept for inspection while newer.
  - Directories without atomic.deploy metadata are never removed.
  - Runs under the deploy lock. Without O(lock_token) the module takes the lock for its own run
    and fails if another deploy holds it.
  - A release is first renamed out of C(releases/), then deleted without following symlinks, so a
    link planted inside a release that points at C(/) deletes nothing outside.
  - A release holding entries this user cannot delete (files of the web server user, say) is left
    whole and reported with the offending paths; the module then fails, because pruning is all it
    was asked to do. Pruning inside a deploy (M(atomic.deploy.release) with O(atomic.deploy.release#module:prune=true))
    only warns about such a release, since the new release is already live by then.
author:
  - atomic.deploy maintainers (@atomic-deploy)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - atomic.deploy.common
  - atomic.deploy.common.lock
  - atomic.deploy.common.inline_lock
options:
  keep:
    description: Complete releases to keep, at least 1.
    type: int
    default: 5
  protect:
    description: Release ids never removed.
    type: list
    elements: str
    default: []
  min_age:
    description:
      - Also keep every release that was live less than this many seconds ago. V(0) keeps only what
        the other rules keep. Set it to the longest time a worker may keep serving the code it
        started with (a long request, a queue job) when your servers are not reloaded on deploy.
    type: int
    default: 0
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
    details: the diff lists the releases before and after.
  platform:
    support: full
    platforms: posix
seealso:
  - module: atomic.deploy.releases_info
  - module: atomic.deploy.release
"""

EXAMPLES = r"""
- name: Keep the last three good releases
  atomic.deploy.release_prune:
    root: /srv/www/example
    keep: 3

- name: Keep three, and every release live within the last hour (workers that never reload)
  atomic.deploy.release_prune:
    root: /srv/www/example
    keep: 3
    min_age: 3600

- name: See what would go, keeping a release pinned for an audit
  atomic.deploy.release_prune:
    root: /srv/www/example
    keep: 3
    protect: ["20260110T083022Z"]
  check_mode: true
  diff: true
"""

RETURN = r"""
removed:
  description: Ids removed (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
kept:
  description: Ids kept, in deploy order.
  returned: always
  type: list
  elements: str
leftovers:
  description: Temp and trash directories of interrupted runs that were removed.
  returned: always
  type: list
  elements: str
blocked:
  description: Releases left whole because they hold entries this user cannot delete, with those entries.
  returned: always
  type: dict
lock:
  description: The record (without its token) of the deploy lock another deploy holds.
  returned: on failure, when the deploy lock is held by another deploy or no longer by this one
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.atomic.deploy.plugins.module_utils import _common, _fs, _lock, _prune, _release


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            _common.ROOT_SPEC,
            **_common.INLINE_LOCK_SPEC,
            keep=dict(type='int', default=5),
            protect=dict(type='list', elements='str', default=[]),
            min_age=dict(type='int', default=0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = dict(changed=False, removed=[], kept=[], leftovers=[], blocked={})
    try:
        layout = _release.Layout(p['root'])
        _prune.validate_prune_args(keep=p['keep'], protect=p['protect'], min_age=p['min_age'])
        if _fs.lexists(layout.releases):
            with _common.held_lock(module, layout):
                outcome = _prune.prune(
                    layout=layout,
                    current=_release.current_id(layout),
                    keep=p['keep'],
                    protect=p['protect'],
                    min_age=p['min_age'],
                    check_mode=module.check_mode,
                )
            result.update(
                changed=bool(outcome['removed'] or outcome['leftovers']),
                removed=outcome['removed'],
                kept=outcome['kept'],
                leftovers=outcome['leftovers'],
                blocked=outcome['blocked'],
                diff={
                    'before': {'releases': outcome['before']},
                    'after': {'releases': [i for i in outcome['before'] if i not in outcome['removed']]},
                },
            )
            if outcome['blocked']:
                # Standalone, pruning is the whole task: a release left whole is a failure here (inside a
                # deploy, release prune=true only warns; see the notes).
                details = '; '.join(_prune.blocked_messages(outcome))
                raise _release.ReleaseError(
                    f'could not prune releases holding entries this user cannot delete (left whole): {details}'
                )
    except (_release.ReleaseError, _lock.LockHeld, OSError) as exc:
        _common.fail(module, exc, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
