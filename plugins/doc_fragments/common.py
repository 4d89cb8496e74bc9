# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  root:
    description:
      - The deploy root, holding C(releases/), C(shared/), C(current) and C(.deploy/).
      - Must be an absolute path.
    type: path
    required: true
"""

    LOCK = r"""
options:
  lock_token:
    description:
      - The token of the deploy lock this run holds (see M(atomic.deploy.deploy_lock)).
      - When given, the module fails unless C(ROOT/.deploy/lock) is still held with this token,
        so a deploy whose lock was taken over stops instead of racing the new owner.
    type: str
  owner:
    description:
      - Who is deploying, recorded in the lock, the release metadata and the history.
      - Filled in on the controller by the action plugin with C(user), C(controller) (host
        name), C(playbook) and, under AWX, C(awx_job_id) and C(awx_user_name); keys given here win.
    type: dict
"""

    INLINE_LOCK = r"""
options:
  lock_timeout:
    description:
      - Seconds until the deploy lock this module run takes expires.
      - M(atomic.deploy.release) takes it with O(atomic.deploy.release#module:lock=true);
        M(atomic.deploy.release_prune) and M(atomic.deploy.release_rollback) take it for their own run
        when O(lock_token) is not given.
    type: int
    default: 3600
  lock_steal:
    description: Take the lock over even if another live deploy holds it (when this run takes the lock).
    type: bool
    default: false
"""
