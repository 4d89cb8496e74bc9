# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Staging as on macOS and FreeBSD: case-folding and decomposing file systems, release ids that differ
in case, adopt without an exchange call, AppleDouble files, 1-second timestamps, refused hard links."""

from __future__ import annotations

import io
import os
import tarfile

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import (
    _activate,
    _copy,
    _manifest,
    _release,
    _stage,
    _stage_options,
)

NFC = 'caf\u00e9.txt'
NFD = 'cafe\u0301.txt'


@pytest.fixture
def layout(tmp_path) -> _release.Layout:
    return _release.Layout(str(tmp_path / 'app'))


def tarball(path, files: dict) -> str:
    with tarfile.open(path, 'w:gz', format=tarfile.PAX_FORMAT) as tf:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return str(path)


def stage(layout, release_id, **options) -> dict:
    return _stage.present(
        layout=layout,
        release_id=release_id,
        options=_stage_options.StageOptions(**options),
        owner={'user': 'alice'},
        warn=lambda _msg: None,
        result={},
    )


def activate(layout, release_id, **kwargs) -> dict:
    return _activate.active(layout=layout, release_id=release_id, warn=lambda _msg: None, result={}, **kwargs)


def states(layout) -> dict:
    return {r.id: r.state for r in _release.list_releases(layout)[0]}


# --- names one on a case-insensitive or normalising file system ---------------------------------------


def test_case_twins_in_an_archive_are_refused_on_every_target(layout, tmp_path):
    archive = tarball(tmp_path / 'a.tgz', {'README': 'upper\n', 'readme': 'lower\n'})
    with pytest.raises(_release.ReleaseError) as info:
        stage(layout, 'r1', source='archive', archive=archive)
    assert "'README' and 'readme'" in str(info.value)
    assert 'differ only in case' in str(info.value)
    assert states(layout) == {'r1': 'failed'}


def test_case_twins_on_case_insensitive_apfs_are_named_not_file_exists(layout, tmp_path, macos, case_insensitive_fs):
    case_insensitive_fs(tmp_path)
    archive = tarball(tmp_path / 'a.tgz', {'app/Config.php': 'a\n', 'app/config.php': 'b\n'})
    with pytest.raises(_release.ReleaseError) as info:
        stage(layout, 'r1', source='archive', archive=archive)
    assert "'app/Config.php' and 'app/config.php'" in str(info.value)
    assert 'file exists' not in str(info.value).lower()


def test_nfc_and_nfd_spellings_in_one_archive_are_refused(layout, tmp_path):
    archive = tarball(tmp_path / 'a.tgz', {NFC: 'composed\n', NFD: 'decomposed\n'})
    with pytest.raises(_release.ReleaseError, match='differ only in case or Unicode normalisation'):
        stage(layout, 'r1', source='archive', archive=archive)


def test_a_decomposing_file_system_is_named_as_the_cause(layout, tmp_path, macos, decomposing_fs):
    # HFS+ stores café.txt as cafe + combining accent: the tree would never match its artifact.
    decomposing_fs(tmp_path)
    archive = tarball(tmp_path / 'a.tgz', {NFC: 'composed\n', 'index.html': 'ok\n'})
    with pytest.raises(_release.ReleaseError) as info:
        stage(layout, 'r1', source='archive', archive=archive)
    assert 'HFS+' in str(info.value) and repr(NFC) in str(info.value)
    assert states(layout) == {'r1': 'failed'}


def test_the_same_archive_stages_where_names_are_kept(layout, tmp_path, macos, case_insensitive_fs):
    # APFS keeps names as written (it only compares them insensitively): nothing to refuse.
    case_insensitive_fs(tmp_path)
    archive = tarball(tmp_path / 'a.tgz', {NFC: 'composed\n', 'README': 'one\n'})
    stage(layout, 'r1', source='archive', archive=archive)
    expected = ['.release.json', '.release.manifest.json', NFC, 'README']
    assert sorted(os.listdir(layout.release('r1'))) == sorted(expected)


def test_delta_manifest_case_twins_are_refused_before_assembly():
    entries = [['README', 'f', 0o644, 1, 'a' * 64, 0], ['readme', 'f', 0o644, 1, 'b' * 64, 0]]
    with pytest.raises(_manifest.ManifestError, match="the delta manifest holds names.*'README' and 'readme'"):
        _manifest.validate_entries(entries)


def test_release_ids_differing_only_in_case_are_refused(layout):
    stage(layout, 'v2')
    with pytest.raises(_release.ReleaseError) as info:
        stage(layout, 'V2')
    assert 'release id V2 differs only in case' in str(info.value) and layout.release('v2') in str(info.value)
    assert states(layout) == {'v2': 'unfinished'}


def test_release_id_case_twin_on_apfs_is_not_called_a_foreign_path(layout, tmp_path, macos, case_insensitive_fs):
    case_insensitive_fs(tmp_path)
    stage(layout, 'v2')
    with pytest.raises(_release.ReleaseError) as info:
        stage(layout, 'V2')
    assert 'differs only in case' in str(info.value)
    assert 'is not a release directory' not in str(info.value)


# --- adopt: the exchange call, found before staging -----------------------------------------------------


def test_adopt_without_an_exchange_call_is_refused_before_staging(layout, freebsd):
    os.makedirs(os.path.join(layout.current, 'public'))
    with pytest.raises(_release.ReleaseError) as info:
        stage(layout, 'r1', adopt=True)
    assert layout.current in str(info.value) and 'no atomic exchange call' in str(info.value)
    assert not os.path.exists(layout.releases)
    assert os.path.isdir(os.path.join(layout.current, 'public'))


def test_adopt_on_macos_swaps_with_renameatx_np(layout, macos):
    os.makedirs(os.path.join(layout.current, 'public'))
    stage(layout, 'r1', adopt=True)
    result = activate(layout, 'r1', adopt=True)
    assert os.readlink(layout.current) == 'releases/r1'
    assert os.path.isdir(os.path.join(result['backup'], 'public'))
    assert macos.exchange_calls == [('renameatx_np', -2, -2, 0x2)]


# --- AppleDouble and Finder metadata --------------------------------------------------------------------

MAC_TAR = {
    'index.php': '<?php\n',
    '._index.php': 'resource fork\n',
    'css/.DS_Store': 'finder\n',
    'css/site.css': 'a{}\n',
    '__MACOSX/css/._site.css': 'fork\n',
}


def test_macos_metadata_is_left_out_by_default(layout, tmp_path):
    stage(layout, 'r1', source='archive', archive=tarball(tmp_path / 'a.tgz', MAC_TAR))
    release = layout.release('r1')
    assert sorted(os.listdir(release)) == ['.release.json', '.release.manifest.json', 'css', 'index.php']
    assert os.listdir(os.path.join(release, 'css')) == ['site.css']
    assert [e[0] for e in _manifest.read(release)['entries']] == ['css', 'css/site.css', 'index.php']


def test_macos_metadata_is_kept_when_asked(layout, tmp_path):
    stage(layout, 'r1', source='archive', archive=tarball(tmp_path / 'a.tgz', MAC_TAR), drop_macos_metadata=False)
    assert '._index.php' in os.listdir(layout.release('r1'))
    assert os.path.isdir(os.path.join(layout.release('r1'), '__MACOSX'))


def test_the_controller_manifest_leaves_out_what_the_host_leaves_out(tmp_path):
    with open(tarball(tmp_path / 'a.tgz', MAC_TAR), 'rb') as handle:
        dropped = _manifest.from_tar(fileobj=handle, drop_macos_metadata=True)
    assert [e[0] for e in dropped] == ['css', 'css/site.css', 'index.php']
    (tmp_path / 'tree' / 'css').mkdir(parents=True)
    for name in ('index.php', '._index.php', 'css/.DS_Store', 'css/site.css'):
        (tmp_path / 'tree' / name).write_text(MAC_TAR[name])
    entries, _records = _manifest.from_tree(root=str(tmp_path / 'tree'), drop_macos_metadata=True)
    assert [e[0] for e in entries] == ['css', 'css/site.css', 'index.php']


# --- 1-second timestamps --------------------------------------------------------------------------------


def test_one_second_timestamps_do_not_make_every_probe_rehash(layout, tmp_path, one_second_timestamps):
    files = {f'f{i}.txt': f'{i}\n' for i in range(20)}
    stage(layout, 'r1', source='archive', archive=tarball(tmp_path / 'a.tgz', files))
    doc = _manifest.read(layout.release('r1'))
    assert doc['ref_ns'] % 1_000_000_000 == 0  # the stand-in is in place
    verifier = _manifest.Verifier()
    report = _manifest.drift(release=layout.release('r1'), verifier=verifier)
    assert report['drifted'] is False
    # every file trusted by its record: none read again
    assert verifier.hashed_files == 0 and verifier.trusted == len(files)


# --- a refused hard link falls back to a copy -----------------------------------------------------------


@pytest.mark.parametrize('name', ['ENOTSUP', 'EOPNOTSUPP'])
def test_refused_hard_link_is_a_copy_not_an_error(tmp_path, platform, monkeypatch, name):
    source = tmp_path / 'source'
    source.write_text('x')

    def refuse(*args, **kwargs):
        raise platform.error(name)

    monkeypatch.setattr(os, 'link', refuse)
    assert _copy.try_link(str(source), str(tmp_path / 'copy')) is False
