# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading what a deploy left in a deploy root, straight from the disk (never through the modules)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

METADATA = '.release.json'


def current_target(root: Path) -> str | None:
    """The text of ROOT/current, None without a current link."""
    try:
        return os.readlink(Path(root) / 'current')
    except OSError:
        return None


def current_id(root: Path) -> str | None:
    """The release id current points at; None without a link or when it points outside releases/."""
    root = Path(root)
    text = current_target(root)
    if text is None:
        return None
    target = Path(text) if os.path.isabs(text) else root / text
    if Path(os.path.normpath(target)).parent != root / 'releases':
        return None
    return Path(text).name


def release_ids(root: Path, *, dirs_only: bool = False) -> list[str]:
    """Names in releases/ but the .tmp-/.trash- work dirs, sorted; only directories with ``dirs_only``."""
    try:
        entries = list(os.scandir(Path(root) / 'releases'))
    except FileNotFoundError:
        return []
    return sorted(e.name for e in entries if not e.name.startswith('.') and (e.is_dir() or not dirs_only))


def metadata(root: Path, release_id: str) -> dict | None:
    """The .release.json of a release; None when missing or not JSON."""
    try:
        return json.loads((Path(root) / 'releases' / release_id / METADATA).read_text(encoding='utf-8'))
    except (FileNotFoundError, ValueError):
        return None


def leftovers(root: Path) -> list[str]:
    """Work files a deploy leaves only when interrupted: releases/.tmp-*, releases/.trash-*, .current.*"""
    root = Path(root)
    names = []
    with contextlib.suppress(FileNotFoundError):
        names += [e.name for e in os.scandir(root / 'releases') if e.name.startswith(('.tmp-', '.trash-'))]
    with contextlib.suppress(FileNotFoundError):
        names += [e.name for e in os.scandir(root) if e.name.startswith('.current.')]
    return sorted(names)


def read_history(root: Path) -> tuple[list[dict], bool]:
    """History entries, and whether a torn line (a crash mid-write) was found.

    A torn line must be the last one, or be followed by whole records that a later writer started on
    a fresh line; anything else that is not JSON fails the test.
    """
    path = Path(root) / '.deploy' / 'history.jsonl'
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], False
    lines = raw.split(b'\n')
    torn = False
    entries = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            entry = json.loads(line.decode('utf-8'))
            if not isinstance(entry, dict):
                raise ValueError('not an object')
        except (ValueError, UnicodeDecodeError) as exc:
            last = index == len(lines) - 1 or (index == len(lines) - 2 and lines[-1] == b'')
            if not last and not line.startswith(b'{'):
                raise AssertionError(f'history line {index + 1} of {path} is not JSON: {line[:200]!r}') from exc
            torn = True
            continue
        entries.append(entry)
    return entries, torn


def history(root: Path) -> list[dict]:
    """History entries; a torn line fails the test."""
    entries, torn = read_history(root)
    assert not torn, f'{root}/.deploy/history.jsonl has a torn line'
    return entries


def lock_record(root: Path) -> dict | None:
    """The lock file's record, None when the lock is free."""
    try:
        return json.loads((Path(root) / '.deploy' / 'lock').read_text(encoding='utf-8'))
    except FileNotFoundError:
        return None


def lock_held(root: Path) -> bool:
    return (Path(root) / '.deploy' / 'lock').exists()
