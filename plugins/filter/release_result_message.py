# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.atomic.deploy.plugins.plugin_utils import _outcome

DOCUMENTATION = r"""
name: release_result_message
short_description: "The message of a failed task result, loops included"
version_added: 0.1.0
author:
  - atomic.deploy maintainers (@atomic-deploy)
description:
  - "The C(msg) of a result; for a loop, the message of each failed item (C(php-fpm: Could not find
    the requested service php-fpm)) instead of C(One or more items failed); for a command, its exit
    status and the last lines of its stderr."
options:
  _input:
    description: "A registered result, or C(ansible_failed_result)."
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Show the message of a failed task result, loops included
  ansible.builtin.debug:
    msg: "{{ ansible_failed_result | atomic.deploy.release_result_message }}"
"""

RETURN = r"""
_value:
  description: "The message."
  type: str
"""


def release_result_message(result):
    return _outcome.result_message(result)


class FilterModule:
    def filters(self):
        return {'release_result_message': release_result_message}
