# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The flows of the ``release`` module: stage (``present``), finalize (``complete``), switch
(``active``) and fail (``failed``) one release of a deploy root.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: plain pytest tests it with ``tmp_path``.

Every flow is a keyword-only function. It fills in the ``result`` dict it is given and returns it;
on an exception (:class:`ReleaseError`, ``FsError``, ``LockHeld``, ``OSError``, ``ValueError``)
``result`` holds what was known so far, which the module reports with the failure. Warnings go to
the ``warn`` callable. The module's ``main()`` builds the argument spec, calls one flow and calls
``exit_json`` once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import subprocess
import typing as t

from ansible_collections.atomic.deploy.plugins.module_utils import _fs, _history, _lock, _release, _shared, _source
from ansible_collections.atomic.deploy.plugins.module_utils._release import Layout, Release, ReleaseError

Warn = t.Callable[[str], None]
RunCommand = t.Callable[[t.List[str]], t.Tuple[int, bytes, str]]


@dataclasses.dataclass(frozen=True)
class StageOptions:
    """What ``state=present`` is asked to build, as the module's parameters give it."""

    source: str = 'none'
    archive: str | None = None
    remote_src: bool = False
    url: str | None = None
    checksum: str | None = None
    url_timeout: int = 60
    git_repo: str | None = None
    git_version: str = 'HEAD'
    directory: str | None = None
    strip_components: int = 0
    dedupe: bool = True
    shared_dirs: t.Sequence[str] = ()
    shared_files: t.Sequence[str] = ()
    shared_owner: str | None = None
    shared_group: str | None = None
    shared_mode: str = '2775'
    shared_strict: bool = False
    shared_allow_external: bool = False
    link_style: str = 'relative'
    writable_dirs: t.Sequence[str] = ()
    writable_mode: str = '2775'
    adopt: bool = False
    id_file: str | None = None
    next_link: bool = False
    delta: bool = True
    content_digest: str | None = None
    delta_plan: t.Mapping[str, t.Any] | None = None

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> StageOptions:
        return cls(**{field.name: params[field.name] for field in dataclasses.fields(cls) if field.name in params})


@dataclasses.dataclass
class StagePlan:
    """The validated, normalised form of :class:`StageOptions`."""

    shared_dirs: list[str]
    shared_files: list[str]
    writable_dirs: list[str]
    shared_mode: int
    writable_mode: int
    uid: int
    gid: int
    source: dict
    id_file: str | None = None


def plan_stage(*, options: StageOptions, check_mode: bool) -> StagePlan:
    """Validate the staging inputs; raise ReleaseError naming the option (and its role variable)."""
    shared_dirs = [_shared.normalize_rel_path(v, name='shared_dirs') for v in options.shared_dirs]
    shared_files = [_shared.normalize_rel_path(v, name='shared_files') for v in options.shared_files]
    overlap = set(shared_dirs) & set(shared_files)
    if overlap:
        raise ReleaseError(f'{sorted(overlap)[0]} is listed in both shared_dirs and shared_files', name='shared_files')
    uid, gid = _shared.resolve_owner(owner=options.shared_owner, group=options.shared_group)
    return StagePlan(
        shared_dirs=shared_dirs,
        shared_files=shared_files,
        writable_dirs=[_shared.normalize_rel_path(v, name='writable_dirs') for v in options.writable_dirs],
        shared_mode=_shared.parse_mode(options.shared_mode, name='shared_mode'),
        writable_mode=_shared.parse_mode(options.writable_mode, name='writable_mode'),
        uid=uid,
        gid=gid,
        source=source_info(options=options, check_mode=check_mode),
        id_file=id_file_path(options=options, shared=shared_dirs + shared_files),
    )


def id_file_path(*, options: StageOptions, shared: list[str]) -> str | None:
    """The normalised id_file path, refusing one that would land in the metadata or in shared/."""
    if not options.id_file:
        return None
    rel = _shared.normalize_rel_path(options.id_file, name='id_file')
    if rel in (_release.METADATA_NAME, '.release.manifest.json'):
        raise ReleaseError(f'id_file {rel} is the release metadata file; choose another name', name='id_file')
    for path in shared:
        if rel == path or rel.startswith(path + '/'):
            raise ReleaseError(
                f'id_file {rel} is inside the shared path {path}; it must be a file of the release', name='id_file'
            )
    return rel


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


def source_info(*, options: StageOptions, check_mode: bool) -> dict:
    """The ``source`` record of the release, after checking that the source is fully given."""
    o = options
    kind = o.source
    info: dict = {'type': kind}
    if kind in ('archive', 'directory'):
        if not o.archive:
            name = 'directory' if kind == 'directory' else 'archive'
            raise ReleaseError(f'source={kind} needs {name} (role variable release_{name})', name=name)
        info['archive' if kind == 'archive' else 'directory'] = o.directory or o.archive
        if (not check_mode or o.remote_src) and not o.delta_plan and not os.path.isfile(o.archive):
            raise ReleaseError(f'archive {o.archive} does not exist on this host', path=o.archive)
        if o.checksum:
            _source.parse_checksum(o.checksum)
    elif kind == 'url':
        if not o.url:
            raise ReleaseError('source=url needs url (role variable release_url)', name='url')
        if not o.checksum:
            raise ReleaseError(
                f'source=url needs checksum for {o.url} (role variable release_checksum, e.g. sha256:<hex>)',
                name='checksum',
            )
        _source.parse_checksum(o.checksum)
        info['url'] = o.url
    elif kind == 'git':
        if not o.git_repo:
            raise ReleaseError('source=git needs git_repo (role variable release_git_repo)', name='git_repo')
        _source.validate_git_version(o.git_version)
        info.update(git_repo=o.git_repo, git_version=o.git_version)
    if o.strip_components < 0:
        raise ReleaseError('strip_components must not be negative', name='strip_components')
    return info


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


def dedupe_base(*, releases: list[Release], current: str | None, dedupe: bool) -> str | None:
    """The release whose unchanged files a new one hard-links: current if complete, else the newest complete."""
    if not dedupe:
        return None
    release = _release.find(releases, current)
    if release is None or release.state != _release.COMPLETE:
        complete = [r for r in releases if r.state == _release.COMPLETE]
        release = complete[-1] if complete else None
    return release.path if release is not None else None


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
        raise ReleaseError(str(exc), path=exc.path) from exc


def check_archive(*, options: StageOptions, check_mode: bool) -> None:
    """Refuse a file that is not a supported archive before anything is locked or created."""
    plan = options.delta_plan or {}
    if plan.get('probe') or plan.get('bundle'):
        return  # the archive is on the controller: the action plugin read it
    if options.source in ('archive', 'directory') and (not check_mode or options.remote_src):
        with extraction_errors():
            extractor().detect_format(options.archive)


def run_argv(argv: list[str]) -> tuple[int, bytes, str]:
    """Run a command without a shell: (rc, stdout bytes, stderr text). The module passes its run_command."""
    # the pure-logic default; the module passes AnsibleModule.run_command instead (ansible-core 2.21's pylint)
    proc = subprocess.run(argv, capture_output=True, check=False)  # pylint: disable=ansible-bad-function
    return proc.returncode, proc.stdout, proc.stderr.decode('utf-8', 'replace')


def open_download(url: str, *, timeout: int):
    from ansible.module_utils.urls import open_url

    return open_url(url, timeout=timeout, http_agent='atomic.deploy')


def fetch(
    *,
    layout: Layout,
    path: str,
    options: StageOptions,
    plan: StagePlan,
    base: str | None,
    run_command: RunCommand | None = None,
    digests: dict | None = None,
) -> dict:
    """Put the code into the release directory ``path``; return the extraction figures.

    ``digests``, when given, gets the sha256 of every file written (for the content manifest).

    Records the verified checksum or the resolved git sha in ``plan.source``.
    """
    with extraction_errors():
        _extract = extractor()
        o = options
        common = dict(dest=path, previous=base, dedupe=o.dedupe, strip_components=o.strip_components, digests=digests)
        if o.source in ('archive', 'directory'):
            if o.checksum:
                plan.source['checksum'] = _source.verify_file(path=o.archive, checksum=o.checksum)
            return _extract.extract_archive(archive=o.archive, **common)
        if o.source == 'url':
            os.makedirs(layout.tmp, 0o750, exist_ok=True)
            download, checksum = _source.download(
                url=o.url,
                directory=layout.tmp,
                checksum=o.checksum,
                opener=lambda url: open_download(url, timeout=o.url_timeout),
            )
            plan.source['checksum'] = checksum
            try:
                return _extract.extract_archive(archive=download, **common)
            finally:
                _fs.discard(download)
        if o.source == 'git':
            sha, tar = _source.git_export(
                run=run_command or run_argv, repo=o.git_repo, version=o.git_version, mirror=layout.repo
            )
            plan.source['git_sha'] = sha
            return _extract.extract_tar_stream(fileobj=io.BytesIO(tar), **common)
        return {}


def content():
    """Manifests, delta assembly and identity checks (docs/delta.md), imported when needed."""
    from ansible_collections.atomic.deploy.plugins.module_utils import _delta_host

    return _delta_host


@contextlib.contextmanager
def manifest_errors():
    from ansible_collections.atomic.deploy.plugins.module_utils import _manifest

    try:
        yield
    except _manifest.ManifestError as exc:
        raise ReleaseError(str(exc), path=exc.path) from exc


def stage_content(
    *,
    layout: Layout,
    path: str,
    release_id: str,
    releases: list[Release],
    current: str | None,
    options: StageOptions,
    plan: StagePlan,
    fsync: bool = True,
    run_command: RunCommand | None = None,
) -> dict:
    """Fetch the code (or assemble it from a delta bundle) into ``path``, then write its manifest."""
    delta_plan = options.delta_plan or {}
    entries = None
    digests: dict = {}
    if delta_plan.get('bundle'):
        with manifest_errors():
            outcome = content().stage_from_bundle(
                tmp=layout.tmp,
                dest=path,
                bundle=delta_plan['bundle'],
                releases=releases,
                release_id=release_id,
                dedupe=options.dedupe,
            )
        stats, entries = outcome['stats'], outcome['entries']
        if options.checksum:
            # The archive stayed on the controller, which checked it against checksum.
            plan.source['checksum'] = options.checksum.lower()
    else:
        base = dedupe_base(releases=releases, current=current, dedupe=options.dedupe)
        stats = fetch(
            layout=layout, path=path, options=options, plan=plan, base=base, run_command=run_command, digests=digests
        )
    if options.source != 'none':
        with manifest_errors():
            plan.source['content_digest'] = content().write_manifest(
                release=path,
                entries=entries,
                exclude=plan.shared_dirs
                + plan.shared_files
                + plan.writable_dirs
                + ([plan.id_file] if plan.id_file else []),
                content_digest=options.content_digest if options.source in ('archive', 'directory') else None,
                fsync=fsync,
                digests=digests,
            )
    return stats


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
    if existing is not None and existing.state == _release.COMPLETE:
        conflict = content().identity_conflict(
            release=existing,
            content_digest=options.content_digest,
            checksum=options.checksum,
            git_version=options.git_version if options.source == 'git' else None,
        )
        if conflict:
            raise ReleaseError(conflict, path=existing.path)
    live = _release.find(releases, current)
    if live is not None and (delta_plan.get('probe') or not delta_plan):
        drifted, _report = content().drift_warning(release=live)
        if drifted:
            warn(drifted)
    if existing is not None and existing.state == _release.COMPLETE and current == release_id:
        result.update(live=True, state=_release.COMPLETE, source=existing.meta.get('source') or plan.source)
        return result
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
    check_archive(options=options, check_mode=check_mode)
    check_layout(layout=layout, plan=plan, options=options)

    token = lock_token
    acquired_here = False
    if lock:
        token, acquired_here = take_lock(
            layout=layout,
            release_id=release_id,
            token=token,
            timeout=lock_timeout,
            steal=lock_steal,
            owner=owner,
            fsync=fsync,
            check_mode=check_mode,
            warn=warn,
        )
    elif token and not check_mode:
        _lock.verify(deploy_dir=layout.deploy, token=token)
    result['token'] = token
    # The probe run of this deploy took the lock: a failure of this run gives it back, as it would have.
    acquired_here = acquired_here or bool(delta_plan.get('lock_acquired'))

    if existing is not None and existing.state == _release.COMPLETE:
        # Built by an earlier run and not live: keep it, only re-check its shared links.
        result.update(state=_release.COMPLETE, source=existing.meta.get('source') or plan.source)
        links = link_release(
            layout=layout, path=existing.path, plan=plan, options=options, check_mode=check_mode, warn=warn
        )
        result['changed'] = bool(
            links['linked'] or links['shared_created'] or links['shared_fixed'] or links['writable']
        )
        result['links'] = links
        if plan.id_file and write_id_file(
            release_path=existing.path, rel=plan.id_file, release_id=release_id, fsync=fsync, check_mode=check_mode
        ):
            result['changed'] = True
        staged_next(
            layout=layout, release_id=release_id, options=options, fsync=fsync, check_mode=check_mode, result=result
        )
        return result

    if delta_plan.get('probe'):
        result['changed'] = acquired_here
        if not check_mode:
            result['delta'] = dict(
                content().probe(releases=releases, exclude=release_id), probe=True, lock_acquired=acquired_here
            )
        return result

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
        return result

    try:
        os.makedirs(layout.releases, 0o755, exist_ok=True)
        if existing is not None:
            leftover = _release.discard_release(layout=layout, release=existing)
            if leftover:
                raise ReleaseError(
                    f'could not remove the earlier attempt of {existing.path}: {leftover[:10]}', path=existing.path
                )
        meta = _release.new_metadata(release_id=release_id, owner=owner, source=plan.source)
        path = _release.create_release(layout=layout, release_id=release_id, meta=meta, fsync=fsync)
    except BaseException:
        if acquired_here:
            _lock.release(deploy_dir=layout.deploy, token=token)
        raise
    release = Release(release_id=release_id, path=path, state=_release.UNFINISHED, meta=meta)
    try:
        result['stats'] = stage_content(
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
    return result


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
            pruned = _release.prune(
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
        pruned = _release.prune(
            layout=layout, current=release_id, keep=keep, protect=protect, previous=current, min_age=min_age
        )
        result['removed'] = pruned['removed']
        for line in _release.blocked_messages(pruned):
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
