# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for plugins/module_utils/_names.py: names a case-insensitive or normalising file system joins."""

from __future__ import annotations

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _names

# --- names a case-insensitive or normalising file system would join -----------------------------


@pytest.mark.parametrize(
    ('paths', 'clashes'),
    [
        (['README', 'readme'], [('README', 'readme')]),
        (['app/Config.php', 'app/config.php', 'app/other'], [('app/Config.php', 'app/config.php')]),
        (['Dir', 'dir/a'], [('Dir', 'dir')]),  # dir/a implies a directory dir, which would be Dir
        (['Dir/a', 'dir/a', 'Dir/b'], [('Dir', 'dir'), ('Dir/a', 'dir/a')]),
        (['Dir', 'dir'], [('Dir', 'dir')]),
        (['caf\u00e9.txt', 'cafe\u0301.txt'], [('caf\u00e9.txt', 'cafe\u0301.txt')]),  # NFC and NFD
        (['CAF\u00c9', 'cafe\u0301'], [('CAF\u00c9', 'cafe\u0301')]),
        (['stra\u00dfe', 'strasse'], []),  # APFS keeps these apart: no casefold()
        (['a', 'a', 'b'], []),  # the same name twice is not a clash
    ],
)
def test_name_collisions(paths, clashes):
    assert _names.name_collisions(paths) == clashes


def test_collision_message_names_where_and_both_names():
    message = _names.describe_collisions([('README', 'readme')], where='archive /tmp/a.tar')
    assert message.startswith('archive /tmp/a.tar holds names that differ only in case')
    assert "'README' and 'readme'" in message


@pytest.mark.parametrize(
    ('parts', 'is_dir', 'dropped'),
    [
        (['._index.php'], False, True),
        (['css', '.DS_Store'], False, True),
        (['__MACOSX'], True, True),
        (['__MACOSX', 'css', '._a'], False, True),
        (['._dir'], True, False),  # AppleDouble entries are files; a directory of that name is content
        (['index.php'], False, False),
        (['.env'], False, False),
    ],
)
def test_is_macos_metadata(parts, is_dir, dropped):
    assert _names.is_macos_metadata(parts, is_dir=is_dir) is dropped
