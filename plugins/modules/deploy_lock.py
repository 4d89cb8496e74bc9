#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_lock
short_description: Take or release the deploy lock of a deploy root
version_added: 0.1.0
description:
  - Keeps two deploys (or a deploy and a rollback or prune) from working on the same root at once.
  - The lock is C(ROOT/.deploy/lock), a JSON record of who holds it (user, controller host,
    playbook, AWX job), for which release, since when, and until when. It outlives the module
    run, so one lock covers a whole deploy.
  - Taking the lock is atomic. Every change to the record happens under C(flock(2)) on
    C(ROOT/.deploy/lock.guard), which the kernel drops when a process dies, so a cancelled job
    never leaves the guard held and two runs that find the same expired lock cannot both take it.
  - A lock past its expiry is taken over with a warning. A live lock is only taken over with
    O(steal=true).
author:
  - atomic.deploy maintainers (@atomic-deploy)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - atomic.deploy.common
options:
  state:
    description:
      - V(present) takes the lock, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  token:
    description:
      - Identifies the holder. With V(present), holding the lock already with this token changes
        nothing; a new random token is made when omitted and returned as RV(token).
      - With V(absent), only a lock held with this token is released; a lock that another run took
        over is left alone, with a warning. Without a token any lock is released (an administrator's unlock).
    type: str
  release_id:
    description: The release the lock is taken for, shown to anyone who finds the lock held.
    type: str
  timeout:
    description:
      - Seconds until the lock expires and may be taken over by the next deploy.
      - Pick more than your longest deploy, migrations included.
    type: int
    default: 3600
  steal:
    description: Take the lock over even when another deploy holds it and it has not expired.
    type: bool
    default: false
  wait:
    description: Seconds to wait for a held lock to be released or to expire before failing.
    type: int
    default: 0
  owner:
    description:
      - Who is deploying. The action plugin fills in C(user), C(controller), C(playbook), under
        AWX C(awx_job_id) (from C(awx_job_id) or C(tower_job_id)), and in a CI job C(ci_job_url) (from
        C(CI_JOB_URL), C(GITHUB_RUN_ID) or C(BUILD_URL) in the controller's environment); keys given here win.
    type: dict
attributes:
  action:
    support: full
    details: the action plugin fills in O(owner) from the controller.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - Run on each host; the lock is per deploy root on that host.
seealso:
  - module: atomic.deploy.release
"""

EXAMPLES = r"""
- name: Take the deploy lock for this play
  atomic.deploy.deploy_lock:
    root: /srv/www/example
    release_id: "20260112T143052Z"
    timeout: 1800
  register: deploy_lock

- name: Release it (only if it is still ours)
  atomic.deploy.deploy_lock:
    root: /srv/www/example
    state: absent
    token: "{{ deploy_lock.token }}"

- name: Take over a lock left by a cancelled job
  atomic.deploy.deploy_lock:
    root: /srv/www/example
    steal: true

# The playbook atomic.deploy.unlock shows the holder and frees the lock only with its token or force.
- name: Free a lock left by a cancelled job, whoever holds it
  atomic.deploy.deploy_lock:
    root: /srv/www/example
    state: absent
  register: unlocked

- name: Say whose lock it was
  ansible.builtin.debug:
    msg: "released the lock of {{ unlocked.released.holder }}"
  when: unlocked.released
"""

RETURN = r"""
token:
  description: The token that holds the lock (V(present)), or the one given (V(absent)).
  returned: always
  type: str
  sample: 4f1c0d7e9b2a4c1f8e3d5a6b7c8d9e0f
acquired:
  description: Whether this run holds the lock after the task.
  returned: always
  type: bool
lock:
  description: The lock record on disk after the task (V(null) when no lock is held).
  returned: always
  type: dict
  sample:
    owner: {user: deploy, controller: ci-runner-3, playbook: deploy.yml}
    release_id: 20260112T143052Z
    started: "2026-01-12T14:30:52.000000Z"
    expires: "2026-01-12T15:30:52.000000Z"
taken_over:
  description: The record of an expired or stolen lock this run replaced, else V(null).
  returned: always
  type: dict
released:
  description:
    - With V(absent), the record of the lock this run released (or would release in check mode), without its
      token, plus C(expired) and C(holder), a line that says who held it, from which playbook and job, for which
      release, since when; else V(null).
  returned: always
  type: dict
  sample:
    owner: {user: deploy, controller: ci-runner-3, playbook: deploy.yml, awx_job_id: 4242}
    release_id: 20260112T143052Z
    started: "2026-01-12T14:30:52.000000Z"
    expires: "2026-01-12T15:30:52.000000Z"
    expired: false
    holder: >-
      deploy@ci-runner-3 (playbook deploy.yml, awx job 4242, release 20260112T143052Z) since
      2026-01-12T14:30:52.000000Z, expires 2026-01-12T15:30:52.000000Z
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.atomic.deploy.plugins.module_utils import _common, _lock, _release


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            _common.ROOT_SPEC,
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            token=dict(type='str', no_log=False),
            release_id=dict(type='str'),
            timeout=dict(type='int', default=3600),
            steal=dict(type='bool', default=False),
            wait=dict(type='int', default=0),
            owner=dict(type='dict'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = dict(changed=False, token=params['token'], acquired=False, lock=None, taken_over=None, released=None)
    try:
        layout = _release.Layout(params['root'])
        if params['timeout'] < 1:
            raise ValueError(f'timeout must be at least 1 second, got {params["timeout"]}')
        if params['wait'] < 0:
            raise ValueError(f'wait must not be negative, got {params["wait"]}')
        if params['state'] == 'absent':
            outcome = _lock.release(deploy_dir=layout.deploy, token=params['token'], check_mode=module.check_mode)
            result['changed'] = outcome['changed']
            if outcome['changed']:
                result['released'] = _lock.shown(outcome['record'])
            if outcome['warning']:
                module.warn(outcome['warning'])
                result['lock'] = _lock.shown(outcome['record'])
        else:
            token = params['token'] or _lock.new_token()
            result['token'] = token
            if not module.check_mode:
                _release.ensure_deploy_dir(layout)
            outcome = _lock.acquire(
                deploy_dir=layout.deploy,
                token=token,
                owner=params['owner'],
                release_id=params['release_id'],
                timeout=params['timeout'],
                steal=params['steal'],
                wait=params['wait'],
                check_mode=module.check_mode,
            )
            if outcome['warning']:
                module.warn(outcome['warning'])
            result.update(
                changed=outcome['changed'],
                acquired=True,
                lock=_lock.public(outcome['record']),
                taken_over=_lock.public(outcome['taken_over']),
            )
    except (_release.ReleaseError, _lock.LockHeld, OSError, ValueError) as exc:
        _common.fail(module, exc, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
