# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.atomic.deploy.plugins.plugin_utils import _outcome

DOCUMENTATION = r"""
name: release_failure_message
short_description: "The message a failed deploy of the release role ends with"
version_added: 0.1.0
author:
  - atomic.deploy maintainers (@atomic-deploy)
description:
  - "What failed and on which host (the reasons of P(atomic.deploy.release_outcome#filter)), what was
    rolled back, where C(current) points now, and what failed after the rollback, for example
    C(release v2 failed after the switch: reload failed on host web1: ...; rolled back to v1:
    current points at v1 on host web1, release v2 is marked failed)."
positional: plan, rollback, after_rollback
options:
  _input:
    description: "The result of the C(atomic.deploy.release_outcome) filter."
    type: dict
    required: true
  plan:
    description: "The plan of the run (M(atomic.deploy.release_plan))."
    type: dict
    required: true
  rollback:
    description: "C(release_rollback_result), or V(null)."
    type: dict
    required: false
  after_rollback:
    description: "What failed after the rollback (hooks, reloads), if anything."
    type: str
    required: false
"""

EXAMPLES = r"""
- name: Show the message a failed deploy of the release role ends with
  ansible.builtin.debug:
    msg: "{{ __release_outcome | atomic.deploy.release_failure_message(__release, release_rollback_result) }}"
"""

RETURN = r"""
_value:
  description: "The message."
  type: str
"""


def release_failure_message(outcome, plan, rollback=None, after_rollback=''):
    return _outcome.final_message(plan=plan, result=outcome, rollback=rollback, after_rollback=after_rollback or '')


class FilterModule:
    def filters(self):
        return {'release_failure_message': release_failure_message}
