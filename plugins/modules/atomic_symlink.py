#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: atomic_symlink
short_description: Replace a symlink atomically, with no moment at which it is missing
version_added: 0.1.0
description:
  - Makes O(path) a symlink whose text is O(target).
  - An existing symlink is replaced by creating a uniquely named temporary link in the same
    directory and renaming it over O(path) with C(rename(2)) (Python C(os.replace)). Readers
    see the old target or the new one; O(path) never disappears, unlike C(ln -sfn) with
    busybox, BSD or older coreutils, which unlink first.
  - After the rename the containing directory is fsync'd (O(fsync)), so the switch survives a
    crash or power loss; where C(fcntl) has C(F_FULLFSYNC) (macOS) that is used instead of a plain
    C(fsync), which there may leave the data in the drive's cache.
  - A real directory at O(path) (an old in-place deploy being adopted) is swapped for the link
    in one step when O(force=true), with C(renameat2(RENAME_EXCHANGE)) on Linux and
    C(renameatx_np(RENAME_SWAP)) on macOS. The directory ends at a temporary name returned as
    RV(backup); nothing is deleted.
    Where no exchange call exists (FreeBSD and other BSDs) the module fails, in check mode too,
    rather than open a window.
  - Pure Python, no shelling out, so Linux and macOS/BSD behave the same.
author:
  - atomic.deploy maintainers (@atomic-deploy)
requirements:
  - Python 3.8 or newer on the target; on an older one the module fails with a message that says so.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
options:
  path:
    description:
      - The symlink to create or replace.
      - Its parent directory must exist and be writable.
    type: path
    required: true
  target:
    description:
      - The link text, written exactly as given, relative or absolute.
      - A relative target is resolved against the directory holding O(path), as the kernel does.
    type: str
    required: true
    aliases: [src]
  require_target:
    description:
      - Fail when O(target), resolved against the directory of O(path), does not exist.
    type: bool
    default: true
  force:
    description:
      - Allow replacing something that is not a symlink.
      - A directory is adopted with the platform's exchange call (C(renameat2(RENAME_EXCHANGE)) on Linux,
        C(renameatx_np(RENAME_SWAP)) on macOS) and kept as RV(backup); refused where there is none.
      - A regular file is replaced with the same atomic rename as a symlink; it is not kept.
    type: bool
    default: false
  fsync:
    description:
      - Fsync the containing directory after the rename so the switch is durable.
    type: bool
    default: true
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
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
  safe_file_operations:
    support: full
    description: the switch is a single rename of a temp link in the same directory.
notes:
  - C(rename(2)) is atomic on local POSIX filesystems. NFS and other network filesystems do not
    give the same guarantee to other clients.
  - A temp link left by a crashed run is named C(.<name>.tmp-<random>); it never blocks a later
    run and may be deleted at any time.
seealso:
  - module: ansible.builtin.file
  - module: atomic.deploy.release
"""

EXAMPLES = r"""
- name: Point current at a release (relative link, as the role does)
  atomic.deploy.atomic_symlink:
    path: /srv/www/example/current
    target: releases/20260112T143052Z

- name: Absolute link text, no durability flush (scratch data)
  atomic.deploy.atomic_symlink:
    path: /srv/www/example/current
    target: /srv/www/example/releases/20260112T143052Z
    fsync: false

- name: Adopt an old in-place deploy directory with zero downtime
  atomic.deploy.atomic_symlink:
    path: /var/www/html
    target: /srv/www/example/current
    force: true
  register: adopted

- name: Show where the old directory went
  ansible.builtin.debug:
    msg: "the old directory is kept at {{ adopted.backup }}"
  when: adopted.backup is not none
"""

RETURN = r"""
path:
  description: The link that was managed.
  returned: always
  type: str
  sample: /srv/www/example/current
target:
  description: The link text now (or, in check mode, that would be) in place.
  returned: always
  type: str
  sample: releases/20260112T143052Z
previous_target:
  description:
    - The link text before the change. V(null) when O(path) did not exist or was not a symlink.
  returned: always
  type: str
  sample: releases/20260110T083022Z
backup:
  description: Where an adopted directory was moved, with O(force=true). V(null) otherwise.
  returned: always
  type: str
  sample: /var/www/.html.backup-3f2a9c1b7d0e
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.atomic.deploy.plugins.module_utils import _fs


class Refused(Exception):
    """The link cannot be made; the message names the path."""


def ensure_link(
    *, path: str, target: str, require_target: bool, force: bool, fsync: bool, check_mode: bool, result: dict
) -> dict:
    """Make ``path`` a symlink to ``target``; fills in and returns ``result``."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise Refused(f'parent directory {parent} of {path} does not exist')
    if require_target:
        resolved = _fs.resolve_link_target(link=path, text=target)
        if not os.path.exists(resolved):
            raise Refused(
                f'target {target} of {path} does not exist (resolved to {resolved}); '
                'set require_target=false to link anyway'
            )
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    kind = None
    if st is not None and not stat.S_ISLNK(st.st_mode):
        kind = 'directory' if stat.S_ISDIR(st.st_mode) else 'file'
        if not force:
            raise Refused(f'refusing to replace {kind} {path} with a symlink; set force=true to adopt it')
    else:
        result['previous_target'] = _fs.read_link(path)

    needed = kind is not None or result['previous_target'] != target
    before = result['previous_target'] if kind is None else f'<{kind}>'
    result['diff'] = dict(before=dict(path=path, target=before), after=dict(path=path, target=target))
    if kind == 'directory' and not _fs.exchange_supported():
        raise Refused(_fs.exchange_unsupported_reason(path))
    if not needed or check_mode:
        result['changed'] = needed
        return result

    # 'changed' stays false on every failure below: the swap either happened whole or not at all.
    if not os.access(parent, os.W_OK | os.X_OK):
        raise Refused(f'parent directory {parent} of {path} is not writable')
    try:
        if kind == 'directory':
            result['backup'] = _fs.adopt_directory(path=path, target=target, fsync=fsync)
        else:
            _fs.swap_symlink(path=path, target=target, fsync=fsync)
    except _fs.FsError as exc:
        raise Refused(str(exc)) from exc
    except OSError as exc:
        raise Refused(f'could not switch {path} to {target}: {exc.strerror.lower() if exc.strerror else exc}') from exc
    result['changed'] = True
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            target=dict(type='str', required=True, aliases=['src']),
            require_target=dict(type='bool', default=True),
            force=dict(type='bool', default=False),
            fsync=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = os.path.normpath(os.path.abspath(p['path']))
    result = dict(changed=False, path=path, target=p['target'], previous_target=None, backup=None)
    try:
        if not p['target']:
            raise Refused(f'target must not be empty for {path}')
        ensure_link(
            path=path,
            target=p['target'],
            require_target=p['require_target'],
            force=p['force'],
            fsync=p['fsync'],
            check_mode=module.check_mode,
            result=result,
        )
    except Refused as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
