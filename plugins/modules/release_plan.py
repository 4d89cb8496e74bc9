#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_plan
short_description: Check the release role's variables and plan a deploy run, on the controller
version_added: 0.1.0
description:
  - Used by the C(atomic.deploy.release) role as the first task of a deploy. It runs on the
    controller only (an action plugin; nothing runs on the host). Like
    M(ansible.builtin.validate_argument_spec), it reads the role variables of the first host of the
    batch from the task vars; O(overrides) replaces some of them.
  - "Checks every rule that involves the role variables, once, and fails naming each variable that
    breaks one: C(release_root) absolute, a valid C(release_id), C(release_keep) at least 1, the
    variables each C(release_source) needs, the commands (C(release_migrate_command),
    C(release_healthcheck_command), C(release_reload_command)) argv lists or strings without shell
    syntax, non-negative retries and delays, C(release_switch_delay) V(auto) or seconds, and
    C(release_migrate_host) in the first serial batch."
  - Computes the release id (C(release_id), or the UTC time C(YYYYMMDDTHHMMSSZ)), the lock token,
    the migrate host and which optional steps run.
  - With C(run_once) and C(register=__release_plan), every host of the batch registers the plan; a
    later C(serial) batch of the same play finds it on the hosts of the batch before it, reuses its id
    and token, and does not migrate again. A later play, or the role run again for the same hosts,
    gets a new plan.
author:
  - atomic.deploy maintainers (@atomic-deploy)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.conn
  - ansible.builtin.action_common_attributes.flow
options:
  overrides:
    description:
      - Role variables to plan with instead of their values in the task vars, for example to check a
        planned C(release_id) before a deploy. Only the variables the plan reads are accepted.
    type: dict
    default: {}
attributes:
  action:
    support: full
  async:
    support: none
  become:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
  connection:
    support: none
  delegation:
    support: none
  diff_mode:
    support: none
  platform:
    platforms: all
seealso:
  - module: atomic.deploy.release
"""

EXAMPLES = r"""
- name: Plan and check the deploy
  atomic.deploy.release_plan:
  run_once: true
  register: __release_plan

- name: Check that a release id and keep count would be accepted
  atomic.deploy.release_plan:
    overrides:
      release_id: v2.4.0
      release_keep: 3
  run_once: true
"""

RETURN = r"""
plan:
  description: The plan of the run.
  returned: success
  type: dict
  contains:
    id:
      description: The release id, the same on every host and in every serial batch.
      type: str
      sample: 20260110T083022Z
    token:
      description: The deploy lock token of the run.
      type: str
    play:
      description: Every host of the play (C(ansible_play_hosts_all)).
      type: list
      elements: str
    hosts:
      description: The hosts of this run so far, this batch included.
      type: list
      elements: str
    batch:
      description: The hosts of this serial batch.
      type: list
      elements: str
    first:
      description: Whether this is the first batch of the run.
      type: bool
    migrate_host:
      description: The host that runs the migrations in this batch; empty when none does.
      type: str
    migrate_skipped:
      description: C(release_migrate_host) is not a host of this run, which therefore does not migrate.
      type: bool
    switch_delay:
      description:
        - Seconds from agreeing on the switch instant to the rename when C(release_switch_delay) is a
          number; with V(auto), the most the measured wait may be (0.5 + 0.3 s per host running at
          once), and the wait before a coordinated rollback.
      type: float
    switch_delay_auto:
      description:
        - C(release_switch_delay) is V(auto), so the wait before the switch is measured from how long the
          staging task took to start its module on every host of the batch, with a floor and RV(plan.switch_delay)
          as the cap (filter P(atomic.deploy.release_switch_instant#filter)).
      type: bool
    migrate_argv:
      description: The migration command as an argv list.
      type: list
      elements: str
    healthcheck_argv:
      description: The pre-activation health check command as an argv list.
      type: list
      elements: str
    expect_id:
      description: Whether the URL health check expects the release id in the answer.
      type: bool
    next_link:
      description:
        - Whether staging points C(ROOT/next) at the staged release (C(release_next_link), or a
          pre-switch URL check).
      type: bool
    precheck:
      description: Whether a pre-switch URL check (C(release_precheck_url)) runs through C(ROOT/next).
      type: bool
    coordinated:
      description: Whether the hosts of the batch switch (and roll back) together at one instant (several hosts).
      type: bool
    reloads:
      description: Whether services are reloaded or restarted, or a reload command runs, after the switch.
      type: bool
    rollback_steps:
      description: Whether an automatic rollback runs C(release_hooks_after_rollback) or reloads services.
      type: bool
    pre:
      description: Whether pre-activation steps (hooks, migrations, health check) are configured.
      type: bool
    checks:
      description: Whether post-activation steps (reloads, hooks, URL check) are configured.
      type: bool
problems:
  description: Every rule the role variables break, each naming the variable.
  returned: failure
  type: list
  elements: str
  sample: ['release_keep must be at least 1, got 0']
"""
