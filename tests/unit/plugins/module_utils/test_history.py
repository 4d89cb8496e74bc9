# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for plugins/module_utils/_history.py: append-only JSON lines, torn lines, tail reads."""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _history


@pytest.fixture
def path(tmp_path) -> str:
    return str(tmp_path / 'history.jsonl')


def test_append_and_read(path):
    first = _history.append(path=path, event='deploy', release_id='r1', previous=None, host='web1', switched_at=1.5)
    second = _history.append(
        path=path, event='rollback', release_id='r0', previous='r1', reason='smoke test', fsync=False
    )
    assert first['event'] == 'deploy' and first['id'] == 'r1' and first['ts'].endswith('Z')
    # None-valued fields are left out, the others kept
    assert 'previous' not in first
    assert first['host'] == 'web1' and first['switched_at'] == 1.5
    assert _history.read(path=path) == [first, second]
    raw = open(path, 'rb').read()
    assert raw.count(b'\n') == 2 and raw.endswith(b'\n')
    # one compact JSON object per line
    assert all(json.loads(line) for line in raw.splitlines())


@pytest.mark.parametrize('event', ['deploy', 'activate', 'rollback', 'failed'])
def test_known_events(path, event):
    assert _history.append(path=path, event=event, release_id='r1')['event'] == event


def test_unknown_event_is_refused_and_nothing_written(path):
    with pytest.raises(ValueError, match="unknown history event 'deleted'"):
        _history.append(path=path, event='deleted', release_id='r1')
    assert not os.path.exists(path)


def test_read_missing_file(path):
    assert _history.read(path=path) == []
    assert _history.read(path=path, last=5) == []


def test_torn_last_line_is_ignored(path):
    _history.append(path=path, event='deploy', release_id='r1')
    _history.append(path=path, event='deploy', release_id='r2')
    with open(path, 'ab') as handle:
        handle.write(b'{"ts": "2026-01-01T00:00:00.000000Z", "event": "depl')
    assert [e['id'] for e in _history.read(path=path)] == ['r1', 'r2']
    assert [e['id'] for e in _history.read(path=path, last=1)] == ['r2']
    # the next append starts on a fresh line: the torn line stays torn, the new entry is whole
    _history.append(path=path, event='deploy', release_id='r3')
    assert [e['id'] for e in _history.read(path=path)] == ['r1', 'r2', 'r3']
    assert [e['id'] for e in _history.read(path=path, last=2)] == ['r2', 'r3']


def test_garbage_and_non_objects_are_skipped(path):
    with open(path, 'wb') as handle:
        handle.write(b'[1, 2]\n\n   \n"text"\n\xff\xfe\n{"event": "deploy", "id": "ok"}\n')
    assert _history.read(path=path) == [{'event': 'deploy', 'id': 'ok'}]


@pytest.mark.parametrize('last', [0, -3])
def test_last_zero_or_negative(path, last):
    _history.append(path=path, event='deploy', release_id='r1')
    assert _history.read(path=path, last=last) == []


def test_tail_of_a_file_larger_than_the_tail_block(path):
    padding = 'x' * 300
    count = 1000
    with open(path, 'wb') as handle:
        for n in range(count):
            handle.write(json.dumps({'event': 'deploy', 'id': f'r{n}', 'pad': padding}).encode() + b'\n')
    size = os.path.getsize(path)
    assert size > 4 * _history._TAIL_BLOCK
    assert [e['id'] for e in _history.read(path=path, last=3)] == ['r997', 'r998', 'r999']
    # a tail that spans several blocks
    many = _history.read(path=path, last=600)
    assert [e['id'] for e in many] == [f'r{n}' for n in range(400, 1000)]
    # more than there is
    assert len(_history.read(path=path, last=5000)) == count
    assert [e['id'] for e in _history.read(path=path)] == [f'r{n}' for n in range(count)]


def test_tail_when_a_line_straddles_the_block_boundary(path):
    # one huge line ends right across the 64 KiB boundary from the end
    with open(path, 'wb') as handle:
        handle.write(
            json.dumps({'event': 'deploy', 'id': 'big', 'pad': 'y' * (_history._TAIL_BLOCK + 100)}).encode() + b'\n'
        )
        for n in range(3):
            handle.write(json.dumps({'event': 'deploy', 'id': f'r{n}'}).encode() + b'\n')
    assert [e['id'] for e in _history.read(path=path, last=4)] == ['big', 'r0', 'r1', 'r2']
    assert [e['id'] for e in _history.read(path=path, last=2)] == ['r1', 'r2']


def test_history_symlink_is_not_followed(path, tmp_path):
    victim = tmp_path / 'victim'
    victim.write_text('{"event": "deploy", "id": "planted"}\n')
    os.symlink(victim, path)
    with pytest.raises(OSError):
        _history.read(path=path)
    with pytest.raises(OSError):
        _history.append(path=path, event='deploy', release_id='r1')
    assert victim.read_text() == '{"event": "deploy", "id": "planted"}\n'
