# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_manifest.py and _assemble.py."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from pathlib import Path

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _assemble, _extract, _manifest


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tree(root: Path) -> None:
    (root / 'app' / 'lib').mkdir(parents=True)
    (root / 'app' / 'index.php').write_bytes(b'<?php echo 1;\n')
    (root / 'app' / 'lib' / 'a.py').write_bytes(b'a' * 1000)
    (root / 'app' / 'lib' / 'same.py').write_bytes(b'a' * 1000)
    (root / 'bin').mkdir()
    (root / 'bin' / 'run').write_bytes(b'#!/bin/sh\n')
    os.chmod(root / 'bin' / 'run', 0o755)
    os.symlink('../app/index.php', root / 'bin' / 'index')
    (root / 'empty').mkdir()


def tar_of(root: Path, *, prefix: str = '') -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz') as tf:
        for path in sorted(root.rglob('*')):
            tf.add(path, arcname=prefix + str(path.relative_to(root)), recursive=False)
    return buf.getvalue()


def settle() -> None:
    """Let the file system clock tick past the files just written, as a real deploy does."""
    time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# manifests


def test_tar_manifest_equals_the_extracted_tree(tmp_path: Path) -> None:
    src = tmp_path / 'src'
    src.mkdir()
    make_tree(src)
    data = tar_of(src, prefix='pkg-1/')
    entries = _manifest.from_tar(fileobj=io.BytesIO(data), strip_components=1)
    dest = tmp_path / 'dest'
    dest.mkdir()
    (tmp_path / 'a.tgz').write_bytes(data)
    _extract.extract_archive(archive=str(tmp_path / 'a.tgz'), dest=str(dest), strip_components=1)
    tree, records = _manifest.from_tree(root=str(dest))
    assert _manifest.digest(entries) == _manifest.digest(tree)
    assert set(records) == {e[0] for e in tree if e[1] == _manifest.FILE}
    kinds = {e[0]: e[1] for e in entries}
    assert (
        kinds['bin/index'] == _manifest.LINK
        and kinds['empty'] == _manifest.DIR
        and kinds['app/lib/a.py'] == _manifest.FILE
    )


def test_tar_manifest_follows_the_extractor_rules(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tf:
        for name, data in (('x/a', b'one'), ('x/a', b'two'), ('y', b'y')):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o4777
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo('z')
        link.type = tarfile.LNKTYPE
        link.linkname = 'y'
        tf.addfile(link)
    entries = _manifest.from_tar(fileobj=io.BytesIO(buf.getvalue()))
    assert entries == [
        ['x', 'd', 0o755],
        ['x/a', 'f', 0o775, 3, sha(b'two'), 0],
        ['y', 'f', 0o775, 1, sha(b'y'), 0],
        ['z', 'f', 0o775, 1, sha(b'y'), 0],
    ]
    (tmp_path / 'a.tar').write_bytes(buf.getvalue())
    dest = tmp_path / 'd'
    dest.mkdir()
    _extract.extract_archive(archive=str(tmp_path / 'a.tar'), dest=str(dest))
    assert _manifest.digest(_manifest.from_tree(root=str(dest))[0]) == _manifest.digest(entries)


@pytest.mark.parametrize('name', ['../x', '/etc/passwd', '.release.json', 'a/../../b'])
def test_tar_manifest_refuses_what_the_extractor_refuses(name: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tf:
        info = tarfile.TarInfo(name)
        tf.addfile(info, io.BytesIO(b''))
    with pytest.raises(_manifest.ManifestError):
        _manifest.from_tar(fileobj=io.BytesIO(buf.getvalue()))


def test_digest_ignores_mtime_but_not_mode_or_content() -> None:
    base = [['a', 'f', 0o644, 1, sha(b'a'), 10]]
    assert _manifest.digest(base) == _manifest.digest([['a', 'f', 0o644, 1, sha(b'a'), 99]])
    assert _manifest.digest(base) != _manifest.digest([['a', 'f', 0o755, 1, sha(b'a'), 10]])
    assert _manifest.digest(base) != _manifest.digest([['a', 'f', 0o644, 1, sha(b'b'), 10]])


def test_diff() -> None:
    old = [['a', 'f', 0o644, 1, sha(b'a'), 1], ['b', 'l', 'a'], ['c', 'd', 0o755]]
    new = [['a', 'f', 0o644, 1, sha(b'A'), 1], ['b', 'l', 'a'], ['d', 'd', 0o755]]
    assert _manifest.diff(old, new) == {'added': ['d'], 'removed': ['c'], 'changed': ['a']}
    assert _manifest.diff(old, old) == {'added': [], 'removed': [], 'changed': []}


def test_write_and_read_round_trip(tmp_path: Path) -> None:
    make_tree(tmp_path)
    entries, _records = _manifest.from_tree(root=str(tmp_path))
    value = _manifest.record_tree(release=str(tmp_path), entries=entries, exclude=['shared'])
    doc = _manifest.read(str(tmp_path))
    assert doc is not None and doc['digest'] == value == _manifest.digest(entries)
    assert doc['exclude'] == ['shared'] and doc['ref_ns'] > 0
    assert not [p for p in os.listdir(tmp_path) if 'tmp' in p or 'clock' in p]
    (tmp_path / _manifest.MANIFEST_NAME).write_text('{"format": 1, "entries": [], "digest": "sha256:0"}')
    assert _manifest.read(str(tmp_path)) is None  # a manifest that does not match its digest is "nothing known"
    os.unlink(tmp_path / _manifest.MANIFEST_NAME)
    assert _manifest.read(str(tmp_path)) is None


# ---------------------------------------------------------------------------------------------
# never trust a stale file


def recorded_release(root: Path) -> list:
    make_tree(root)
    entries, _records = _manifest.from_tree(root=str(root))
    settle()
    _manifest.record_tree(release=str(root), entries=entries)
    return entries


def test_stat_shortcut_trusts_an_untouched_file_without_reading_it(tmp_path: Path) -> None:
    recorded_release(tmp_path)
    verifier = _manifest.Verifier()
    have = _manifest.inventory(releases=[str(tmp_path)], verifier=verifier)
    assert verifier.hashed_files == 0 and verifier.trusted == 3  # a.py and same.py hold one digest
    assert sha(b'a' * 1000) in have and sha(b'<?php echo 1;\n') in have


def test_hot_patch_that_keeps_size_and_mtime_is_caught(tmp_path: Path) -> None:
    recorded_release(tmp_path)
    target = tmp_path / 'app' / 'index.php'
    before = os.stat(target)
    with open(target, 'r+b') as handle:
        handle.write(b'<?php echo 2;\n')  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime
    after = os.stat(target)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    verifier = _manifest.Verifier()
    have = _manifest.inventory(releases=[str(tmp_path)], verifier=verifier)
    assert sha(b'<?php echo 1;\n') not in have
    assert verifier.hashed_files == 1
    assert _manifest.drift(release=str(tmp_path))['changed'] == ['app/index.php']


def test_racy_file_is_hashed_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path)
    entries, _records = _manifest.from_tree(root=str(tmp_path))
    # The marker's ctime is no later than any file's (the same clock tick, at best): none of them may
    # be trusted, however the files' ctimes fall on a loaded machine.
    files = [e for e in entries if e[1] == 'f']
    oldest = min(os.lstat(tmp_path / e[0]).st_ctime_ns for e in files)
    monkeypatch.setattr(_manifest, 'reference_ns', lambda directory: oldest)
    _manifest.record_tree(release=str(tmp_path), entries=entries)
    verifier = _manifest.Verifier()
    _manifest.inventory(releases=[str(tmp_path)], verifier=verifier)
    assert verifier.trusted == 0 and verifier.hashed_files >= 1


def test_each_inode_is_hashed_once_across_releases(tmp_path: Path) -> None:
    first = tmp_path / 'v1'
    first.mkdir()
    entries = recorded_release(first)
    second = tmp_path / 'v2'
    second.mkdir()
    _assemble.assemble(dest=str(second), entries=entries, have=_manifest.inventory(releases=[str(first)]), objects=None)
    # link() changed the ctime of every shared inode: v1's records are stale, v2 has none yet.
    verifier = _manifest.Verifier()
    _manifest.inventory(releases=[str(second), str(first)], verifier=verifier)
    drift1 = _manifest.drift(release=str(first), verifier=verifier)
    assert drift1 is not None and not drift1['drifted']
    assert verifier.hashed_files == 3  # three distinct inodes (same.py is its own file), each read once


def test_only_the_deploy_users_files_and_real_parents_are_sources(tmp_path: Path) -> None:
    recorded_release(tmp_path)
    have = _manifest.inventory(releases=[str(tmp_path)], uid=os.getuid() + 1)
    assert have == {}


def test_release_without_manifest_is_nothing_known(tmp_path: Path) -> None:
    make_tree(tmp_path)
    assert _manifest.inventory(releases=[str(tmp_path)]) == {}
    assert _manifest.drift(release=str(tmp_path)) is None


def test_drift_reports_changed_added_removed_and_ignores_excluded(tmp_path: Path) -> None:
    make_tree(tmp_path)
    entries, _records = _manifest.from_tree(root=str(tmp_path))
    os.symlink('../../shared/config', tmp_path / 'config')
    settle()
    _manifest.record_tree(release=str(tmp_path), entries=entries, exclude=['config'])
    assert _manifest.drift(release=str(tmp_path))['drifted'] is False
    (tmp_path / 'app' / 'lib' / 'a.py').write_bytes(b'b' * 1000)
    (tmp_path / 'app' / 'new.php').write_bytes(b'x')
    os.unlink(tmp_path / 'bin' / 'run')
    os.chmod(tmp_path / 'empty', 0o700)
    report = _manifest.drift(release=str(tmp_path))
    assert report['changed'] == ['app/lib/a.py', 'empty']
    assert report['added'] == ['app/new.php']
    assert report['removed'] == ['bin/run']
    assert report['drifted'] is True


# ---------------------------------------------------------------------------------------------
# assembly


def objects_dir(tmp_path: Path, *blobs: bytes) -> str:
    folder = tmp_path / 'objects'
    folder.mkdir(exist_ok=True)
    for blob in blobs:
        (folder / sha(blob)).write_bytes(blob)
    return str(folder)


def test_assemble_links_present_content_and_writes_the_delta(tmp_path: Path) -> None:
    old = tmp_path / 'v1'
    old.mkdir()
    entries = recorded_release(old)
    new_entries = [e for e in entries if e[0] != 'app/index.php'] + [
        ['app/index.php', 'f', 0o640, 14, sha(b'<?php echo 2;\n'), 1000]
    ]
    dest = tmp_path / 'v2'
    dest.mkdir()
    stats = _assemble.assemble(
        dest=str(dest),
        entries=sorted(new_entries),
        have=_manifest.inventory(releases=[str(old)]),
        objects=objects_dir(tmp_path, b'<?php echo 2;\n'),
    )
    assert stats['sent'] == 1 and stats['linked'] == 3
    tree, _records = _manifest.from_tree(root=str(dest))
    assert _manifest.digest(tree) == _manifest.digest(new_entries)
    assert os.stat(dest / 'app' / 'lib' / 'a.py').st_ino == os.stat(old / 'app' / 'lib' / 'a.py').st_ino
    assert os.stat(dest / 'app' / 'index.php').st_mtime == 1000
    assert os.readlink(dest / 'bin' / 'index') == '../app/index.php'


def test_assemble_without_dedupe_copies(tmp_path: Path) -> None:
    old = tmp_path / 'v1'
    old.mkdir()
    entries = recorded_release(old)
    dest = tmp_path / 'v2'
    dest.mkdir()
    stats = _assemble.assemble(
        dest=str(dest), entries=entries, have=_manifest.inventory(releases=[str(old)]), objects=None, dedupe=False
    )
    assert stats['linked'] == 0 and stats['copied'] == 4
    assert os.stat(dest / 'app' / 'lib' / 'a.py').st_ino != os.stat(old / 'app' / 'lib' / 'a.py').st_ino
    assert _manifest.digest(_manifest.from_tree(root=str(dest))[0]) == _manifest.digest(entries)


def test_assemble_never_links_a_hot_patched_file(tmp_path: Path) -> None:
    old = tmp_path / 'v1'
    old.mkdir()
    entries = recorded_release(old)
    (old / 'app' / 'index.php').write_bytes(b'<?php echo 9;\n')
    dest = tmp_path / 'v2'
    dest.mkdir()
    with pytest.raises(_manifest.ManifestError, match='neither in the delta nor'):
        _assemble.assemble(dest=str(dest), entries=entries, have=_manifest.inventory(releases=[str(old)]), objects=None)
    dest2 = tmp_path / 'v3'
    dest2.mkdir()
    _assemble.assemble(
        dest=str(dest2),
        entries=entries,
        have=_manifest.inventory(releases=[str(old)]),
        objects=objects_dir(tmp_path, b'<?php echo 1;\n'),
    )
    assert (dest2 / 'app' / 'index.php').read_bytes() == b'<?php echo 1;\n'


def test_assemble_checks_delta_content(tmp_path: Path) -> None:
    folder = tmp_path / 'objects'
    folder.mkdir()
    (folder / sha(b'good')).write_bytes(b'evil')
    dest = tmp_path / 'v'
    dest.mkdir()
    with pytest.raises(_manifest.ManifestError, match='does not have sha256'):
        _assemble.assemble(
            dest=str(dest), entries=[['a', 'f', 0o644, 4, sha(b'good'), 0]], have={}, objects=str(folder)
        )


@pytest.mark.parametrize(
    'entries',
    [
        [['../escape', 'f', 0o644, 1, sha(b'x'), 0]],
        [['/etc/x', 'f', 0o644, 1, sha(b'x'), 0]],
        [['.release.json', 'f', 0o644, 1, sha(b'x'), 0]],
        [['a//b', 'f', 0o644, 1, sha(b'x'), 0]],
        [['up', 'l', '../../etc']],
        [['abs', 'l', '/etc']],
        [['d', 'l', '.'], ['d/x', 'f', 0o644, 1, sha(b'x'), 0]],
        [['a', 'l', 'b/..'], ['b', 'l', '../..']],
    ],
)
def test_assemble_refuses_hostile_manifests(tmp_path: Path, entries: list) -> None:
    dest = tmp_path / 'v'
    dest.mkdir()
    with pytest.raises((_manifest.ManifestError, _extract.ExtractError)):
        _assemble.assemble(dest=str(dest), entries=entries, have={}, objects=objects_dir(tmp_path, b'x'))
    assert not (tmp_path / 'escape').exists()


def test_validate_entries_refuses_bad_shapes() -> None:
    with pytest.raises(_manifest.ManifestError):
        _manifest.validate_entries([['a', 'f', 0o644]])
    with pytest.raises(_manifest.ManifestError):
        _manifest.validate_entries({'a': 1})
    assert _manifest.validate_entries([['a', 'd', 0o755]]) == [['a', 'd', 0o755]]


def test_digests_kept_by_the_extractor_match_a_fresh_read(tmp_path: Path) -> None:
    src = tmp_path / 'src'
    src.mkdir()
    make_tree(src)
    (tmp_path / 'a.tgz').write_bytes(tar_of(src))
    dest = tmp_path / 'dest'
    dest.mkdir()
    digests: dict = {}
    _extract.extract_archive(archive=str(tmp_path / 'a.tgz'), dest=str(dest), digests=digests)
    assert digests['app/index.php'] == sha(b'<?php echo 1;\n')
    from_digests, _records = _manifest.from_tree(root=str(dest), known=digests)
    fresh, _records = _manifest.from_tree(root=str(dest))
    assert from_digests == fresh


def test_the_manifest_name_is_reserved_in_archives(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tf:
        tf.addfile(tarfile.TarInfo(_manifest.MANIFEST_NAME), io.BytesIO(b''))
    (tmp_path / 'a.tar').write_bytes(buf.getvalue())
    dest = tmp_path / 'd'
    dest.mkdir()
    with pytest.raises(_extract.ExtractError, match='reserved'):
        _extract.extract_archive(archive=str(tmp_path / 'a.tar'), dest=str(dest))
