# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The helpers the suites share (tests/support): a free port, the web user, the playbook environment."""

from __future__ import annotations

import pwd
import socket
from pathlib import Path

import pytest
from ansible_collections.atomic.deploy.tests.support import ansible, net, users


def test_free_port_is_free_on_loopback() -> None:
    port = net.free_port()
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', port))


def test_web_user_prefers_www_data_then_nobody(monkeypatch) -> None:
    known = {'nobody'}
    root = pwd.getpwnam('root')

    def getpwnam(name: str):
        if name not in known:
            raise KeyError(name)
        return root

    monkeypatch.setattr(users.pwd, 'getpwnam', getpwnam)
    assert users.web_user() == 'nobody'
    known.add('www-data')
    assert users.web_user() == 'www-data'
    known.clear()
    with pytest.raises(users.UserMissing, match='neither www-data nor nobody'):
        users.web_user()


def test_playbook_env_drops_what_would_send_ansible_elsewhere(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv('ANSIBLE_CONFIG', '/elsewhere/ansible.cfg')
    monkeypatch.setenv('RELIABILITY_PAUSE_AT', '3')
    env = ansible.playbook_env(workdir=tmp_path, drop_prefixes=('ANSIBLE_', 'RELIABILITY_'), ANSIBLE_PIPELINING='true')
    assert 'ANSIBLE_CONFIG' not in env and 'RELIABILITY_PAUSE_AT' not in env
    assert env['ANSIBLE_COLLECTIONS_PATH'] == str(ansible.COLLECTIONS_ROOT)
    assert env['ANSIBLE_LOCAL_TEMP'] == str(tmp_path / 'ansible-local')
    assert env['ANSIBLE_PIPELINING'] == 'true' and env['ANSIBLE_NOCOLOR'] == '1'
