# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Host side of delta staging and of the content checks, as functions the release module calls.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule inside: plain pytest tests it.
"""

from __future__ import annotations

import os
import re
import shutil

from ansible_collections.atomic.deploy.plugins.module_utils import _assemble, _manifest, _release

PREFIX_LEN = 16
WORKDIR_PREFIX = 'delta-'
_SHA1 = re.compile(r'^[0-9a-f]{40}$')


def identity_conflict(*, release: _release.Release, content_digest=None, checksum=None, git_version=None) -> str | None:
    """The message for a release id reused with another artifact, or None when nothing says so.

    Only digests that both sides know are compared; a release made before manifests existed,
    or a source whose identity cannot be known without fetching it, is not a conflict.
    """
    source = release.meta.get('source') or {} if release.meta else {}
    pairs = [
        ('content manifest', source.get('content_digest'), content_digest),
        ('checksum', source.get('checksum'), checksum),
    ]
    if git_version and _SHA1.match(str(git_version).lower()):
        pairs.append(('git sha', source.get('git_sha'), str(git_version).lower()))
    for what, old, new in pairs:
        old, new = str(old or '').lower(), str(new or '').lower()
        if what == 'checksum' and old.partition(':')[0] != new.partition(':')[0]:
            continue  # different algorithms cannot be compared
        if old and new and old != new:
            return (
                f'release {release.id} already exists at {release.path} with a different artifact '
                f'({what} {old} there, {new} now); a release id names one artifact: deploy this one under a '
                f'new id (role variable release_id), or remove {release.path} first if it is not live'
            )
    return None


def source_releases(releases: list, *, exclude: str | None = None) -> list:
    """Paths of complete releases, newest first: the only places content is ever taken from."""
    return [r.path for r in reversed(releases) if r.state == _release.COMPLETE and r.id != exclude]


def probe(*, releases: list, exclude: str | None = None) -> dict:
    """What the controller needs to build a delta: the content this host verifiably holds (digest
    prefixes, concatenated) and the manifest digests of its complete releases (newest first)."""
    verifier = _manifest.Verifier()
    manifests: list = []
    have = _manifest.inventory(
        releases=source_releases(releases, exclude=exclude), verifier=verifier, uid=_uid(), manifests=manifests
    )
    bases = []
    for _path, doc in manifests:
        if doc['digest'] not in bases:
            bases.append(doc['digest'])
    return {'have': ''.join(sorted({d[:PREFIX_LEN] for d in have})), 'bases': bases[:5]}


def _uid():
    return os.geteuid() if hasattr(os, 'geteuid') else None


def drift_warning(
    *, release: _release.Release | None, verifier: _manifest.Verifier | None = None
) -> tuple[str | None, dict | None]:
    """(warning, report) when the live release's files no longer match its manifest."""
    if release is None or release.state != _release.COMPLETE:
        return None, None
    report = _manifest.drift(release=release.path, verifier=verifier)
    if report is None or not report['drifted']:
        return None, report
    parts = []
    for what in ('changed', 'added', 'removed'):
        names = report[what]
        if names:
            shown = ', '.join(names[:10]) + (f' and {len(names) - 10} more' if len(names) > 10 else '')
            parts.append(f'{what} {shown}')
    return (
        f'release {release.id} (current) has drifted from what was deployed: {"; ".join(parts)} '
        f'(releases_info verify=true lists it)'
    ), report


def sweep_workdirs(tmp: str) -> None:
    """Delta work dirs left by a killed deploy (callers hold the deploy lock: none is in use)."""
    try:
        names = os.listdir(tmp)
    except OSError:
        return
    for name in names:
        if name.startswith(WORKDIR_PREFIX):
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)


def stage_from_bundle(*, tmp: str, dest: str, bundle: str, releases: list, release_id: str, dedupe: bool) -> dict:
    """Assemble ``dest`` from a delta bundle and the host's complete releases; return stats and entries."""
    os.makedirs(tmp, 0o750, exist_ok=True)
    sweep_workdirs(tmp)
    work = os.path.join(tmp, f'{WORKDIR_PREFIX}{release_id}-{os.urandom(6).hex()}')
    os.mkdir(work, 0o700)
    try:
        verifier = _manifest.Verifier()
        manifests: list = []
        have = _manifest.inventory(
            releases=source_releases(releases, exclude=release_id), verifier=verifier, uid=_uid(), manifests=manifests
        )
        bases = {doc['digest']: doc['entries'] for _path, doc in reversed(manifests)}
        entries, objects = _assemble.read_bundle(bundle=bundle, workdir=work, bases=bases)
        stats = _assemble.assemble(dest=dest, entries=entries, have=have, objects=objects, dedupe=dedupe)
        stats['hashed_files'] = verifier.hashed_files
        stats['hashed_bytes'] = verifier.hashed_bytes
        return {'stats': stats, 'entries': entries}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_manifest(
    *,
    release: str,
    entries: list | None,
    exclude,
    content_digest: str | None,
    fsync: bool = True,
    digests: dict | None = None,
) -> str:
    """Write the release's manifest; ``entries`` None means: describe the tree as extracted.

    With ``content_digest`` (the controller's manifest of the artifact), the tree must match it:
    this is what proves the deployed tree is the artifact.
    """
    if entries is None:
        ref_ns = _manifest.reference_ns(release)
        entries, records = _manifest.from_tree(
            root=release, exclude=('.release.json', _manifest.MANIFEST_NAME), known=digests
        )
        value = _manifest.digest(entries)
        if content_digest and value != content_digest:
            raise _manifest.ManifestError(
                f'the tree extracted into {release} does not match the artifact (manifest {value}, the controller '
                f'computed {content_digest})',
                path=release,
            )
        return _manifest.write(
            release=release, entries=entries, records=records, ref_ns=ref_ns, exclude=exclude, fsync=fsync
        )
    value = _manifest.digest(entries)
    if content_digest and value != content_digest:
        raise _manifest.ManifestError(
            f'the delta manifest for {release} is {value}, not the artifact digest {content_digest}', path=release
        )
    return _manifest.record_tree(release=release, entries=entries, exclude=exclude, fsync=fsync)
