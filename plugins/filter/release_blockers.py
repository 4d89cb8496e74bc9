# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.atomic.deploy.plugins.plugin_utils import _outcome

DOCUMENTATION = r"""
name: release_blockers
short_description: "Why a batch of the release role cannot switch, or must roll back"
version_added: 0.1.0
author:
  - atomic.deploy maintainers (@atomic-deploy)
description:
  - "Reads the results the C(atomic.deploy.release) role registered on every host of the batch and
    returns one record per host and cause, in batch order, with C(host), C(cause) and C(msg)."
  - "Causes before the switch (O(phase=pre)): V(stage) (staging failed), V(migrate) (the migrations
    failed, named once), V(prepare) (a hook or the health check command failed)."
  - "Causes after the switch (O(phase=post)): V(switch) (the host did not switch), V(verify) (a
    reload, hook or URL check failed)."
  - "Internal to the role: its flow branches on C(cause), never on the text of a message."
positional: plan, phase
options:
  _input:
    description: "C(hostvars)."
    type: dict
    required: true
  plan:
    description: "The plan of the run (M(atomic.deploy.release_plan))."
    type: dict
    required: true
  phase:
    description: "V(pre) before the switch, V(post) after it."
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Show why a batch of the release role cannot switch, or must roll back
  ansible.builtin.debug:
    msg: "{{ hostvars | atomic.deploy.release_blockers(__release, 'pre') }}"
"""

RETURN = r"""
_value:
  description: "One record per host and cause."
  type: list
  elements: dict
"""


def release_blockers(hostvars, plan, phase):
    if phase not in ('pre', 'post'):
        raise AnsibleFilterError(f'release_blockers: phase must be pre or post, got {phase!r}')
    return _outcome.blockers(phase=phase, plan=plan, states=_outcome.states(hostvars, plan['batch']))


class FilterModule:
    def filters(self):
        return {'release_blockers': release_blockers}
