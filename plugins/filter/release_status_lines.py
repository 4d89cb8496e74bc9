# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.atomic.deploy.plugins.plugin_utils import _status

DOCUMENTATION = r"""
name: release_status_lines
short_description: "The lines the release role's status entry point prints"
version_added: 0.1.0
author:
  - atomic.deploy maintainers (@atomic-deploy)
description:
  - "Formats an M(atomic.deploy.releases_info) result: the root, current, the rollback candidate,
    the lock (V(free), or who holds it for which release since when), the release table and the
    latest history entries."
positional: root
options:
  _input:
    description: "The M(atomic.deploy.releases_info) result."
    type: dict
    required: true
  root:
    description: "The deploy root, as shown."
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Show the lines the release role's status entry point prints
  ansible.builtin.debug:
    msg: "{{ release_status_result | atomic.deploy.release_status_lines(release_root) }}"
"""

RETURN = r"""
_value:
  description: "The lines."
  type: list
  elements: str
"""


def release_status_lines(result, root):
    return _status.status_lines(result, root=str(root))


class FilterModule:
    def filters(self):
        return {'release_status_lines': release_status_lines}
