# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The code of a release being staged: fetched from an archive, a directory, a URL or git, or assembled
from a delta bundle, then recorded in its content manifest.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: plain pytest tests it with ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess

from ansible_collections.atomic.deploy.plugins.module_utils import _fs, _release, _source
from ansible_collections.atomic.deploy.plugins.module_utils._release import Layout, Release, ReleaseError
from ansible_collections.atomic.deploy.plugins.module_utils._stage_options import RunCommand, StageOptions, StagePlan


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
