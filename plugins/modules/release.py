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
  - atomic.deploy.common
  - atomic.deploy.common.lock
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
  lock_timeout:
    description: Seconds until a lock taken with O(lock=true) expires.
    type: int
    default: 3600
  lock_steal:
    description: Take the lock over even if another live deploy holds it.
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
  url:
    description: The download for O(source=url).
    type: str
  checksum:
    description:
      - The expected checksum of the download or archive, C(<algorithm>:<hex digest>), for
        example C(sha256:9f86d08...). Required with O(source=url); checked for O(source=archive) when given.
    type: str
  url_timeout:
    description: Seconds before the download times out.
    type: int
    default: 60
  git_repo:
    description: The repository for O(source=git), any URL or path C(git clone) accepts.
    type: str
  git_version:
    description: The branch, tag or commit to deploy; the resolved commit is recorded.
    type: str
    default: HEAD
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
    type: bool
    default: false
  link_style:
    description: V(relative) or V(absolute) link text for shared links and for C(current).
    type: str
    choices: [relative, absolute]
    default: relative
  writable_dirs:
    description: Directories inside the release created (if missing) with O(writable_mode).
    type: list
    elements: str
    default: []
  writable_mode:
    description: Mode of O(writable_dirs).
    type: str
    default: "2775"
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
        swap it for the link with C(renameat2(RENAME_EXCHANGE)), keeping it as RV(backup).
    type: bool
    default: false
  fsync:
    description: Fsync metadata, history and the switch so they survive a crash or power loss.
    type: bool
    default: true
  prune:
    description: With O(state=active), prune old releases after the switch (see M(atomic.deploy.release_prune)).
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
  unlock:
    description: With O(state=active) or O(state=failed), release the lock held with O(lock_token) at the end.
    type: bool
    default: false
  reason:
    description: Why the release failed, with O(state=failed).
    type: str
    default: failed
attributes:
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
    strip_components: 1

- name: Stage a git tag
  atomic.deploy.release:
    root: /srv/www/example
    id: v2.4.0
    source: git
    git_repo: https://git.example.com/app.git
    git_version: v2.4.0

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
previous:
  description: The release id C(current) pointed at before the task (V(null) if none).
  returned: always
  type: str
switched_at:
  description: Epoch time of the rename, with O(state=active) when the link changed.
  returned: when switched
  type: float
switch_late:
  description: Seconds the host reached the switch after O(switch_at) (0 when on time).
  returned: when switched
  type: float
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
backup:
  description: Where an adopted C(current) directory was moved, with O(adopt=true). V(null) otherwise.
  returned: when switched
  type: str
"""

import contextlib
import io
import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.atomic.deploy.plugins.module_utils import (
    _common,
    _fs,
    _history,
    _lock,
    _release,
    _shared,
    _source,
)

R = _release


class Stage:
    """The state=present flow, with the validated inputs it needs."""

    def __init__(self, module: AnsibleModule, layout: R.Layout, release_id: str) -> None:
        self.module = module
        self.layout = layout
        self.id = release_id
        self.params = module.params
        self.check = module.check_mode
        self.warnings: list[str] = []
        p = self.params
        self.shared_dirs = [_shared.normalize_rel_path(v, name='shared_dirs') for v in p['shared_dirs']]
        self.shared_files = [_shared.normalize_rel_path(v, name='shared_files') for v in p['shared_files']]
        overlap = set(self.shared_dirs) & set(self.shared_files)
        if overlap:
            raise R.ReleaseError(
                f'{sorted(overlap)[0]} is listed in both shared_dirs and shared_files', name='shared_files'
            )
        self.writable = [_shared.normalize_rel_path(v, name='writable_dirs') for v in p['writable_dirs']]
        self.shared_mode = _shared.parse_mode(p['shared_mode'], name='shared_mode')
        self.writable_mode = _shared.parse_mode(p['writable_mode'], name='writable_mode')
        self.uid, self.gid = _shared.resolve_owner(owner=p['shared_owner'], group=p['shared_group'])
        self.source = self.validate_source()

    def validate_source(self) -> dict:
        p = self.params
        kind = p['source']
        info: dict = {'type': kind}
        if kind in ('archive', 'directory'):
            if not p['archive']:
                name = 'directory' if kind == 'directory' else 'archive'
                raise R.ReleaseError(f'source={kind} needs {name} (role variable release_{name})', name=name)
            info['archive' if kind == 'archive' else 'directory'] = p['directory'] or p['archive']
            if (not self.check or p['remote_src']) and not os.path.isfile(p['archive']):
                raise R.ReleaseError(f'archive {p["archive"]} does not exist on this host', path=p['archive'])
            if p['checksum']:
                _source.parse_checksum(p['checksum'])
        elif kind == 'url':
            if not p['url']:
                raise R.ReleaseError('source=url needs url (role variable release_url)', name='url')
            if not p['checksum']:
                raise R.ReleaseError(
                    f'source=url needs checksum for {p["url"]} (role variable release_checksum, e.g. sha256:<hex>)',
                    name='checksum',
                )
            _source.parse_checksum(p['checksum'])
            info['url'] = p['url']
        elif kind == 'git':
            if not p['git_repo']:
                raise R.ReleaseError('source=git needs git_repo (role variable release_git_repo)', name='git_repo')
            _source.validate_git_version(p['git_version'])
            info.update(git_repo=p['git_repo'], git_version=p['git_version'])
        if p['strip_components'] < 0:
            raise R.ReleaseError('strip_components must not be negative', name='strip_components')
        return info

    def validate_layout(self) -> None:
        """Refuse hostile or inconsistent on-disk state before anything is changed."""
        for path in (self.layout.releases, self.layout.deploy):
            if os.path.islink(path):
                raise R.ReleaseError(f'{path} is a symlink; refusing to deploy through it', path=path)
        try:
            st = os.lstat(self.layout.current)
        except FileNotFoundError:
            st = None
        if st is not None and not os.path.islink(self.layout.current) and not self.params['adopt']:
            raise R.ReleaseError(
                f'{self.layout.current} is a real directory or file, not a symlink; refusing to deploy over it '
                f'(set adopt=true, role variable release_adopt_current=true, to swap it for the link)',
                path=self.layout.current,
            )
        self.ensure_shared(check_mode=True)

    def ensure_shared(self, *, check_mode: bool) -> dict:
        """Create missing shared dirs and files; with check_mode, only validate and report."""
        return _shared.ensure_shared(
            root=self.layout.root,
            shared=self.layout.shared,
            dirs=self.shared_dirs,
            files=self.shared_files,
            mode=self.shared_mode,
            uid=self.uid,
            gid=self.gid,
            strict=self.params['shared_strict'],
            allow_external=self.params['shared_allow_external'],
            check_mode=check_mode,
        )

    def previous_for_dedupe(self, releases: list[R.Release], current: str | None) -> str | None:
        if not self.params['dedupe']:
            return None
        release = R.find(releases, current)
        if release is None or release.state != R.COMPLETE:
            complete = [r for r in releases if r.state == R.COMPLETE]
            release = complete[-1] if complete else None
        return release.path if release is not None else None

    def check_archive(self) -> None:
        """Refuse a file that is not a supported archive before anything is locked or created."""
        if self.params['source'] in ('archive', 'directory') and (not self.check or self.params['remote_src']):
            with extraction_errors():
                extractor().detect_format(self.params['archive'])

    def fetch(self, *, path: str, previous: str | None) -> dict:
        with extraction_errors():
            return self._fetch(path=path, previous=previous)

    def _fetch(self, *, path: str, previous: str | None) -> dict:
        p = self.params
        _extract = extractor()
        kind = p['source']
        common = dict(dest=path, previous=previous, dedupe=p['dedupe'], strip_components=p['strip_components'])
        if kind in ('archive', 'directory'):
            if p['checksum']:
                self.source['checksum'] = _source.verify_file(path=p['archive'], checksum=p['checksum'])
            return _extract.extract_archive(archive=p['archive'], **common)
        if kind == 'url':
            os.makedirs(self.layout.tmp, 0o750, exist_ok=True)

            from ansible.module_utils.urls import open_url

            def opener(url: str):
                return open_url(url, timeout=p['url_timeout'], http_agent='atomic.deploy')

            download, checksum = _source.download(
                url=p['url'], directory=self.layout.tmp, checksum=p['checksum'], opener=opener
            )
            self.source['checksum'] = checksum
            try:
                return _extract.extract_archive(archive=download, **common)
            finally:
                _fs.discard(download)
        if kind == 'git':

            def run(argv: list[str]):
                rc, out, err = self.module.run_command(argv, encoding=None)
                return rc, out, err.decode('utf-8', 'replace') if isinstance(err, bytes) else err

            sha, tar = _source.git_export(
                run=run, repo=p['git_repo'], version=p['git_version'], mirror=self.layout.repo
            )
            self.source['git_sha'] = sha
            return _extract.extract_tar_stream(fileobj=io.BytesIO(tar), **common)
        return {}

    def link(self, path: str) -> dict:
        p = self.params
        shared = self.ensure_shared(check_mode=self.check)
        self.warnings.extend(shared['warnings'])
        links = _shared.link_into_release(
            release=path,
            shared=self.layout.shared,
            paths=self.shared_dirs + self.shared_files,
            style=p['link_style'],
            check_mode=self.check,
        )
        writable = _shared.ensure_writable(
            release=path, paths=self.writable, mode=self.writable_mode, check_mode=self.check
        )
        return {'shared_created': shared['created'], 'shared_fixed': shared['fixed'], 'writable': writable, **links}


def extractor():
    """The extraction code, imported only when code is fetched: a no-op re-deploy never pays for it."""
    from ansible_collections.atomic.deploy.plugins.module_utils import _extract

    return _extract


@contextlib.contextmanager
def extraction_errors():
    """Report a refused or failed extraction like any other release error."""
    _extract = extractor()
    try:
        yield
    except _extract.ExtractError as exc:
        raise R.ReleaseError(str(exc), path=exc.path) from exc


def history(layout: R.Layout, module: AnsibleModule, event: str, release_id: str | None, **fields) -> dict:
    _common.ensure_deploy_dir(layout)  # standalone use without a lock has no .deploy yet
    return _history.append(
        path=layout.history,
        event=event,
        release_id=release_id,
        fsync=module.params['fsync'],
        host=socket.gethostname(),
        by=module.params.get('owner') or None,
        **fields,
    )


def do_present(module: AnsibleModule, layout: R.Layout, release_id: str, result: dict, warnings: list[str]) -> None:
    p = module.params
    stage = Stage(module, layout, release_id)
    result['source'] = stage.source
    releases, _ignored = R.list_releases(layout)
    current = R.current_id(layout)
    result['previous'] = current
    existing = R.find(releases, release_id)
    if existing is not None and existing.state == R.COMPLETE and current == release_id:
        result.update(live=True, state=R.COMPLETE, source=existing.meta.get('source') or stage.source)
        return
    if existing is None and os.path.lexists(layout.release(release_id)):
        raise R.ReleaseError(
            f'{layout.release(release_id)} exists and is not a release directory (a symlink or a file); '
            'refusing to deploy through it',
            path=layout.release(release_id),
        )
    if existing is not None and existing.state == R.UNMANAGED:
        raise R.ReleaseError(
            f'{existing.path} exists but is not a release made by atomic.deploy (no readable {R.METADATA_NAME}); '
            'move it away or choose another release id',
            path=existing.path,
        )
    stage.check_archive()
    stage.validate_layout()

    token = p['lock_token']
    acquired_here = False
    if p['lock']:
        token = token or _lock.new_token()
        if module.check_mode:
            try:
                _lock.acquire(
                    deploy_dir=layout.deploy,
                    token=token,
                    timeout=p['lock_timeout'],
                    steal=p['lock_steal'],
                    check_mode=True,
                )
            except _lock.LockHeld as exc:
                module.warn(f'check mode: {exc}')
        else:
            _common.ensure_deploy_dir(layout)
            outcome = _lock.acquire(
                deploy_dir=layout.deploy,
                token=token,
                owner=p['owner'],
                release_id=release_id,
                timeout=p['lock_timeout'],
                steal=p['lock_steal'],
            )
            acquired_here = outcome['changed']
            if outcome['warning']:
                module.warn(outcome['warning'])
            abandoned = (outcome['taken_over'] or {}).get('release_id')
            mark_abandoned(module, layout, abandoned, release_id, outcome['taken_over'])
    elif token and not module.check_mode:
        _lock.verify(deploy_dir=layout.deploy, token=token)
    result['token'] = token

    if existing is not None and existing.state == R.COMPLETE:
        # Built by an earlier run and not live: keep it, only re-check its shared links.
        result.update(state=R.COMPLETE, source=existing.meta.get('source') or stage.source)
        links = stage.link(existing.path)
        result['changed'] = bool(
            links['linked'] or links['shared_created'] or links['shared_fixed'] or links['writable']
        )
        result['links'] = links
        warnings.extend(stage.warnings)
        return

    result['rebuilt'] = existing is not None
    result['created'] = True
    result['changed'] = True
    result['diff'] = {'before': {'release': existing.state if existing else 'absent'}, 'after': {'release': 'staged'}}
    if module.check_mode:
        result['state'] = R.UNFINISHED
        return

    try:
        os.makedirs(layout.releases, 0o755, exist_ok=True)
        if existing is not None:
            leftover = R.discard_release(layout=layout, release=existing)
            if leftover:
                raise R.ReleaseError(
                    f'could not remove the earlier attempt of {existing.path}: {leftover[:10]}', path=existing.path
                )
        meta = R.new_metadata(release_id=release_id, owner=p['owner'], source=stage.source)
        path = R.create_release(layout=layout, release_id=release_id, meta=meta, fsync=p['fsync'])
    except BaseException:
        if acquired_here:
            _lock.release(deploy_dir=layout.deploy, token=token)
        raise
    release = R.Release(release_id=release_id, path=path, state=R.UNFINISHED, meta=meta)
    try:
        result['stats'] = stage.fetch(path=path, previous=stage.previous_for_dedupe(releases, current))
        result['links'] = stage.link(path)
        meta['source'] = stage.source
        R.write_metadata(release_path=path, meta=meta, fsync=p['fsync'])
    except BaseException as exc:
        reason = str(exc) or exc.__class__.__name__
        cleanup_failed_stage(layout=layout, release=release, reason=reason)
        history(layout, module, 'failed', release_id, reason=f'staging failed: {reason}', previous=current)
        if acquired_here:
            _lock.release(deploy_dir=layout.deploy, token=token)
        raise
    result['state'] = R.UNFINISHED
    result['source'] = stage.source
    warnings.extend(stage.warnings)


def cleanup_failed_stage(*, layout: R.Layout, release: R.Release, reason: str) -> None:
    """Free what a failed fetch wrote (the disk may be full), keep the release marked failed."""
    for entry in os.scandir(release.path):
        if entry.name != R.METADATA_NAME:
            _fs.remove_tree(entry.path)
    R.mark_failed(release=release, reason=f'staging failed: {reason}')


def mark_abandoned(module, layout: R.Layout, abandoned: str | None, own: str, record: dict | None) -> None:
    """A deploy whose lock we took over left its release unfinished: mark it so."""
    if not abandoned or abandoned == own:
        return
    releases, _ignored = R.list_releases(layout)
    release = R.find(releases, abandoned)
    if release is None or release.state != R.UNFINISHED:
        return
    reason = f'abandoned: its deploy lock was taken over ({_lock.describe(record)})'
    R.mark_failed(release=release, reason=reason)
    history(layout, module, 'failed', abandoned, reason=reason)


def usable_release(
    module: AnsibleModule, layout: R.Layout, releases: list[R.Release], release_id: str, *, verb: str
) -> R.Release | None:
    """The release to finalize or activate, with the lock checked.

    None in check mode when it does not exist: in --check of a whole deploy the staging task did not
    really create it, and the caller reports what would happen.
    """
    release = R.find(releases, release_id)
    if release is None:
        if module.check_mode:
            return None
        raise R.ReleaseError(
            f'release {release_id} does not exist in {layout.releases}', path=layout.release(release_id)
        )
    if release.state in (R.FAILED, R.UNMANAGED):
        raise R.ReleaseError(
            f'refusing to {verb} release {release_id} at {release.path}: it is {release.state}', path=release.path
        )
    if module.params['lock_token'] and not module.check_mode:
        _lock.verify(deploy_dir=layout.deploy, token=module.params['lock_token'])
    return release


def do_active(module: AnsibleModule, layout: R.Layout, release_id: str, result: dict, warnings: list[str]) -> None:
    p = module.params
    releases, _ignored = R.list_releases(layout)
    current = R.current_id(layout)
    result['previous'] = current
    target = layout.link_text(release_id, style=p['link_style'])
    result['diff'] = {'before': {'current': _fs.read_link(layout.current)}, 'after': {'current': target}}
    release = usable_release(module, layout, releases, release_id, verb='activate')
    if release is None:
        result.update(changed=True, state=R.UNFINISHED)
        return
    was_complete = release.state == R.COMPLETE
    switch = current != release_id or _fs.read_link(layout.current) != target
    result['changed'] = switch or not was_complete
    result['state'] = R.COMPLETE
    if module.check_mode:
        if p['prune']:
            remove, _kept = R.prune_plan(releases, current=release_id, keep=p['keep'], protect=p['protect'])
            result['removed'] = [r.id for r in remove]
        return
    if not was_complete:
        R.finalize(release=release, fsync=p['fsync'])
    if switch:
        outcome = R.switch_current(
            layout=layout,
            release_id=release_id,
            style=p['link_style'],
            switch_at=p['switch_at'],
            fsync=p['fsync'],
            adopt=p['adopt'],
        )
        result.update(switched_at=outcome['switched_at'], switch_late=outcome['late'], backup=outcome['backup'])
        if outcome['late'] > 0.5:
            warnings.append(
                f'switched {outcome["late"]:.3f}s after the agreed instant switch_at; other hosts switched earlier'
            )
    if p['prune']:
        releases, _ignored = R.list_releases(layout)
        remove, _kept = R.prune_plan(releases, current=release_id, keep=p['keep'], protect=p['protect'])
        pruned = R.execute_prune(layout=layout, remove=remove)
        result['removed'] = pruned['removed']
        warnings.extend(
            f'could not prune {line} (left whole: this user cannot delete them)' for line in R.blocked_messages(pruned)
        )
        result['changed'] = result['changed'] or bool(pruned['removed'] or pruned['leftovers'])
    if switch or not was_complete:
        history(
            layout,
            module,
            'deploy' if not was_complete else 'activate',
            release_id,
            previous=current,
            switched_at=result.get('switched_at'),
            switch_late=result.get('switch_late'),
            removed=result['removed'] or None,
            source=release.meta.get('source') or None,
        )
    if p['unlock'] and p['lock_token']:
        _lock.release(deploy_dir=layout.deploy, token=p['lock_token'])
        result['unlocked'] = True


def do_complete(module: AnsibleModule, layout: R.Layout, release_id: str, result: dict, warnings: list[str]) -> None:
    releases, _ignored = R.list_releases(layout)
    release = usable_release(module, layout, releases, release_id, verb='finalize')
    if release is None:
        result.update(changed=True, state=R.COMPLETE)
        return
    result['state'] = R.COMPLETE
    if release.state == R.UNFINISHED:
        result['changed'] = True
        if not module.check_mode:
            R.finalize(release=release, fsync=module.params['fsync'])


def do_failed(module: AnsibleModule, layout: R.Layout, release_id: str, result: dict, warnings: list[str]) -> None:
    p = module.params
    releases, _ignored = R.list_releases(layout)
    release = R.find(releases, release_id)
    result['previous'] = R.current_id(layout)
    if release is None:
        result['state'] = 'absent'
    elif release.state == R.UNMANAGED:
        raise R.ReleaseError(
            f'refusing to mark {release.path} failed: it is not a release made by atomic.deploy', path=release.path
        )
    elif release.state == R.FAILED:
        result['state'] = R.FAILED
    else:
        result.update(changed=True, state=R.FAILED)
        if release.current:
            warnings.append(
                f'release {release_id} is live; marking it failed does not roll it back (use release_rollback)'
            )
        if not module.check_mode:
            R.mark_failed(release=release, reason=p['reason'], fsync=p['fsync'])
            history(layout, module, 'failed', release_id, reason=p['reason'], previous=result['previous'])
    if p['unlock'] and p['lock_token'] and not module.check_mode:
        outcome = _lock.release(deploy_dir=layout.deploy, token=p['lock_token'])
        result['unlocked'] = outcome['changed']


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            _common.ROOT_SPEC,
            **_common.LOCK_SPEC,
            id=dict(type='str', required=True),
            state=dict(type='str', choices=['present', 'complete', 'active', 'failed'], default='present'),
            lock=dict(type='bool', default=False),
            lock_timeout=dict(type='int', default=3600),
            lock_steal=dict(type='bool', default=False),
            source=dict(type='str', choices=['archive', 'url', 'git', 'directory', 'none'], default='none'),
            archive=dict(type='path'),
            remote_src=dict(type='bool', default=False),
            url=dict(type='str'),
            checksum=dict(type='str'),
            url_timeout=dict(type='int', default=60),
            git_repo=dict(type='str'),
            git_version=dict(type='str', default='HEAD'),
            directory=dict(type='path'),
            strip_components=dict(type='int', default=0),
            dedupe=dict(type='bool', default=True),
            shared_dirs=dict(type='list', elements='str', default=[]),
            shared_files=dict(type='list', elements='str', default=[]),
            shared_owner=dict(type='str'),
            shared_group=dict(type='str'),
            shared_mode=dict(type='str', default='2775'),
            shared_strict=dict(type='bool', default=False),
            shared_allow_external=dict(type='bool', default=False),
            link_style=dict(type='str', choices=['relative', 'absolute'], default='relative'),
            writable_dirs=dict(type='list', elements='str', default=[]),
            writable_mode=dict(type='str', default='2775'),
            switch_at=dict(type='float'),
            adopt=dict(type='bool', default=False),
            fsync=dict(type='bool', default=True),
            prune=dict(type='bool', default=False),
            keep=dict(type='int', default=5),
            protect=dict(type='list', elements='str', default=[]),
            unlock=dict(type='bool', default=False),
            reason=dict(type='str', default='failed'),
        ),
        supports_check_mode=True,
    )
    warnings: list[str] = []
    layout = _common.layout_or_fail(module)
    result = dict(
        changed=False,
        id=module.params['id'],
        release_path=None,
        state='absent',
        live=False,
        created=False,
        rebuilt=False,
        previous=None,
        removed=[],
        token=module.params['lock_token'],
        source={},
    )
    started = time.monotonic()
    try:
        release_id = R.validate_id(module.params['id'], name='id')
        result['release_path'] = layout.release(release_id)
        if module.params['keep'] < 1:
            raise R.ReleaseError(f'keep must be at least 1, got {module.params["keep"]}', name='keep')
        for ident in module.params['protect']:
            R.validate_id(ident, name='protect')
        handler = {'present': do_present, 'active': do_active, 'complete': do_complete, 'failed': do_failed}
        handler[module.params['state']](module, layout, release_id, result, warnings)
    except (R.ReleaseError, _fs.FsError, _lock.LockHeld, OSError, ValueError) as exc:
        if result['release_path']:
            # Report what is on disk now: a failed staging leaves the release marked failed.
            meta = R.read_metadata(result['release_path'])
            result['state'] = R.state_of(meta) if meta is not None else result['state']
        _common.fail(module, exc, **result)
    for warning in warnings:
        module.warn(warning)
    result['elapsed'] = round(time.monotonic() - started, 3)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
