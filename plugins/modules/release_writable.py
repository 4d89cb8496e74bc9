#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_writable
short_description: Give the writable directories of a release to the web server, as a step of its own
version_added: 0.1.0
description:
  - Creates O(writable_dirs) inside C(ROOT/releases/<id>) when missing and gives each to the web
    server by O(writable_method), exactly as M(atomic.deploy.release) does with the same options
    while staging. It exists so that this one step can run with C(become) (for example
    O(writable_method=chown)) while the rest of the deploy runs as the deploy user.
  - Each directory is opened without following symlinks (C(O_NOFOLLOW | O_DIRECTORY)), one
    component at a time beneath the release, and changed through that descriptor (C(fchmod),
    C(fchown), C(fsetxattr)); a symlink on the way is refused, naming it.
  - The release must be a real directory owned by the owner of C(ROOT/releases) (the deploy user)
    and writable by nobody else; anything else is refused.
  - Runs under the deploy lock. Without O(lock_token) the module takes the lock for its own run.
author:
  - atomic.deploy maintainers (@atomic-deploy)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - atomic.deploy.common
  - atomic.deploy.common.lock
  - atomic.deploy.common.inline_lock
options:
  id:
    description: The release id.
    type: str
    required: true
  writable_dirs:
    description: Directories inside the release, as relative paths.
    type: list
    elements: str
    required: true
  writable_mode:
    description: Mode of O(writable_dirs). With O(writable_method=acl) its group bits become the ACL mask (rwx).
    type: str
    default: "2775"
  writable_method:
    description:
      - V(chmod) sets O(writable_mode) only.
      - V(chgrp) gives each directory to O(writable_group) as well.
      - V(chown) gives it to O(writable_user) (and O(writable_group) when set); needs root.
      - V(acl) adds POSIX ACL entries, access and default, giving O(writable_user) and/or
        O(writable_group), and the owner of the directory, rwx; Linux only, and the file system must
        support ACLs (the error names the path otherwise).
    type: str
    choices: [chmod, chgrp, chown, acl]
    default: chmod
  writable_user:
    description: The web server's user, a name or a uid, for V(chown) and V(acl).
    type: str
  writable_group:
    description: The web server's group, a name or a gid, for V(chgrp), V(chown) and V(acl).
    type: str
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
    details: the diff shows mode, owner, group and ACL entries of each directory before and after.
  platform:
    support: full
    platforms: posix
seealso:
  - module: atomic.deploy.release
"""

EXAMPLES = r"""
- name: Give the cache to the web server's user, the only step run as root
  atomic.deploy.release_writable:
    root: /srv/www/example
    id: "{{ release_deploy_id }}"
    writable_dirs: [var/cache, var/log]
    writable_method: chown
    writable_user: www-data
    writable_group: www-data
    lock_token: "{{ release_stage_result.token }}"
  become: true

- name: ACLs instead, no root needed
  atomic.deploy.release_writable:
    root: /srv/www/example
    id: "20260110T083022Z"
    writable_dirs: [var/cache]
    writable_method: acl
    writable_user: www-data
"""

RETURN = r"""
release_path:
  description: The release directory.
  returned: always
  type: str
writable:
  description: Directories created or changed (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
lock:
  description: The record (without its token) of the deploy lock another deploy holds.
  returned: on failure, when the deploy lock is held by another deploy or no longer by this one
  type: dict
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.atomic.deploy.plugins.module_utils import _common, _fs, _lock, _perm, _release, _shared


def trusted_release(layout: _release.Layout, release_id: str) -> str:
    """releases/<id>, refused unless it is a real directory of the owner of releases/ that nobody else can write."""
    path = os.path.join(layout.releases, release_id)
    try:
        top = os.lstat(layout.releases)
        st = os.lstat(path)
    except FileNotFoundError:
        raise _release.ReleaseError(f'release {path} does not exist', path=path) from None
    if not stat.S_ISDIR(st.st_mode) or not stat.S_ISDIR(top.st_mode):
        raise _release.ReleaseError(f'{path} is not a directory (or releases/ is a symlink); refusing', path=path)
    if st.st_uid != top.st_uid or st.st_mode & 0o022:
        raise _release.ReleaseError(
            f'{path} is owned by uid {st.st_uid} or writable by others, not a release the deploy user '
            f'(uid {top.st_uid}) made; refusing to change permissions in it',
            path=path,
        )
    return path


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            _common.ROOT_SPEC,
            **_common.INLINE_LOCK_SPEC,
            id=dict(type='str', required=True),
            writable_dirs=dict(type='list', elements='str', required=True),
            writable_mode=dict(type='str', default='2775'),
            writable_method=dict(type='str', default='chmod', choices=list(_perm.METHODS)),
            writable_user=dict(type='str'),
            writable_group=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = dict(changed=False, release_path='', writable=[])
    try:
        layout = _release.Layout(p['root'])
        release_id = _release.validate_id(p['id'])
        paths = [_shared.normalize_rel_path(value, name='writable_dirs') for value in p['writable_dirs']]
        grant = _perm.make_grant(
            method=p['writable_method'],
            mode=_shared.parse_mode(p['writable_mode'], name='writable_mode'),
            user=p['writable_user'],
            group=p['writable_group'],
        )
        result['release_path'] = trusted_release(layout, release_id)
        diff: list = []
        with _common.held_lock(module, layout, release_id=release_id):
            result['writable'] = _shared.ensure_writable(
                release=result['release_path'],
                paths=paths,
                mode=grant.mode,
                grant=grant,
                check_mode=module.check_mode,
                diff=diff,
            )
        result.update(
            changed=bool(result['writable']),
            diff={
                'before': {entry['path']: entry['before'] for entry in diff},
                'after': {entry['path']: entry['after'] for entry in diff},
            },
        )
    except _perm.PermError as exc:
        _common.fail(module, _release.ReleaseError(str(exc)), **result)
    except (_release.ReleaseError, _fs.FsError, _lock.LockHeld, OSError) as exc:
        _common.fail(module, exc, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
