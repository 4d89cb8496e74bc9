# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers shared by the test suites (see tests/README.md).

- ``root``: reading what a deploy left in a deploy root (current, releases, metadata, history, lock).
- ``playbook``: finding the tools and a clean environment for running ansible-playbook.
- ``users``: running a function in a forked child as another user; the web user (``web_user``).
- ``net``: a free loopback port (``free_port``).
- ``modules``: running a module's main() in-process, on every ansible-core from 2.16 on.

The role, reliability and ecosystem suites import it as ``support`` (their pytest.ini or run.sh put
tests/ on sys.path); the unit tests import it as ``ansible_collections.atomic.deploy.tests.support``,
which works both under ansible-test units and a plain pytest run.
"""
