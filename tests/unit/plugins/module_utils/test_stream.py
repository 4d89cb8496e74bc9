# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_stream.py (the extraction tests cover it end to end too)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _stream

DATA = bytes(range(256)) * 5000  # 1.28 MB: more than one read


@pytest.mark.parametrize(
    ('kind', 'pack'),
    [('tar', lambda d: d), ('gz', gzip.compress), ('bz2', bz2.compress), ('xz', lzma.compress)],
)
def test_chunks_decompress_every_supported_kind(kind, pack):
    raw = io.BytesIO(pack(DATA))
    head = raw.read(_stream.RAW_CHUNK)
    assert _stream.compression(head) == kind
    assert b''.join(_stream.chunks(raw, head, 'a.tar')) == DATA


def test_concatenated_gzip_streams_read_as_one():
    raw = io.BytesIO(gzip.compress(b'first ') + gzip.compress(b'second'))
    head = raw.read(_stream.RAW_CHUNK)
    assert b''.join(_stream.chunks(raw, head, 'a.tar.gz')) == b'first second'


def test_truncated_stream_is_refused_naming_the_archive():
    data = gzip.compress(DATA)
    raw = io.BytesIO(data[: len(data) // 2])
    head = raw.read(_stream.RAW_CHUNK)
    with pytest.raises(_stream.ExtractError, match='a.tar.gz: gz stream is truncated') as caught:
        b''.join(_stream.chunks(raw, head, 'a.tar.gz'))
    assert caught.value.path == 'a.tar.gz'


def test_pump_hands_over_chunks_and_errors():
    def gen():
        yield b'a'
        yield b'b'
        raise _stream.ExtractError('cannot read archive x: boom', path='x')

    pump = _stream.Pump(gen())
    try:
        assert next(pump) == b'a' and next(pump) == b'b'
        with pytest.raises(_stream.ExtractError, match='boom'):
            next(pump)
    finally:
        pump.close()


def test_forward_reader_reads_across_chunks_and_never_seeks_back():
    reader = _stream.ForwardReader(iter([b'abc', b'', b'defg', b'h']))
    assert reader.read(2) == b'ab'
    assert reader.read(4) == b'cdef'
    assert reader.tell() == 6 and reader.last == b'cdef'
    assert reader.seek(7) == 7
    with pytest.raises(OSError, match='backwards'):
        reader.seek(1)
    assert reader.read() == b'h'


def test_replay_gives_back_the_head_first():
    replay = _stream.Replay(b'head', io.BytesIO(b'rest'))
    assert replay.read(100) == b'head'
    assert replay.read(100) == b'rest'


def test_os_message_is_lower_case():
    assert _stream.os_message(OSError(2, 'No such file or directory')) == 'no such file or directory'
