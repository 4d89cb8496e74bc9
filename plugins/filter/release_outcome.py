# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.atomic.deploy.plugins.plugin_utils import _outcome

DOCUMENTATION = r"""
name: release_outcome
short_description: "What a failed deploy of the release role does on a host"
version_added: 0.1.0
author:
  - atomic.deploy maintainers (@atomic-deploy)
description:
  - "For the rescue of the C(atomic.deploy.release) role: whether the host switched, the release to
    roll back to, whether it still holds the deploy lock, the reasons (records with C(host),
    C(cause) and C(msg): the gate of the batch when one was reached, else the host's own failure),
    and the reason recorded when the role marks the release failed. Computed once, at the start of
    the rescue, before anything there changes the results it reads."
positional: plan, host, check_mode
options:
  _input:
    description: "C(hostvars)."
    type: dict
    required: true
  plan:
    description: "The plan of the run (M(atomic.deploy.release_plan))."
    type: dict
    required: true
  host:
    description: "The host (C(inventory_hostname))."
    type: str
    required: true
  check_mode:
    description: "C(ansible_check_mode)."
    type: bool
    required: false
"""

EXAMPLES = r"""
- name: Show what a failed deploy of the release role does on a host
  ansible.builtin.debug:
    msg: "{{ hostvars | atomic.deploy.release_outcome(__release, inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: "C(host), C(switched), C(current_before), C(rollback_target), C(holding), C(mark_failed),
    C(reasons), C(reason), C(failed_reason)."
  type: dict
"""


def release_outcome(hostvars, plan, host, check_mode=False):
    state = _outcome.states(hostvars, [host])[host]
    result = _outcome.outcome(host=host, plan=plan, state=state, check_mode=bool(check_mode))
    result['failed_reason'] = _outcome.failed_reason(result=result)
    return result


class FilterModule:
    def filters(self):
        return {'release_outcome': release_outcome}
