# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether a release is live with this deploy's artifact: the rule, and the live-check program.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. Standard library only, Python 3.8+, no AnsibleModule inside.

The release module decides with :func:`is_live` (``_stage.present``). The same file is also a
program: a re-deploy of the live release costs one AnsiballZ payload (about 150 kB) as a module
run, so the action plugin first sends this file after ``_manifest.py`` (both read with
``pkgutil.get_data``, ``plugin_utils/_delta.live_check_program``) to the host's Python, with
``root``, ``id``, content digest and checksum as its one JSON argument. It reads the disk only
and prints ``{"live": true, "source": ..., "drift": ...}`` when the release is live with that
artifact, else ``{"live": false}``: anything it cannot prove falls through to the module.

No ``from __future__`` import and no annotations here: the program is this file appended to
``_manifest.py``'s source, where a second ``__future__`` import would not compile.
"""

import json
import os
import sys

if __name__ == '__main__':  # the live-check program: _manifest.py's source runs first in this namespace
    _manifest = sys.modules[__name__]
else:
    from ansible_collections.atomic.deploy.plugins.module_utils import _manifest

METADATA_NAME = '.release.json'
_HEX40 = frozenset('0123456789abcdef')


def _text(value):
    return str(value or '').lower()


def artifact_conflict(source, content_digest=None, checksum=None, git_version=None):
    """``(what, recorded, given)`` for the first identity both the release's ``source`` metadata and
    this deploy know and that differs, else None.

    Checksums of different algorithms cannot be compared; a git version counts only as a full sha.
    """
    source = source if isinstance(source, dict) else {}
    pairs = [
        ('content manifest', source.get('content_digest'), content_digest),
        ('checksum', source.get('checksum'), checksum),
    ]
    version = _text(git_version)
    if len(version) == 40 and set(version) <= _HEX40:
        pairs.append(('git sha', source.get('git_sha'), version))
    for what, recorded, given in pairs:
        recorded, given = _text(recorded), _text(given)
        if what == 'checksum' and recorded.partition(':')[0] != given.partition(':')[0]:
            continue
        if recorded and given and recorded != given:
            return what, recorded, given
    return None


def is_live(*, complete, release_id, current_id, source, content_digest=None, checksum=None, proven=False):
    """Whether ``release_id`` is live with this deploy's artifact: complete, ``current`` names it, and
    nothing recorded says it holds another artifact.

    ``proven``: the content digest and the checksum this deploy gives must also be recorded on the
    release and equal (the live check answers without the module, so it says live only when it can
    show it; the module refuses a reused id with another artifact before it asks).
    """
    if not complete or current_id != release_id:
        return False
    if artifact_conflict(source, content_digest=content_digest, checksum=checksum):
        return False
    if proven:
        source = source if isinstance(source, dict) else {}
        for recorded, given in (('content_digest', content_digest), ('checksum', checksum)):
            if given and _text(source.get(recorded)) != _text(given):
                return False
        return bool(content_digest)
    return True


def _current_id(root, releases):
    text = os.readlink(os.path.join(root, 'current'))
    resolved = os.path.normpath(text if os.path.isabs(text) else os.path.join(root, text))
    if os.path.dirname(resolved) != releases:
        return None
    return os.path.basename(resolved)


def check(root, release_id, content_digest, checksum=None):
    """The live check on disk, read-only: ``{'live': False}``, or ``{'live': True, 'source', 'drift'}``."""
    root = os.path.normpath(root)
    releases = os.path.join(root, 'releases')
    path = os.path.join(releases, release_id)
    out = {'live': False}
    # Only a release the deploy user made counts: a directory and metadata nobody else can write,
    # opened without following links (SECURITY.md); root on a deploy user's root trusts that user.
    _manifest.adopt_deploy_owner(root)
    try:
        current = _current_id(root, releases)
        if current != release_id:
            return out
        release_fd = _manifest.open_release(path)
        try:
            meta = json.loads(_manifest.read_trusted(METADATA_NAME, dir_fd=release_fd).decode('utf-8'))
        finally:
            os.close(release_fd)
    except (OSError, _manifest.Untrusted, ValueError, UnicodeDecodeError):
        return out
    if not isinstance(meta, dict):
        return out
    source = meta.get('source')
    live = is_live(
        complete=meta.get('state') == 'complete' and meta.get('id') == release_id,
        release_id=release_id,
        current_id=current,
        source=source,
        content_digest=content_digest,
        checksum=checksum,
        proven=True,
    )
    if live:
        out.update(live=True, source=source, drift=_manifest.drift(release=path))
    return out


def main(argv):
    """``argv``: one JSON list ``[root, id, content_digest, checksum]``; prints the result as JSON."""
    root, release_id, content_digest, checksum = json.loads(argv[0])
    sys.stdout.write(json.dumps(check(root, release_id, content_digest, checksum)) + '\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main(sys.argv[1:]))
