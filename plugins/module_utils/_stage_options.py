# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What ``release state=present`` is asked to build (:class:`StageOptions`) and its validated form
(:class:`StagePlan`), with the checks that name the option (and its role variable).

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: plain pytest tests it with ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import os
import typing as t

from ansible_collections.atomic.deploy.plugins.module_utils import _perm, _release, _shared, _source
from ansible_collections.atomic.deploy.plugins.module_utils._release import ReleaseError

Warn = t.Callable[[str], None]
# run(argv, env=None): env is added to the environment of the command.
RunCommand = t.Callable[..., t.Tuple[int, bytes, str]]


# The internal module options (set by the action plugin) -> their StageOptions field.
INTERNAL = {
    '_content_digest': 'content_digest',
    '_delta': 'delta_step',
    '_bundle': 'bundle',
    '_archive_origin': 'archive_origin',
}


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
    git_submodules: bool = False
    git_key_file: str | None = None
    git_excludes: t.Sequence[str] = ()
    url_headers: t.Mapping[str, str] | None = None
    directory: str | None = None
    strip_components: int = 0
    dedupe: bool = True
    drop_macos_metadata: bool = True
    shared_dirs: t.Sequence[str] = ()
    shared_files: t.Sequence[str] = ()
    shared_owner: str | None = None
    shared_group: str | None = None
    shared_mode: str = '2775'
    shared_strict: bool = False
    shared_allow_external: bool = False
    shared_seed: t.Sequence[str] = ()
    link_style: str = 'relative'
    writable_dirs: t.Sequence[str] = ()
    writable_mode: str = '2775'
    writable_method: str = 'chmod'
    writable_user: str | None = None
    writable_group: str | None = None
    adopt: bool = False
    id_file: str | None = None
    next_link: bool = False
    delta: bool = True
    # Set by the action plugin only (module options _content_digest, _delta, _bundle, _archive_origin).
    content_digest: str | None = None
    delta_step: t.Mapping[str, t.Any] | None = None
    bundle: str | None = None
    archive_origin: str | None = None

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> StageOptions:
        names = {field.name for field in dataclasses.fields(cls)}
        given = {name: params[name] for name in names if name in params}
        given.update({INTERNAL[name]: value for name, value in params.items() if name in INTERNAL})
        return cls(**given)


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
    grant: _perm.Grant = dataclasses.field(default_factory=_perm.Grant)
    shared_seed: list[str] = dataclasses.field(default_factory=list)


def plan_stage(*, options: StageOptions, check_mode: bool) -> StagePlan:
    """Validate the staging inputs; raise ReleaseError naming the option (and its role variable)."""
    shared_dirs = [_shared.normalize_rel_path(v, name='shared_dirs') for v in options.shared_dirs]
    shared_files = [_shared.normalize_rel_path(v, name='shared_files') for v in options.shared_files]
    overlap = set(shared_dirs) & set(shared_files)
    if overlap:
        raise ReleaseError(f'{sorted(overlap)[0]} is listed in both shared_dirs and shared_files', name='shared_files')
    uid, gid = _shared.resolve_owner(owner=options.shared_owner, group=options.shared_group)
    seed = [_shared.normalize_rel_path(v, name='shared_seed') for v in options.shared_seed]
    for rel in seed:
        if rel not in shared_dirs and rel not in shared_files:
            raise ReleaseError(
                f'shared_seed entry {rel} is not in shared_dirs nor in shared_files; list it there too',
                name='shared_seed',
            )
    writable_mode = _shared.parse_mode(options.writable_mode, name='writable_mode')
    try:
        grant = _perm.make_grant(
            method=options.writable_method,
            mode=writable_mode,
            user=options.writable_user,
            group=options.writable_group,
        )
    except _perm.PermError as exc:
        raise ReleaseError(str(exc), name=exc.name) from None
    return StagePlan(
        shared_dirs=shared_dirs,
        shared_files=shared_files,
        writable_dirs=[_shared.normalize_rel_path(v, name='writable_dirs') for v in options.writable_dirs],
        shared_mode=_shared.parse_mode(options.shared_mode, name='shared_mode'),
        writable_mode=writable_mode,
        uid=uid,
        gid=gid,
        source=source_info(options=options, check_mode=check_mode),
        id_file=id_file_path(options=options, shared=shared_dirs + shared_files),
        grant=grant,
        shared_seed=seed,
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


def source_info(*, options: StageOptions, check_mode: bool) -> dict:
    """The ``source`` record of the release, after checking that the source is fully given."""
    o = options
    kind = o.source
    info: dict = {'type': kind}
    if kind in ('archive', 'directory'):
        if not o.archive:
            name = 'directory' if kind == 'directory' else 'archive'
            raise ReleaseError(f'source={kind} needs {name} (role variable release_{name})', name=name)
        # The controller path when the artifact came from the controller, whether it was sent whole
        # (o.archive is then a temp path on the host) or in delta (o.archive is the controller path).
        info['archive' if kind == 'archive' else 'directory'] = o.directory or o.archive_origin or o.archive
        if (not check_mode or o.remote_src) and not o.delta_step and not os.path.isfile(o.archive):
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
        if o.git_submodules:
            info['git_submodules'] = True
        if o.git_excludes:
            info['git_excludes'] = git_excludes(o)
        if o.git_key_file:
            _source.validate_key_file(o.git_key_file)
    if o.url_headers and kind != 'url':
        raise ReleaseError(f'url_headers is set but source is {kind}, not url', name='url_headers')
    if kind != 'git' and (o.git_submodules or o.git_key_file or o.git_excludes):
        raise ReleaseError(
            f'git_submodules, git_key_file and git_excludes need source=git, not source={kind}', name='source'
        )
    if o.strip_components < 0:
        raise ReleaseError('strip_components must not be negative', name='strip_components')
    return info


def git_excludes(options: StageOptions) -> list[str]:
    """The normalised paths left out of a git release."""
    return [_shared.normalize_rel_path(path, name='git_excludes') for path in options.git_excludes]
