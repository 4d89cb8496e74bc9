# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tests/hosts/hostctl.py writes nothing but its JSON to standard output.

molecule/_shared/create.yml parses what ``hostctl.py up`` prints; on a machine without debootstrap
the install ran apt-get with its output on standard output, and the JSON was not JSON. Here a fake
apt-get stands in (this machine has debootstrap, and it cannot be uninstalled safely)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

HOSTCTL = Path(__file__).resolve().parents[1] / 'hosts' / 'hostctl.py'
_spec = importlib.util.spec_from_file_location('hostctl_output', HOSTCTL)
hostctl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostctl)


def test_debootstrap_install_writes_to_stderr_only(tmp_path: Path, monkeypatch, capfd) -> None:
    calls = tmp_path / 'calls'
    fake = tmp_path / 'apt-get'
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\necho "Reading package lists... Done"\necho "W: a warning" >&2\n')
    fake.chmod(0o755)
    # debootstrap is not on this PATH, so the install path runs (with the fake apt-get)
    monkeypatch.setenv('PATH', str(tmp_path))
    hostctl.ensure_debootstrap()
    out, err = capfd.readouterr()
    assert out == ''
    assert 'Reading package lists... Done' in err and 'W: a warning' in err
    assert 'debootstrap is missing' in err
    assert calls.read_text().splitlines() == ['update -q', 'install -y -q debootstrap']
    assert os.environ['PATH'] == str(tmp_path)
