# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""File names as the file systems of the targets compare them, and names that are not content.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code: plain pytest tests it.

APFS (macOS's default) ignores case and Unicode normalisation when it compares names; HFS+ also
stores them decomposed (NFD). An artifact holding two names such a file system takes for one is
refused on every platform (``_tree.py`` for archives, ``_manifest.validate_entries`` for delta
manifests, ``_stage.refuse_case_twin`` for release ids), so one built on Linux cannot lose a file
on a Mac later.
"""

from __future__ import annotations

import os
import unicodedata


def folded_name(path: str) -> str:
    """``path`` as a case-insensitive, normalisation-insensitive file system compares it.

    APFS (macOS's default) and HFS+ ignore case and treat NFC and NFD spellings of a name as one
    name; NTFS/SMB ignore case. Lower case of the decomposed form: Unicode's simple case mapping,
    not casefold(), which would also join names such as ``ß`` and ``ss`` that APFS keeps apart.
    """
    return unicodedata.normalize('NFD', unicodedata.normalize('NFD', path).lower())


def name_collisions(paths) -> list:
    """Pairs of distinct ``paths`` that are one name on such a file system, in input order.

    An artifact is refused for them on every platform, so one built on Linux cannot lose a file,
    or fail half-way, when it is deployed to a Mac later.
    """
    seen: dict = {}
    clashes = []
    for path in paths:
        # the directories a path implies count too: ``dir/a`` next to ``Dir`` would land in ``Dir``
        parts = path.split('/')
        for end in range(1, len(parts) + 1):
            name = '/'.join(parts[:end])
            first = seen.setdefault(folded_name(name), name)
            if first != name and (first, name) not in clashes:
                clashes.append((first, name))
    return clashes


def describe_collisions(clashes: list, *, where: str) -> str:
    """The refusal message for :func:`name_collisions` (a lower-case message naming ``where``)."""
    shown = '; '.join(f'{first!r} and {second!r}' for first, second in clashes[:5])
    more = f' (and {len(clashes) - 5} more)' if len(clashes) > 5 else ''
    return (
        f'{where} holds names that differ only in case or Unicode normalisation: {shown}{more}; '
        'a case-insensitive or normalising file system (macOS APFS and HFS+, SMB) would keep only one of '
        'each pair, so the artifact is refused on every target: rename one of each pair'
    )


MACOS_METADATA_DIR = '__MACOSX'


def is_macos_metadata(parts: list, *, is_dir: bool) -> bool:
    """Whether an archive path (split on '/') is macOS metadata rather than content.

    AppleDouble files (``._name``: resource forks and extended attributes that macOS ``tar`` and
    Finder copies write next to each file), Finder's ``.DS_Store``, and the ``__MACOSX/`` tree
    Finder's "Compress" puts in a zip.
    """
    if MACOS_METADATA_DIR in parts:
        return True
    return not is_dir and bool(parts) and (parts[-1].startswith('._') or parts[-1] == '.DS_Store')


def respelt(dest: str, rels) -> list:
    """(written, on disk) for names the file system stores in another Unicode normal form (HFS+: NFD).

    The release's manifest and the drift check name files as they were written; a file system that
    respells them would make the tree differ from the artifact on every later check. Only names that
    NFD changes are looked at, so an ASCII tree costs nothing.
    """
    listed: dict = {}
    found = []
    for rel in rels:
        parent, _sep, name = rel.rpartition('/')
        if unicodedata.normalize('NFD', name) == name:
            continue
        if parent not in listed:
            try:
                listed[parent] = set(os.listdir(os.path.join(dest, parent) if parent else dest))
            except OSError:
                listed[parent] = set()
        if name not in listed[parent]:
            spelt = [n for n in listed[parent] if unicodedata.normalize('NFC', n) == unicodedata.normalize('NFC', name)]
            found.append((rel, f'{parent}/{spelt[0]}' if parent and spelt else (spelt[0] if spelt else '?')))
    return found
