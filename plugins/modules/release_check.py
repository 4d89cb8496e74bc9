#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_check
short_description: Check that a URL answers as the expected release, not only that it answers
version_added: 0.1.0
description:
  - Requests O(url) until an answer passes or the attempts run out, O(retries) + 1 attempts,
    O(delay) seconds apart, each limited to O(timeout) seconds. All of it is one module run, so a
    check costs one task, not one task per attempt.
  - An answer passes when its status is in O(status_code), it carries the release id O(expect_id)
    (when given) and its body contains O(expect_body) (when given).
  - The release id is looked for in the response header O(id_header) when it is set, else in the
    body, as a whole word (V(v1) is not found in V(v10) or V(v1.2)). A release can expose its id
    without code of its own through the C(id_file) option of M(atomic.deploy.release).
  - When the check fails the message names the url, the expected id, the id that answered (looked
    for among O(known_ids)), the last status, the attempts and the time they took, for example
    "http://127.0.0.1/ answered as release v1, not v2 (header X-Release), status 200, 5 attempts in 2.1 s".
  - Runs on the managed host, like M(ansible.builtin.uri), so V(http://127.0.0.1/) is the host's own
    web server. Read-only, so it also runs in check mode, and never reports a change.
  - Redirects are not followed. A redirect answers with its own status, which O(status_code) must
    list if it is expected.
author:
  - atomic.deploy maintainers (@atomic-deploy)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
requirements:
  - Python 3.8 or newer on the target; on an older one the module fails with a message that says so.
options:
  url:
    description: The URL to request (C(http://) or C(https://)), with a GET.
    type: str
    required: true
  status_code:
    description: Statuses that pass.
    type: list
    elements: int
    default: [200]
  timeout:
    description: Seconds one request may take (connect and read).
    type: float
    default: 10
  retries:
    description:
      - Attempts after the first one, when an answer does not pass or nothing answers.
      - With the defaults a release that never passes is known to be bad after about 2 s
        (4 delays of 0.5 s plus the requests).
    type: int
    default: 4
  delay:
    description: Seconds between two attempts.
    type: float
    default: 0.5
  validate_certs:
    description: Verify the server's TLS certificate for C(https://) URLs.
    type: bool
    default: true
  headers:
    description:
      - Request headers, for example C(Host) to reach a name-based server block on the same port.
    type: dict
    default: {}
  expect_id:
    description:
      - The release id the answer must carry, in O(id_header) when it is set, else in the body
        as a whole word.
      - Unset, any release passes (the check is then about status and body only).
    type: str
  id_header:
    description:
      - Response header that must carry O(expect_id) (for example V(X-Release)). The body is not
        searched then. Needs O(expect_id).
    type: str
  expect_body:
    description: Text the body must contain (a plain substring, case-sensitive).
    type: str
  known_ids:
    description:
      - Other release ids (the previous release, say), used only to name which release answered
        when it is not O(expect_id).
    type: list
    elements: str
    default: []
attributes:
  action:
    support: full
    details: the action plugin only turns a target Python older than 3.8 into a clear failure.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: the requests are made in check mode too; they change nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - The atomic.deploy.release role runs this module after the switch (C(release_healthcheck_url)) and,
    against C(ROOT/next), before it (C(release_precheck_url)).
seealso:
  - module: ansible.builtin.uri
  - module: atomic.deploy.release
"""

EXAMPLES = r"""
- name: The new release answers, as itself (its id in the page)
  atomic.deploy.release_check:
    url: http://127.0.0.1/
    expect_id: "{{ release_id }}"
    known_ids: ["{{ previous_release_id }}"]

- name: The id in a response header, with a status of 200 or 204
  atomic.deploy.release_check:
    url: http://127.0.0.1/health
    status_code: [200, 204]
    expect_id: "20260112T143052Z"
    id_header: X-Release

- name: A staged release through a server block that only answers to Host next.internal
  atomic.deploy.release_check:
    url: http://127.0.0.1:8081/
    headers:
      Host: next.internal
    expect_body: "db: ok"
    retries: 2
    delay: 1
"""

RETURN = r"""
url:
  description: The URL requested.
  returned: always
  type: str
  sample: http://127.0.0.1/
status:
  description: Status of the last answer; null when nothing answered.
  returned: always
  type: int
  sample: 200
answered_id:
  description:
    - The release id the last answer carried (O(expect_id) or one of O(known_ids)); with O(id_header),
      the header's value when it names none of them. Null when none was found.
  returned: always
  type: str
  sample: "20260112T143052Z"
attempts:
  description: Requests made, at most O(retries) + 1.
  returned: always
  type: int
  sample: 1
elapsed:
  description: Seconds from the first request to the end of the last one, delays included.
  returned: always
  type: float
  sample: 0.012
ok:
  description: Whether an answer passed. The module fails when it is false.
  returned: always
  type: bool
  sample: true
"""

import contextlib
from urllib.error import HTTPError

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

# _python refuses a target Python older than 3.8, as for every other module (through _fs).
from ansible_collections.atomic.deploy.plugins.module_utils import (  # pylint: disable=unused-import
    _http,
    _python,  # noqa: F401
)


def open_answer(url: str, *, headers: dict, timeout: float, validate_certs: bool) -> _http.Answer:
    """One GET through open_url; any HTTP status is an answer (open_url raises HTTPError for them)."""
    try:
        response = open_url(
            url,
            headers=headers,
            timeout=timeout,
            validate_certs=validate_certs,
            follow_redirects='none',
            http_agent='atomic.deploy.release_check',
        )
    except HTTPError as exc:
        body = b''
        if exc.fp is not None:
            with contextlib.suppress(OSError, ValueError):
                body = exc.read(_http.MAX_BODY)
        return _http.Answer(status=exc.code, headers=dict(exc.headers or {}), body=body)
    with contextlib.closing(response):
        return _http.Answer(
            status=response.getcode(), headers=dict(response.headers), body=response.read(_http.MAX_BODY)
        )


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            status_code=dict(type='list', elements='int', default=[200]),
            timeout=dict(type='float', default=10),
            retries=dict(type='int', default=4),
            delay=dict(type='float', default=0.5),
            validate_certs=dict(type='bool', default=True),
            headers=dict(type='dict', default={}),
            expect_id=dict(type='str'),
            id_header=dict(type='str'),
            expect_body=dict(type='str'),
            known_ids=dict(type='list', elements='str', default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    spec = _http.Spec(
        url=params['url'],
        status_code=params['status_code'],
        timeout=params['timeout'],
        retries=params['retries'],
        delay=params['delay'],
        validate_certs=params['validate_certs'],
        headers=params['headers'],
        expect_id=params['expect_id'],
        id_header=params['id_header'],
        expect_body=params['expect_body'],
        known_ids=params['known_ids'],
    )
    result = dict(changed=False, url=spec.url, status=None, answered_id=None, attempts=0, elapsed=0.0, ok=False)
    problems = _http.validate(spec=spec)
    if problems:
        module.fail_json(msg='; '.join(problems), **result)
    result.update(_http.poll(spec=spec, opener=open_answer))
    if not result['ok']:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
