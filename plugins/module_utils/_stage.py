# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The staging flow of the ``release`` module (``state=present``): lock, create, fetch or assemble the
code, link the shared paths, write the id file and the ``next`` link.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: plain pytest tests it with ``tmp_path``.

Every flow is a keyword-only function. It fills in the ``result`` dict it is given and returns it;
on an exception (:class:`ReleaseError`, ``FsError``, ``LockHeld``, ``OSError``, ``ValueError``)
``result`` holds what was known so far, which the module reports with the failure. Warnings go to
the ``warn`` callable. The module's ``main()`` builds the argument spec, calls one flow and calls
``exit_json`` once. The other flows (``active``, ``complete``, ``failed``) are in ``_activate.py``;
the options and their checks in ``_stage_options.py``.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.atomic.deploy.plugins.module_utils import _fetch, _fs, _history, _lock, _release, _shared
from ansible_collections.atomic.deploy.plugins.module_utils._release import Layout, Release, ReleaseError
from ansible_collections.atomic.deploy.plugins.module_utils._stage_options import (
    RunCommand,
    StageOptions,
    StagePlan,
    Warn,
    plan_stage,
)


def write_id_file(*, release_path: str, rel: str, release_id: str, fsync: bool, check_mode: bool) -> bool:
    """Write ``<release>/<rel>`` with the release id and a newline (0644); True when it changed.

    Every parent must be a real directory of the release: the file is never written through a link.
    """
    path = os.path.join(release_path, rel)
    parent = release_path
    for part in rel.split('/')[:-1]:
        parent = os.path.join(parent, part)
        if os.path.islink(parent) or not os.path.isdir(parent):
            raise ReleaseError(
                f'id_file {rel}: {parent} is not a directory of the release (missing or a link)', path=parent
            )
    data = f'{release_id}\n'.encode()
    same = False
    if not os.path.islink(path) and os.path.isfile(path):
        with open(path, 'rb') as handle:
            same = handle.read() == data and (os.stat(path).st_mode & 0o7777) == 0o644
    if same:
        return False
    if not check_mode:
        _fs.atomic_write(path=path, data=data, mode=0o644, fsync=fsync)
    return True


def point_next(*, layout: Layout, release_id: str, link_style: str, fsync: bool, check_mode: bool) -> bool:
    """Point ``ROOT/next`` at the staged release (temp link + rename(2) + fsync); True when it changed."""
    text = layout.link_text(release_id, style=link_style)
    if os.path.lexists(layout.next) and not os.path.islink(layout.next):
        raise ReleaseError(
            f'{layout.next} is a real directory or file, not a symlink; refusing to replace it with the next link',
            path=layout.next,
        )
    if _fs.read_link(layout.next) == text:
        return False
    if not check_mode:
        _fs.swap_symlink(path=layout.next, target=text, fsync=fsync)
    return True


def ensure_shared(*, layout: Layout, plan: StagePlan, options: StageOptions, check_mode: bool) -> dict:
    """Create missing shared dirs and files; with check_mode, only validate and report."""
    return _shared.ensure_shared(
        root=layout.root,
        shared=layout.shared,
        dirs=plan.shared_dirs,
        files=plan.shared_files,
        mode=plan.shared_mode,
        uid=plan.uid,
        gid=plan.gid,
        strict=options.shared_strict,
        allow_external=options.shared_allow_external,
        check_mode=check_mode,
    )


def check_layout(*, layout: Layout, plan: StagePlan, options: StageOptions) -> None:
    """Refuse hostile or inconsistent on-disk state before anything is changed."""
    for path in (layout.releases, layout.deploy):
        if os.path.islink(path):
            raise ReleaseError(f'{path} is a symlink; refusing to deploy through it', path=path)
    try:
        st = os.lstat(layout.current)
    except FileNotFoundError:
        st = None
    if st is not None and not os.path.islink(layout.current) and not options.adopt:
        raise ReleaseError(
            f'{layout.current} is a real directory or file, not a symlink; refusing to deploy over it '
            f'(set adopt=true, role variable release_adopt_current=true, to swap it for the link)',
            path=layout.current,
        )
    ensure_shared(layout=layout, plan=plan, options=options, check_mode=True)


def link_release(
    *, layout: Layout, path: str, plan: StagePlan, options: StageOptions, check_mode: bool, warn: Warn
) -> dict:
    """Create the shared paths, link them into the release at ``path`` and create the writable dirs."""
    shared = ensure_shared(layout=layout, plan=plan, options=options, check_mode=check_mode)
    for warning in shared['warnings']:
        warn(warning)
    links = _shared.link_into_release(
        release=path,
        shared=layout.shared,
        paths=plan.shared_dirs + plan.shared_files,
        style=options.link_style,
        check_mode=check_mode,
    )
    writable = _shared.ensure_writable(
        release=path, paths=plan.writable_dirs, mode=plan.writable_mode, check_mode=check_mode
    )
    return {'shared_created': shared['created'], 'shared_fixed': shared['fixed'], 'writable': writable, **links}


def cleanup_failed_stage(*, release: Release, reason: str, fsync: bool = True) -> None:
    """Free what a failed fetch wrote (the disk may be full), keep the release marked failed."""
    for entry in os.scandir(release.path):
        if entry.name != _release.METADATA_NAME:
            _fs.remove_tree(entry.path)
    _release.mark_failed(release=release, reason=f'staging failed: {reason}', fsync=fsync)


def mark_abandoned(
    *, layout: Layout, abandoned: str | None, own: str, record: dict | None, owner: dict | None, fsync: bool
) -> None:
    """A deploy whose lock we took over left its release unfinished: mark it so."""
    if not abandoned or abandoned == own:
        return
    releases, _ignored = _release.list_releases(layout)
    release = _release.find(releases, abandoned)
    if release is None or release.state != _release.UNFINISHED:
        return
    reason = f'abandoned: its deploy lock was taken over ({_lock.describe(record)})'
    _release.mark_failed(release=release, reason=reason, fsync=fsync)
    _history.record(layout=layout, event='failed', release_id=abandoned, owner=owner, fsync=fsync, reason=reason)


def take_lock(
    *,
    layout: Layout,
    release_id: str,
    token: str | None,
    timeout: int,
    steal: bool,
    owner: dict | None,
    fsync: bool,
    check_mode: bool,
    warn: Warn,
) -> tuple[str, bool]:
    """Take the deploy lock for a staging run: (token, taken by this run)."""
    token = token or _lock.new_token()
    if check_mode:
        try:
            _lock.acquire(deploy_dir=layout.deploy, token=token, timeout=timeout, steal=steal, check_mode=True)
        except _lock.LockHeld as exc:
            warn(f'check mode: {exc}')
        return token, False
    _release.ensure_deploy_dir(layout)
    outcome = _lock.acquire(
        deploy_dir=layout.deploy, token=token, owner=owner, release_id=release_id, timeout=timeout, steal=steal
    )
    if outcome['warning']:
        warn(outcome['warning'])
    abandoned = (outcome['taken_over'] or {}).get('release_id')
    mark_abandoned(
        layout=layout, abandoned=abandoned, own=release_id, record=outcome['taken_over'], owner=owner, fsync=fsync
    )
    return token, outcome['changed']


def present(
    *,
    layout: Layout,
    release_id: str,
    options: StageOptions,
    lock: bool = False,
    lock_token: str | None = None,
    lock_timeout: int = 3600,
    lock_steal: bool = False,
    owner: dict | None = None,
    fsync: bool = True,
    check_mode: bool = False,
    run_command: RunCommand | None = None,
    warn: Warn,
    result: dict,
) -> dict:
    """Stage ``releases/<release_id>``: lock, create with the in-progress marker, fetch, link shared paths.

    A complete live release is left alone (``live``); a complete one that is not live only has its
    shared links checked; an unfinished or failed one is rebuilt. A failed fetch marks the release
    failed, frees what it wrote, records the failure and releases a lock taken here.
    """
    for key, value in (('live', False), ('created', False), ('rebuilt', False), ('token', lock_token)):
        result.setdefault(key, value)
    plan = plan_stage(options=options, check_mode=check_mode)
    result['source'] = plan.source
    releases, _ignored = _release.list_releases(layout)
    current = _release.current_id(layout)
    result['current_before'] = current
    existing = _release.find(releases, release_id)
    delta_plan = options.delta_plan or {}
    check_identity(existing=existing, options=options)
    warn_drift(releases=releases, current=current, delta_plan=delta_plan, warn=warn)
    if existing is not None and existing.state == _release.COMPLETE and current == release_id:
        result.update(live=True, state=_release.COMPLETE, source=existing.meta.get('source') or plan.source)
        return result
    refuse_foreign(layout=layout, release_id=release_id, existing=existing)
    _fetch.check_archive(options=options, check_mode=check_mode)
    check_layout(layout=layout, plan=plan, options=options)

    token, acquired_here = lock_for_staging(
        layout=layout,
        release_id=release_id,
        lock=lock,
        token=lock_token,
        timeout=lock_timeout,
        steal=lock_steal,
        owner=owner,
        fsync=fsync,
        check_mode=check_mode,
        warn=warn,
    )
    result['token'] = token
    # The probe run of this deploy took the lock: a failure of this run gives it back, as it would have.
    acquired_here = acquired_here or bool(delta_plan.get('lock_acquired'))

    if existing is not None and existing.state == _release.COMPLETE:
        return recheck_complete(
            layout=layout,
            release=existing,
            plan=plan,
            options=options,
            fsync=fsync,
            check_mode=check_mode,
            warn=warn,
            result=result,
        )

    if delta_plan.get('probe'):
        result['changed'] = acquired_here
        if not check_mode:
            result['delta'] = dict(
                _fetch.content().probe(releases=releases, exclude=release_id), probe=True, lock_acquired=acquired_here
            )
        return result

    build_release(
        layout=layout,
        release_id=release_id,
        existing=existing,
        releases=releases,
        current=current,
        options=options,
        plan=plan,
        owner=owner,
        token=token,
        acquired_here=acquired_here,
        fsync=fsync,
        check_mode=check_mode,
        run_command=run_command,
        warn=warn,
        result=result,
    )
    return result


def check_identity(*, existing: Release | None, options: StageOptions) -> None:
    """Refuse to reuse the id of a complete release that holds other content than this deploy's."""
    if existing is None or existing.state != _release.COMPLETE:
        return
    conflict = _fetch.content().identity_conflict(
        release=existing,
        content_digest=options.content_digest,
        checksum=options.checksum,
        git_version=options.git_version if options.source == 'git' else None,
    )
    if conflict:
        raise ReleaseError(conflict, path=existing.path)


def warn_drift(*, releases: list[Release], current: str | None, delta_plan: t.Mapping[str, t.Any], warn: Warn) -> None:
    """Warn when files of the live release changed on disk since it was deployed (once per deploy)."""
    live = _release.find(releases, current)
    if live is not None and (delta_plan.get('probe') or not delta_plan):
        drifted, _report = _fetch.content().drift_warning(release=live)
        if drifted:
            warn(drifted)


def refuse_foreign(*, layout: Layout, release_id: str, existing: Release | None) -> None:
    """Refuse a release path that is not a release made by atomic.deploy: never deploy through it."""
    if existing is None and os.path.lexists(layout.release(release_id)):
        raise ReleaseError(
            f'{layout.release(release_id)} exists and is not a release directory (a symlink or a file); '
            'refusing to deploy through it',
            path=layout.release(release_id),
        )
    if existing is not None and existing.state == _release.UNMANAGED:
        raise ReleaseError(
            f'{existing.path} exists but is not a release made by atomic.deploy '
            f'(no readable {_release.METADATA_NAME}); move it away or choose another release id',
            path=existing.path,
        )


def lock_for_staging(
    *,
    layout: Layout,
    release_id: str,
    lock: bool,
    token: str | None,
    timeout: int,
    steal: bool,
    owner: dict | None,
    fsync: bool,
    check_mode: bool,
    warn: Warn,
) -> tuple[str | None, bool]:
    """Take the deploy lock (``lock``) or check the one held with ``token``: (token, taken by this run)."""
    if lock:
        return take_lock(
            layout=layout,
            release_id=release_id,
            token=token,
            timeout=timeout,
            steal=steal,
            owner=owner,
            fsync=fsync,
            check_mode=check_mode,
            warn=warn,
        )
    if token and not check_mode:
        _lock.verify(deploy_dir=layout.deploy, token=token)
    return token, False


def recheck_complete(
    *,
    layout: Layout,
    release: Release,
    plan: StagePlan,
    options: StageOptions,
    fsync: bool,
    check_mode: bool,
    warn: Warn,
    result: dict,
) -> dict:
    """A release built by an earlier run and not live: keep it, only re-check its shared links and id file."""
    result.update(state=_release.COMPLETE, source=release.meta.get('source') or plan.source)
    links = link_release(layout=layout, path=release.path, plan=plan, options=options, check_mode=check_mode, warn=warn)
    result['changed'] = bool(links['linked'] or links['shared_created'] or links['shared_fixed'] or links['writable'])
    result['links'] = links
    if plan.id_file and write_id_file(
        release_path=release.path, rel=plan.id_file, release_id=release.id, fsync=fsync, check_mode=check_mode
    ):
        result['changed'] = True
    staged_next(
        layout=layout, release_id=release.id, options=options, fsync=fsync, check_mode=check_mode, result=result
    )
    return result


def create_fresh(
    *,
    layout: Layout,
    release_id: str,
    existing: Release | None,
    owner: dict | None,
    source: dict,
    token: str | None,
    acquired_here: bool,
    fsync: bool,
) -> Release:
    """Create ``releases/<release_id>`` marked in progress, removing an earlier attempt first.

    On failure, a lock this run took is given back.
    """
    try:
        os.makedirs(layout.releases, 0o755, exist_ok=True)
        if existing is not None:
            leftover = _release.discard_release(layout=layout, release=existing)
            if leftover:
                raise ReleaseError(
                    f'could not remove the earlier attempt of {existing.path}: {leftover[:10]}', path=existing.path
                )
        meta = _release.new_metadata(release_id=release_id, owner=owner, source=source)
        path = _release.create_release(layout=layout, release_id=release_id, meta=meta, fsync=fsync)
    except BaseException:
        if acquired_here:
            _lock.release(deploy_dir=layout.deploy, token=token)
        raise
    return Release(release_id=release_id, path=path, state=_release.UNFINISHED, meta=meta)


def build_release(
    *,
    layout: Layout,
    release_id: str,
    existing: Release | None,
    releases: list[Release],
    current: str | None,
    options: StageOptions,
    plan: StagePlan,
    owner: dict | None,
    token: str | None,
    acquired_here: bool,
    fsync: bool,
    check_mode: bool,
    run_command: RunCommand | None,
    warn: Warn,
    result: dict,
) -> None:
    """Create the release, fetch its code, link the shared paths and write its metadata (unfinished).

    In check mode only report it. A failure marks the release failed, frees what it wrote, records it
    and gives back a lock taken here.
    """
    result['rebuilt'] = existing is not None
    result['created'] = True
    result['changed'] = True
    result['diff'] = {
        'before': {'release': existing.state if existing else 'absent'},
        'after': {'release': 'staged'},
    }
    if check_mode:
        result['state'] = _release.UNFINISHED
        staged_next(layout=layout, release_id=release_id, options=options, fsync=fsync, check_mode=True, result=result)
        return
    release = create_fresh(
        layout=layout,
        release_id=release_id,
        existing=existing,
        owner=owner,
        source=plan.source,
        token=token,
        acquired_here=acquired_here,
        fsync=fsync,
    )
    path, meta = release.path, release.meta
    try:
        result['stats'] = _fetch.stage_content(
            layout=layout,
            path=path,
            release_id=release_id,
            releases=releases,
            current=current,
            options=options,
            plan=plan,
            fsync=fsync,
            run_command=run_command,
        )
        result['links'] = link_release(
            layout=layout, path=path, plan=plan, options=options, check_mode=False, warn=warn
        )
        if plan.id_file:
            write_id_file(release_path=path, rel=plan.id_file, release_id=release_id, fsync=fsync, check_mode=False)
        meta['source'] = plan.source
        _release.write_metadata(release_path=path, meta=meta, fsync=fsync)
        staged_next(layout=layout, release_id=release_id, options=options, fsync=fsync, check_mode=False, result=result)
    except BaseException as exc:
        reason = str(exc) or exc.__class__.__name__
        cleanup_failed_stage(release=release, reason=reason, fsync=fsync)
        _history.record(
            layout=layout,
            event='failed',
            release_id=release_id,
            owner=owner,
            fsync=fsync,
            reason=f'staging failed: {reason}',
            previous=current,
        )
        if acquired_here:
            _lock.release(deploy_dir=layout.deploy, token=token)
        raise
    result['state'] = _release.UNFINISHED
    result['source'] = plan.source


def staged_next(
    *, layout: Layout, release_id: str, options: StageOptions, fsync: bool, check_mode: bool, result: dict
) -> None:
    """With next_link, point ROOT/next at the staged release and report it in ``result``."""
    if not options.next_link:
        return
    before = _fs.read_link(layout.next)
    if point_next(
        layout=layout, release_id=release_id, link_style=options.link_style, fsync=fsync, check_mode=check_mode
    ):
        result['changed'] = True
    result['next'] = layout.link_text(release_id, style=options.link_style)
    diff = result.setdefault('diff', {'before': {}, 'after': {}})
    diff['before']['next'] = before
    diff['after']['next'] = result['next']
