# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.atomic.deploy.plugins.plugin_utils import _outcome

DOCUMENTATION = r"""
name: release_holding
short_description: "Whether a host still holds the deploy lock of a release role run"
version_added: 0.1.0
author:
  - atomic.deploy maintainers (@atomic-deploy)
description:
  - "False in check mode, when staging failed or found the release live, and once the switch, the
    role's mark-failed step or its unlock step released the lock of this run (each result is checked
    against the run's lock token)."
positional: stage, results, check_mode
options:
  _input:
    description: "The plan of the run (M(atomic.deploy.release_plan))."
    type: dict
    required: true
  stage:
    description: "C(release_stage_result)."
    type: dict
    required: true
  results:
    description: "The results that may have released the lock (switch, mark failed, unlock); undefined ones as
      V(null)."
    type: list
    required: true
  check_mode:
    description: "C(ansible_check_mode)."
    type: bool
    required: false
"""

EXAMPLES = r"""
- name: Show whether a host still holds the deploy lock of a release role run
  ansible.builtin.debug:
    msg: __release | atomic.deploy.release_holding(release_stage_result, [release_switch_result | default(none)])
"""

RETURN = r"""
_value:
  description: "Whether the lock is still held."
  type: bool
"""


def release_holding(plan, stage, results, check_mode=False):
    switch, marked, unlock = (list(results or []) + [None, None, None])[:3]
    state = {'stage': stage, 'switch': switch, 'marked': marked, 'unlock': unlock}
    return _outcome.holding(plan=plan, state=state, check_mode=bool(check_mode))


class FilterModule:
    def filters(self):
        return {'release_holding': release_holding}
