# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.atomic.deploy.plugins.plugin_utils import _plan

DOCUMENTATION = r"""
name: release_switch_delay
short_description: "The release role switch delay in seconds"
version_added: 0.1.0
author:
  - atomic.deploy maintainers (@atomic-deploy)
description:
  - "V(auto) (the default of C(release_switch_delay)) is 0 for one host, else 0.5 + 0.3 s per host
    running at once: C(min(batch, forks)). A number is taken as it is; a negative one is refused."
positional: batch, forks
options:
  _input:
    description: "V(auto) or seconds."
    type: raw
    required: true
  batch:
    description: "How many hosts switch together (C(ansible_play_batch | length))."
    type: int
    required: true
  forks:
    description: "C(ansible_forks)."
    type: int
    required: true
"""

EXAMPLES = r"""
- name: Show the release role switch delay in seconds
  ansible.builtin.debug:
    msg: "{{ release_switch_delay | atomic.deploy.release_switch_delay(ansible_play_batch | length, ansible_forks) }}"
"""

RETURN = r"""
_value:
  description: "Seconds."
  type: float
"""


def release_switch_delay(delay, batch, forks):
    try:
        return _plan.switch_delay(delay, batch=int(batch), forks=int(forks))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {'release_switch_delay': release_switch_delay}
