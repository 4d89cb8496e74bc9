#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release
short_description: Stage, finalize, activate or fail a release of a deploy root
version_added: 0.1.0
description:
  - Manages one release C(ROOT/releases/<id>) through its life. Each state does in one module run
    what would otherwise take several tasks, because every task costs a round trip.
  - O(state=present) stages the release. It takes the deploy lock (O(lock=true)), creates the
    release directory with an in-progress marker, fetches the code from O(source), links the
    O(shared_dirs) and O(shared_files) from C(ROOT/shared/) into it, and creates
    O(writable_dirs). If O(id) is already complete and live, nothing happens and RV(live) is
    V(true). A complete release that is not live is kept as it is (RV(rebuilt=false)); an
    unfinished or failed one is rebuilt from scratch. A failure marks the release failed, removes
    what was fetched, records it in the history and releases a lock taken by this run.
  - O(state=complete) finalizes a staged release (writes its metadata, clears the marker).
  - O(state=active) finalizes if needed, then switches C(ROOT/current) to the release with one
    C(rename(2)) at the instant O(switch_at), records the history, and optionally prunes
    (O(prune)) and releases the lock (O(unlock)).
  - O(state=failed) marks the release failed with O(reason) and records the failure.
  - Release metadata is C(ROOT/releases/<id>/.release.json); the deploy order used everywhere is
    the start time recorded there, never the file mtime.
author:
  - atomic.deploy maintainers (@atomic-deploy)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - atomic.deploy.common
  - atomic.deploy.common.lock
  - atomic.deploy.common.inline_lock
  - atomic.deploy.release_sources
options:
  id:
    description:
      - The release id. Letters, digits, C(.), C(_) and C(-), at most 128 characters, not starting
        with C(.) or C(-).
    type: str
    required: true
  state:
    description: What to make of the release; see the description.
    type: str
    choices: [present, complete, active, failed]
    default: present
  lock:
    description:
      - With O(state=present), take the deploy lock in the same run (with O(lock_token) as the
        token when given). Not taken when the release is already live.
    type: bool
    default: false
  source:
    description:
      - Where the code comes from, with O(state=present).
      - V(archive) is a tar (gz, bz2, xz or plain) or zip file, on the controller or with
        O(remote_src=true) on the host.
      - V(url) is downloaded by each host; O(checksum) is required.
      - V(git) exports O(git_version) of O(git_repo) through a bare mirror kept in C(ROOT/.deploy/repo.git).
      - V(directory) is a directory on the controller, packed and sent by the action plugin.
      - V(none) leaves the release empty for a hook to build.
    type: str
    choices: [archive, url, git, directory, none]
    default: none
  archive:
    description: The archive for O(source=archive).
    type: path
  remote_src:
    description: O(archive) is already on the host.
    type: bool
    default: false
  directory:
    description: The controller directory for O(source=directory).
    type: path
  strip_components:
    description: Leading path parts to drop from archive members (C(1) for GitHub tarballs).
    type: int
    default: 0
  dedupe:
    description:
      - Hard-link files that are unchanged since the previous release instead of writing them
        again. New or changed files are always new inodes, so no release ever writes into a file
        of another.
      - Turn it off for apps that modify files inside their own release tree at run time.
    type: bool
    default: true
  drop_macos_metadata:
    description:
      - Leave macOS metadata out of the release, from O(source=archive), V(url), V(git) and V(directory)
        alike, with or without delta staging. AppleDouble files (C(._name), which macOS C(tar) and
        Finder copies write next to each file), C(.DS_Store) and a zip's C(__MACOSX/) tree are not
        content, and C(.DS_Store) served by a web server lists a directory's file names.
      - Set it to V(false) for an app that really ships files named C(._*).
    type: bool
    default: true
  shared_dirs:
    description: Directories under C(ROOT/shared/) linked into the release at the same relative path.
    type: list
    elements: str
    default: []
  shared_files:
    description: Files under C(ROOT/shared/) linked into the release at the same relative path.
    type: list
    elements: str
    default: []
  shared_owner:
    description: Owner of the shared directories (not of their contents).
    type: str
  shared_group:
    description: Group of the shared directories, typically the web server's group.
    type: str
  shared_mode:
    description:
      - Mode of the shared directories. The setgid bit makes files created inside inherit the group.
      - World-writable modes are refused.
    type: str
    default: "2775"
  shared_strict:
    description: Fail when a shared file is missing, instead of creating it empty with a warning.
    type: bool
    default: false
  shared_allow_external:
    description:
      - Allow symlinks inside C(ROOT/shared/) that lead outside the deploy root (shared data on
        another mount). Off by default, so a planted link cannot redirect writes.
      - Such a link is linked into the release as it is, and never descended through; nothing is
        created or changed below it, so shared dirs below it must exist on the other mount.
      - A symlink in C(ROOT/shared/) that leads into the deploy root is always refused.
    type: bool
    default: false
  shared_seed:
    description:
      - Entries of O(shared_dirs) or O(shared_files) that, when missing from C(ROOT/shared/), start as
        a copy of what the release holds at that path instead of empty.
      - A copy, never a move, never over an existing shared path; a symlink in the release's content
        is skipped with a warning, never followed. Made under a temporary name and put in place with
        C(rename(2)) (a directory) or C(link(2)) (a file).
    type: list
    elements: str
    default: []
  link_style:
    description: V(relative) or V(absolute) link text for shared links and for C(current).
    type: str
    choices: [relative, absolute]
    default: relative
  writable_dirs:
    description:
      - Directories inside the release created (if missing) and given to the web server by
        O(writable_method). Each is reached one component at a time without following symlinks and
        changed through its descriptor.
    type: list
    elements: str
    default: []
  writable_mode:
    description: Mode of O(writable_dirs). With O(writable_method=acl) its group bits become the ACL mask (rwx).
    type: str
    default: "2775"
  writable_method:
    description:
      - V(chmod) sets O(writable_mode) only.
      - V(chgrp) gives each directory to O(writable_group) as well (the deploy user must be a member).
      - V(chown) gives it to O(writable_user) (and O(writable_group) when set); needs root, see
        M(atomic.deploy.release_writable) for running only this step with become.
      - V(acl) adds POSIX ACL entries, access and default, giving O(writable_user) and/or
        O(writable_group), and the owner of the directory, rwx, so what the web server creates inside
        inherits them. Linux only; a file system without ACL support fails, naming the path.
    type: str
    choices: [chmod, chgrp, chown, acl]
    default: chmod
  writable_user:
    description: The web server's user (a name or a uid), for O(writable_method=chown) or V(acl).
    type: str
  writable_group:
    description: The web server's group (a name or a gid), for O(writable_method=chgrp), V(chown) or V(acl).
    type: str
  id_file:
    description:
      - With O(state=present), write the file C(<release>/<id_file>) (a path relative to the release,
        for example V(REVISION) or V(public/VERSION)) holding the release id and a newline, mode
        C(0644), so the application can tell which release it is, for example in a health check.
      - Written when the release is staged, and added to a complete release that is not live. A path
        the artifact itself holds (its content manifest lists it, for example the app's own C(VERSION))
        is never overwritten; staging fails naming it, before any switch. Its parent directories must
        be real directories of the release, and it must not be the metadata file or inside a shared path.
    type: str
  next_link:
    description:
      - With O(state=present), point C(ROOT/next) at the staged release after staging, with the same
        temp link, C(rename(2)) and fsync as C(current), so a second server block or port can serve
        the release for checks before the switch. Users never hit it.
      - Pruning never removes the release C(next) points to. C(next) is left in place after the
        switch; the next staging with O(next_link=true) moves it.
    type: bool
    default: false
  switch_at:
    description:
      - With O(state=active), the epoch time at which to rename. Every host prepares its temp link,
        waits for this instant by its own clock, and renames, so a fleet switches together.
        Clocks must be synchronised (NTP). A host that arrives late switches at once and reports
        RV(switch_late).
    type: float
  adopt:
    description:
      - With O(state=active), allow C(current) to be a real directory (an old in-place deploy) and
        swap it for the link with the platform's exchange call (C(renameat2(RENAME_EXCHANGE)) on Linux,
        C(renameatx_np(RENAME_SWAP)) on macOS), keeping it as RV(backup).
      - Where there is no exchange call (FreeBSD and other BSDs) this is refused before anything is staged.
    type: bool
    default: false
  fsync:
    description: Fsync metadata, history and the switch so they survive a crash or power loss.
    type: bool
    default: true
  prune:
    description:
      - With O(state=active), prune old releases after the switch, by the rules of
        M(atomic.deploy.release_prune).
      - A release holding entries this user cannot delete is left whole and reported as a warning,
        not a failure (M(atomic.deploy.release_prune) fails instead). The new release is live by then,
        and failing would make a deploy roll back a healthy release over housekeeping.
    type: bool
    default: false
  keep:
    description: Complete releases to keep when pruning (at least 1).
    type: int
    default: 5
  protect:
    description: Release ids never pruned.
    type: list
    elements: str
    default: []
  min_age:
    description:
      - When pruning, also keep every release that was live less than this many seconds ago (the
        time C(current) left it, recorded as C(deactivated_at) in its metadata).
      - The release that was current before this switch is always kept, whatever O(min_age) is; see
        M(atomic.deploy.release_prune).
    type: int
    default: 0
  unlock:
    description: With O(state=active) or O(state=failed), release the lock held with O(lock_token) at the end.
    type: bool
    default: false
  reason:
    description: Why the release failed, with O(state=failed).
    type: str
    default: failed
  delta:
    description:
      - With O(source=archive) (not O(remote_src)) or O(source=directory) over a connection other than
        C(local) without become, send only the content the host does not already hold in a complete
        release, compressed, in one transfer (see C(docs/delta.md)). The lock is taken, and a live
        no-op detected, before any byte of the artifact is sent.
      - V(false) sends the whole artifact, then stages it in one module run (no manifest exchange).
      - Role variable C(release_delta).
    type: bool
    default: true
  _content_digest:
    description:
      - Internal, set by the action plugin. The digest of the artifact's content manifest,
        C(sha256:<hex>), computed on the controller; the staged tree must match it, and it is
        recorded in the release's metadata so that a release id reused for another artifact is refused.
    type: str
  _archive_origin:
    description:
      - Internal, set by the action plugin to the archive's path on the controller, which the metadata records as
        C(source.archive) also when the archive was sent whole to a temp path on the host.
    type: str
  _delta:
    description:
      - Internal, set by the action plugin. Which module run of delta staging this is. With C(probe=true),
        take the lock and report the content the host holds; otherwise C(lock_acquired) says whether
        the probe took the lock, so that a failure gives it back.
    type: dict
  _bundle:
    description:
      - Internal, set by the action plugin. The path on the host of the delta bundle (the content the
        host lacked, sent in one transfer) to assemble the release from. O(archive) then names the
        artifact as it was read on the controller, for the release's metadata.
    type: path
attributes:
  action:
    support: full
    details: the action plugin fills in O(owner) from the controller and, for O(source=archive) and
      O(source=directory), computes the artifact's content manifest and sends the missing content
      (O(delta)), the archive, or the packed O(directory).
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
  diff_mode:
    support: full
    details: the diff shows the C(current) link and, with O(state=present), the release created.
  platform:
    support: full
    platforms: posix
  safe_file_operations:
    support: full
    description: Every change is a rename of a fully written temp file or link in the same directory.
notes:
  - A release whose metadata says C(in_progress) is reported as C(unfinished) by
    M(atomic.deploy.releases_info) and pruned once older than the current release.
  - Archive members that are absolute, contain C(..), are devices, or are links leading out of
    the release are refused; setuid, setgid and sticky bits of members are dropped.
seealso:
  - module: atomic.deploy.atomic_symlink
  - module: atomic.deploy.deploy_lock
  - module: atomic.deploy.releases_info
  - module: atomic.deploy.release_prune
  - module: atomic.deploy.release_rollback
"""

EXAMPLES = r"""
- name: Stage a release from a tarball on the controller, taking the deploy lock
  atomic.deploy.release:
    root: /srv/www/example
    id: "20260112T143052Z"
    lock: true
    source: archive
    archive: dist/app.tar.gz
    shared_dirs: [storage, public/uploads]
    shared_files: [.env]
    shared_group: www-data
  register: staged

- name: Go live, prune to five releases and drop the lock
  atomic.deploy.release:
    root: /srv/www/example
    id: "20260112T143052Z"
    state: active
    lock_token: "{{ staged.token }}"
    prune: true
    keep: 5
    unlock: true
  when: not staged.live

- name: Stage from a URL each host downloads itself
  atomic.deploy.release:
    root: /srv/www/example
    id: v2.4.0
    source: url
    url: https://artifacts.example.com/app-2.4.0.tar.gz
    checksum: sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
    url_headers:
      PRIVATE-TOKEN: "{{ vault_artifact_token }}"
    strip_components: 1

- name: Stage a git tag with its submodules, over SSH with a deploy key, without the tests
  atomic.deploy.release:
    root: /srv/www/example
    id: v2.4.0
    source: git
    git_repo: git@git.example.com:shop/app.git
    git_version: v2.4.0
    git_submodules: true
    git_key_file: /home/deploy/.ssh/app_deploy
    git_excludes: [tests]

- name: Stage with its id in public/REVISION and ROOT/next pointing at it, for a check before the switch
  atomic.deploy.release:
    root: /srv/www/example
    id: "20260112T143052Z"
    lock: true
    source: archive
    archive: dist/app.tar.gz
    id_file: public/REVISION
    next_link: true

- name: Go live; pruning keeps what was live in the last ten minutes too
  atomic.deploy.release:
    root: /srv/www/example
    id: "20260112T143052Z"
    state: active
    prune: true
    keep: 3
    min_age: 600

- name: Mark a release failed
  atomic.deploy.release:
    root: /srv/www/example
    id: "20260112T143052Z"
    state: failed
    reason: migrations failed
"""

RETURN = r"""
id:
  description: The release id.
  returned: always
  type: str
  sample: 20260112T143052Z
release_path:
  description: The release directory.
  returned: always
  type: str
  sample: /srv/www/example/releases/20260112T143052Z
state:
  description: The release state after the task (V(complete), V(unfinished), V(failed)), or V(absent).
  returned: always
  type: str
live:
  description: C(current) already pointed at this complete release, so there was nothing to do.
  returned: always
  type: bool
created:
  description: A new release directory was created.
  returned: always
  type: bool
rebuilt:
  description: An unfinished or failed release of the same id was removed and built again.
  returned: always
  type: bool
current_before:
  description: The release id C(current) pointed at before the task (V(null) if none).
  returned: always
  type: str
untrusted:
  description:
    - Directories in C(releases/) the deploy user did not make, or that anyone else can write (or
      C(releases/) itself), each with the reason. They are never listed as releases, reused, rolled back
      to or pruned; each is also named in a warning.
  returned: with O(state=present)
  type: list
  elements: dict
  sample: [{path: /srv/www/app/releases/uploads, reason: writable by group 33}]
switched_at:
  description: Epoch time of the rename, with O(state=active) when the link changed.
  returned: when switched
  type: float
switch_late:
  description: Seconds the host reached the switch after O(switch_at) (0 when on time).
  returned: when switched
  type: float
switch_waited:
  description:
    - Seconds the host waited with its temp link ready for O(switch_at) before the rename (0 when late
      or without O(switch_at)).
  returned: when switched
  type: float
started_at:
  description:
    - Epoch time, by this host's clock, at which the module started. With O(state=present) and a
      controller source sent in more than one module run, the start of the first run.
  returned: always
  type: float
dispatched_at:
  description:
    - Epoch time, by the controller's clock, at which the action plugin started the task for this host.
      The release role derives the switch instant from RV(dispatched_at) and RV(started_at) of every host.
  returned: always
  type: float
next:
  description: The text of the C(ROOT/next) link after the task, with O(next_link=true).
  returned: with O(state=present) and O(next_link=true), unless the release was already live
  type: str
  sample: releases/20260112T143052Z
removed:
  description: Release ids pruned, with O(prune=true).
  returned: always
  type: list
  elements: str
token:
  description: The lock token this run holds (O(lock=true) or O(lock_token)).
  returned: always
  type: str
stats:
  description: Extraction figures (files written, files hard-linked from the previous release, bytes).
  returned: when code was fetched
  type: dict
  sample: {files: 5000, written: 50, linked: 4950, bytes_written: 524288, bytes_linked: 51904512}
source:
  description: What the release was built from (type, archive or URL, checksum, git sha).
  returned: always
  type: dict
delta:
  description:
    - How the code reached the host (see C(docs/delta.md)).
  returned: with O(source=archive) or O(source=directory) staged over a remote connection with O(delta=true)
  type: dict
  contains:
    mode:
      description:
        - V(delta) (only missing content was sent), V(full) (the whole artifact, because the host held
          nothing usable) or V(none) (nothing sent, a live no-op or a release already complete).
      type: str
      returned: always
      sample: delta
    sent_bytes:
      description: Size of the file sent to the host (the delta bundle or the artifact).
      type: int
      returned: always
      sample: 13662
    sent_files:
      description: Distinct contents sent, with RV(delta.mode=delta).
      type: int
      returned: when only missing content was sent
    held_files:
      description: Distinct contents the host already held in its complete releases.
      type: int
      returned: when something was sent
backup:
  description: Where an adopted C(current) directory was moved, with O(adopt=true). V(null) otherwise.
  returned: when switched
  type: str
links:
  description: What O(state=present) did to the shared paths of the release (in check mode, would do).
  returned: with O(state=present) when the release was staged, or was complete but not live
  type: dict
  contains:
    linked:
      description: Paths inside the release now linked to C(ROOT/shared/).
      type: list
      elements: str
      returned: always
    replaced:
      description: Paths of the release (from the code) that were replaced by a shared link.
      type: list
      elements: str
      returned: always
    parents:
      description: Missing parent directories created inside the release for a shared link.
      type: list
      elements: str
      returned: always
    shared_created:
      description: Shared directories and files created under C(ROOT/shared/).
      type: list
      elements: str
      returned: always
    shared_fixed:
      description: Shared directories whose group or mode was corrected.
      type: list
      elements: str
      returned: always
    shared_seeded:
      description: Shared paths created as a copy of the release's content (O(shared_seed)).
      type: list
      elements: str
      returned: always
    writable:
      description: O(writable_dirs) created or given their permissions (O(writable_method)).
      type: list
      elements: str
      returned: always
unlocked:
  description: The lock held with O(lock_token) was released (O(unlock=true)).
  returned: with O(unlock=true) and O(lock_token), when not in check mode
  type: bool
elapsed:
  description: Seconds the module run took on the host.
  returned: success
  type: float
  sample: 0.042
lock:
  description: The record (without its token) of the deploy lock another deploy holds.
  returned: on failure, when the deploy lock is held by another deploy or no longer by this one
  type: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.atomic.deploy.plugins.module_utils import (
    _activate,
    _common,
    _fs,
    _lock,
    _prune,
    _release,
    _stage,
    _stage_options,
)


def main() -> None:
    # When this host started the module (its clock): the role measures how long a task takes to reach
    # every host from these (plugin_utils/_switch.py) to agree on the switch instant.
    started_at = time.time()
    module = AnsibleModule(
        argument_spec=dict(
            _common.ROOT_SPEC,
            **_common.INLINE_LOCK_SPEC,
            id=dict(type='str', required=True),
            state=dict(type='str', choices=['present', 'complete', 'active', 'failed'], default='present'),
            lock=dict(type='bool', default=False),
            source=dict(type='str', choices=['archive', 'url', 'git', 'directory', 'none'], default='none'),
            archive=dict(type='path'),
            remote_src=dict(type='bool', default=False),
            url=dict(type='str'),
            checksum=dict(type='str'),
            url_timeout=dict(type='int', default=60),
            url_headers=dict(type='dict', no_log=True),
            git_repo=dict(type='str'),
            git_version=dict(type='str', default='HEAD'),
            git_submodules=dict(type='bool', default=False),
            git_key_file=dict(type='path'),
            git_excludes=dict(type='list', elements='str', default=[]),
            directory=dict(type='path'),
            strip_components=dict(type='int', default=0),
            dedupe=dict(type='bool', default=True),
            drop_macos_metadata=dict(type='bool', default=True),
            shared_dirs=dict(type='list', elements='str', default=[]),
            shared_files=dict(type='list', elements='str', default=[]),
            shared_owner=dict(type='str'),
            shared_group=dict(type='str'),
            shared_mode=dict(type='str', default='2775'),
            shared_strict=dict(type='bool', default=False),
            shared_allow_external=dict(type='bool', default=False),
            shared_seed=dict(type='list', elements='str', default=[]),
            link_style=dict(type='str', choices=['relative', 'absolute'], default='relative'),
            writable_dirs=dict(type='list', elements='str', default=[]),
            writable_mode=dict(type='str', default='2775'),
            writable_method=dict(type='str', choices=['chmod', 'chgrp', 'chown', 'acl'], default='chmod'),
            writable_user=dict(type='str'),
            writable_group=dict(type='str'),
            id_file=dict(type='str'),
            next_link=dict(type='bool', default=False),
            switch_at=dict(type='float'),
            adopt=dict(type='bool', default=False),
            fsync=dict(type='bool', default=True),
            prune=dict(type='bool', default=False),
            keep=dict(type='int', default=5),
            protect=dict(type='list', elements='str', default=[]),
            min_age=dict(type='int', default=0),
            unlock=dict(type='bool', default=False),
            reason=dict(type='str', default='failed'),
            delta=dict(type='bool', default=True),
            _content_digest=dict(type='str'),
            _delta=dict(type='dict'),
            _bundle=dict(type='path'),
            _archive_origin=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = dict(
        changed=False,
        id=p['id'],
        release_path=None,
        state='absent',
        live=False,
        created=False,
        rebuilt=False,
        current_before=None,
        removed=[],
        token=p['lock_token'],
        source={},
        started_at=started_at,
    )
    started = time.monotonic()
    common = dict(fsync=p['fsync'], check_mode=module.check_mode, result=result)
    try:
        layout = _release.Layout(p['root'])
        release_id = _release.validate_id(p['id'], name='id')
        result['release_path'] = layout.release(release_id)
        _prune.validate_prune_args(keep=p['keep'], protect=p['protect'], min_age=p['min_age'])
        if p['state'] == 'present':

            def run_command(argv: list[str], env: dict | None = None) -> tuple[int, bytes, str]:
                rc, out, err = module.run_command(argv, encoding=None, environ_update=env)
                return rc, out, err.decode('utf-8', 'replace') if isinstance(err, bytes) else err

            _stage.present(
                layout=layout,
                release_id=release_id,
                options=_stage_options.StageOptions.from_params(p),
                lock=p['lock'],
                lock_token=p['lock_token'],
                lock_timeout=p['lock_timeout'],
                lock_steal=p['lock_steal'],
                owner=p['owner'],
                run_command=run_command,
                warn=module.warn,
                **common,
            )
        elif p['state'] == 'active':
            _activate.active(
                layout=layout,
                release_id=release_id,
                link_style=p['link_style'],
                switch_at=p['switch_at'],
                adopt=p['adopt'],
                prune=p['prune'],
                keep=p['keep'],
                protect=p['protect'],
                min_age=p['min_age'],
                lock_token=p['lock_token'],
                unlock=p['unlock'],
                owner=p['owner'],
                warn=module.warn,
                **common,
            )
        elif p['state'] == 'complete':
            _activate.complete(layout=layout, release_id=release_id, lock_token=p['lock_token'], **common)
        else:
            _activate.failed(
                layout=layout,
                release_id=release_id,
                reason=p['reason'],
                lock_token=p['lock_token'],
                unlock=p['unlock'],
                owner=p['owner'],
                warn=module.warn,
                **common,
            )
    except (_release.ReleaseError, _fs.FsError, _lock.LockHeld, OSError, ValueError) as exc:
        if result['release_path']:
            # Report what is on disk now: a failed staging leaves the release marked failed.
            meta = _release.read_metadata(result['release_path'])
            result['state'] = _release.state_of(meta) if meta is not None else result['state']
        _common.fail(module, exc, **result)
    result['elapsed'] = round(time.monotonic() - started, 3)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
