# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.atomic.deploy.plugins.plugin_utils import _plan

DOCUMENTATION = r"""
name: release_argv
short_description: "A release role command variable as an argv list"
version_added: 0.1.0
author:
  - atomic.deploy maintainers (@atomic-deploy)
description:
  - "A list is returned as it is (items as strings); a string is split on white space, never run by
    a shell."
  - "A string with shell syntax (C($\\(), backticks, quotes, C(|), C(;), C(&&), C(||), C(<), C(>),
    C(&)) is refused with a message that shows the argv list it would run and the C(sh -c) form."
positional: name
options:
  _input:
    description: "An argv list or a string."
    type: raw
    required: true
  name:
    description: "The variable name, for the error message."
    type: str
    required: false
"""

EXAMPLES = r"""
- name: Show a release role command variable as an argv list
  ansible.builtin.debug:
    msg: "{{ release_reload_command | atomic.deploy.release_argv('release_reload_command') }}"
"""

RETURN = r"""
_value:
  description: "The argv."
  type: list
  elements: str
"""


def release_argv(command, name='command'):
    try:
        return _plan.command_argv(command, name=str(name))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {'release_argv': release_argv}
