# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.atomic.deploy.plugins.plugin_utils import _outcome

DOCUMENTATION = r"""
name: release_stats
short_description: "The AWX artifacts of a deploy of the release role"
version_added: 0.1.0
author:
  - atomic.deploy maintainers (@atomic-deploy)
description:
  - "C(release_deployed_id), C(release_previous_id) (the release that was current before, on the
    first host that switched; an empty string for a first deploy) and C(release_switched_hosts)
    (every host of the run, all serial batches so far, that switched to the release)."
positional: plan
options:
  _input:
    description: "C(hostvars)."
    type: dict
    required: true
  plan:
    description: "The plan of the run (M(atomic.deploy.release_plan))."
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Show the AWX artifacts of a deploy of the release role
  ansible.builtin.debug:
    msg: "{{ hostvars | atomic.deploy.release_stats(__release) }}"
"""

RETURN = r"""
_value:
  description: "The C(set_stats) data."
  type: dict
"""


def release_stats(hostvars, plan):
    return _outcome.stats(plan=plan, states=_outcome.states(hostvars, plan['hosts']))


class FilterModule:
    def filters(self):
        return {'release_stats': release_stats}
