#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: releases_info
short_description: Read the releases, current release, lock and history of a deploy root
version_added: 0.1.0
description:
  - Read-only. Lists the releases of C(ROOT/releases/) in deploy order (the start time each
    release recorded when it was created, never the file mtime), with their state, which one is
    live, and the rollback candidate.
  - The rollback candidate is the newest complete release older than the current one in deploy
    order; failed and unfinished releases are skipped.
  - Also returns the deploy lock, if held, and the last O(history) history entries. A torn last
    history line left by a crash is skipped.
  - Only what the deploy user (the user the module runs as) made counts. A directory in
    C(releases/) that another user owns, or that anyone else can write, or whose metadata another
    user wrote, is not a release; it is returned in RV(untrusted) with a warning.
author:
  - atomic.deploy maintainers (@atomic-deploy)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - atomic.deploy.common
options:
  history:
    description: How many of the latest history entries to return.
    type: int
    default: 10
  verify:
    description:
      - Compare every release that has a content manifest with what is on disk now, and report in
        RV(releases[].drift) the files changed, added or removed since it was deployed (hot-patches,
        stray uploads, deleted files). Shared links, writable directories and generated files are
        not release content and are ignored.
      - A file is read only when its stat record cannot prove it unchanged (see C(docs/delta.md)).
        A file or directory of another user, or that anyone else can write, is never read; it is
        listed as untrusted. Symlinks are never followed.
    type: bool
    default: false
attributes:
  action:
    support: full
    details: the action plugin only turns a target Python older than 3.8 into a clear failure.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: the module never changes anything.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
seealso:
  - module: atomic.deploy.release
  - module: atomic.deploy.release_rollback
"""

EXAMPLES = r"""
- name: Read the deploy state
  atomic.deploy.releases_info:
    root: /srv/www/example
  register: info

- name: Show what a rollback would go back to
  ansible.builtin.debug:
    msg: "live {{ info.current }}, rollback would go to {{ info.rollback_candidate }}"
"""

RETURN = r"""
exists:
  description: Whether the deploy root exists.
  returned: always
  type: bool
releases:
  description: Releases in deploy order, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The release id.
      type: str
      returned: always
    path:
      description: The release directory.
      type: str
      returned: always
    state:
      description: V(complete), V(unfinished), V(failed) or V(unmanaged) (no metadata).
      type: str
      returned: always
    current:
      description: Whether C(current) points at it.
      type: bool
      returned: always
    started:
      description: When it was created (ISO 8601 UTC); this is the deploy order.
      type: str
      returned: always
    finished:
      description: When it was finalized.
      type: str
      returned: always
    failed_at:
      description: When it was marked failed.
      type: str
      returned: always
    deactivated_at:
      description: When C(current) last left it (ISO 8601 UTC), V(null) if it never did; pruning reads it.
      type: str
      returned: always
    reason:
      description: Why it failed.
      type: str
      returned: always
    deployed_by:
      description: Who deployed it (user, controller, playbook, AWX or CI job), and C(host_user), the user that
        wrote the release on the host.
      type: dict
      returned: always
    source:
      description: What it was built from.
      type: dict
      returned: always
    drift:
      description:
        - With O(verify=true), V(null) for a release without a content manifest (deployed by a
          version without delta transfer, or not complete), else C(changed), C(added), C(removed)
          and C(untrusted) (lists of paths relative to the release; C(untrusted) holds files of another
          user, or below a directory anyone else can write, which are never read), C(drifted) (bool)
          and C(digest) (the manifest digest).
      type: dict
      returned: with O(verify=true)
      sample: {changed: [app/index.php], added: [], removed: [], untrusted: [], drifted: true, digest: "sha256:9f86..."}
current:
  description: The id C(current) points at, V(null) if none (or if it points outside C(releases/)).
  returned: always
  type: str
current_target:
  description: The text of the C(current) link.
  returned: always
  type: str
rollback_candidate:
  description: The rollback candidate id, V(null) if there is none.
  returned: always
  type: str
lock:
  description:
    - The deploy lock record (without its token), whether it has expired (C(expired)) and who holds it
      (C(holder), a line naming the user, controller, playbook, AWX or CI job, release, start and expiry);
      V(null) when free.
  returned: always
  type: dict
history:
  description: The latest history entries, oldest first.
  returned: always
  type: list
  elements: dict
ignored:
  description: Entries of C(releases/) that are not releases (symlinks, files, temp directories, untrusted directories).
  returned: always
  type: list
  elements: str
untrusted:
  description:
    - Directories in C(releases/) the deploy user did not make, or that anyone else can write (or C(releases/)
      itself). They are never listed as releases, reused, rolled back to or pruned.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The directory.
      type: str
      returned: always
    reason:
      description: Why it is not trusted, e.g. C(owned by uid 33, not by the deploy user (uid 0) or root).
      type: str
      returned: always
  sample: [{path: /srv/www/app/releases/uploads, reason: writable by group 33}]
table:
  description: A readable table of the releases, one line per release.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.atomic.deploy.plugins.module_utils import _common, _fs, _history, _lock, _release


def table(releases: list[_release.Release], drift: list | None = None, untrusted: list | None = None) -> list[str]:
    rows = [('', 'release', 'state', 'started', 'by') + (('content',) if drift is not None else ())]
    for index, release in enumerate(releases):
        by = release.meta.get('deployed_by') or {}
        who = by.get('user') or '-'
        if by.get('controller'):
            who += f'@{by["controller"]}'
        row = ('*' if release.current else '', release.id, release.state, release.started or '-', who)
        if drift is not None:
            report = drift[index]
            if report is None:
                row += ('unknown',)
            elif report['drifted']:
                count = sum(len(report.get(what) or []) for what in ('changed', 'added', 'removed', 'untrusted'))
                row += (f'drifted ({count} paths)',)
            else:
                row += ('as deployed',)
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    for release, report in zip(releases, drift or ()):
        for what in ('changed', 'added', 'removed', 'untrusted'):
            names = (report or {}).get(what) or []
            if names:
                more = f' and {len(names) - 10} more' if len(names) > 10 else ''
                lines.append(f'   {release.id} {what}: {", ".join(names[:10])}{more}')
    for item in untrusted or ():
        lines.append(f'   not a release (not trusted): {item["path"]} ({item["reason"]})')
    return lines


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            _common.ROOT_SPEC, history=dict(type='int', default=10), verify=dict(type='bool', default=False)
        ),
        supports_check_mode=True,
    )
    result = dict(changed=False)
    try:
        layout = _release.Layout(module.params['root'])
        if module.params['history'] < 0:
            raise ValueError(f'history must not be negative, got {module.params["history"]}')
        untrusted: list = []
        releases, ignored = _release.list_releases(layout, untrusted)
        for warning in _release.untrusted_warnings(untrusted):
            module.warn(warning)
        current = _release.current_id(layout)
        candidate = _release.rollback_candidate(releases, current)
        lock = _lock.shown(_lock.read(layout.lock))
        listed = [release.as_dict() for release in releases]
        if module.params['verify']:
            from ansible_collections.atomic.deploy.plugins.module_utils import _manifest

            verifier = _manifest.Verifier()
            for row, release in zip(listed, releases):
                row['drift'] = _manifest.drift(release=release.path, verifier=verifier)
        result.update(
            exists=os.path.isdir(layout.root),
            releases=listed,
            current=current,
            current_target=_fs.read_link(layout.current),
            rollback_candidate=candidate.id if candidate else None,
            lock=lock,
            history=_history.read(path=layout.history, last=module.params['history']),
            ignored=ignored,
            untrusted=untrusted,
            table=table(releases, [row['drift'] for row in listed] if module.params['verify'] else None, untrusted),
        )
    except (_release.ReleaseError, OSError, ValueError) as exc:
        _common.fail(module, exc, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
