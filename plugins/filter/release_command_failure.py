# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.atomic.deploy.plugins.plugin_utils import _outcome

DOCUMENTATION = r"""
name: release_command_failure
short_description: "The message for a failed command of the release role"
version_added: 0.1.0
author:
  - atomic.deploy maintainers (@atomic-deploy)
description:
  - "C(<what> failed on host <host>: <msg> (rc N): <the last lines of stderr>); for a loop result,
    the message of each failed item instead of C(One or more items failed)."
positional: what, host
options:
  _input:
    description: "The registered result."
    type: dict
    required: true
  what:
    description: "What failed, for example V(migrations)."
    type: str
    required: true
  host:
    description: "The host it failed on."
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Show the message for a failed command of the release role
  ansible.builtin.debug:
    msg: "{{ release_migrate_result | atomic.deploy.release_command_failure('migrations', __release.migrate_host) }}"
"""

RETURN = r"""
_value:
  description: "The message."
  type: str
"""


def release_command_failure(result, what, host):
    return _outcome.command_failure(result, what=str(what), host=str(host))


class FilterModule:
    def filters(self):
        return {'release_command_failure': release_command_failure}
