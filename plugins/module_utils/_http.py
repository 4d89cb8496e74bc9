# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""URL checks for atomic.deploy.release_check: poll a URL until it answers as the expected release.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice. No AnsibleModule code and no network code of its own: the caller passes
an ``opener`` (the module wraps ``ansible.module_utils.urls.open_url``), so plain pytest tests every
rule here with a fake one, and the clock and sleep are injectable too.

An opener is called as ``opener(url, headers=..., timeout=..., validate_certs=...)`` and returns an
``Answer`` for any HTTP status (a 500 is an answer, not an error); it raises ``OSError`` (or any
exception) when nothing answered: refused, timed out, TLS failure.
"""

from __future__ import annotations

import re
import time

# Refuses a target Python older than the modules need, before the module does anything.
from ansible_collections.atomic.deploy.plugins.module_utils import _python  # noqa: F401 pylint: disable=unused-import

# A release id is letters, digits, '.', '_' and '-' (module_utils/_release.py). "As a whole word"
# means not glued to more id characters on either side: v1 is found in "release v1." and in
# "<b>v1</b>", not in "v10", "v1.2" or "pre-v1".
_ID_CHAR = r'A-Za-z0-9_\-'

# Enough of a page to find an id or a marker in; a health URL that streams forever cannot hang us.
MAX_BODY = 1024 * 1024


class Answer:
    """One HTTP response: status, headers (looked up case-insensitively) and the body as text."""

    def __init__(self, *, status: int, headers=None, body='') -> None:
        self.status = status
        self.headers = {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
        self.body = body.decode('utf-8', 'replace') if isinstance(body, bytes) else str(body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Spec:
    """What the check expects. Built from the module's parameters; ``validate`` names a bad one."""

    def __init__(
        self,
        *,
        url: str,
        status_code=(200,),
        timeout: float = 10.0,
        retries: int = 4,
        delay: float = 0.5,
        validate_certs: bool = True,
        headers=None,
        expect_id: str | None = None,
        id_header: str | None = None,
        expect_body: str | None = None,
        known_ids=(),
    ) -> None:
        self.url = url
        self.status_code = [int(code) for code in status_code]
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.delay = float(delay)
        self.validate_certs = bool(validate_certs)
        self.headers = dict(headers or {})
        self.expect_id = expect_id or None
        self.id_header = id_header or None
        self.expect_body = expect_body or None
        self.known_ids = [ident for ident in known_ids or [] if ident]

    @property
    def attempts(self) -> int:
        return self.retries + 1


def validate(*, spec: Spec) -> list[str]:
    """The problems with a spec, each naming the option; empty when it can run."""
    problems = []
    if not re.match(r'^https?://[^/\s]+', spec.url or ''):
        problems.append(f'url {spec.url!r} is not an http:// or https:// url')
    if not spec.status_code:
        problems.append('status_code must list at least one status')
    if spec.retries < 0:
        problems.append(f'retries must be 0 or more, got {spec.retries}')
    if spec.delay < 0:
        problems.append(f'delay must be 0 or more, got {spec.delay}')
    if spec.timeout <= 0:
        problems.append(f'timeout must be more than 0, got {spec.timeout}')
    if spec.id_header and not spec.expect_id:
        problems.append(f'id_header {spec.id_header} needs expect_id: the header is compared with it')
    return problems


def find_word(*, text: str, word: str):
    """The first match of ``word`` in ``text`` as a whole word (see _ID_CHAR), or None."""
    if not word:
        return None
    return re.search(rf'(?<![{_ID_CHAR}.]){re.escape(word)}(?![{_ID_CHAR}])(?!\.[{_ID_CHAR}])', text)


def has_word(*, text: str, word: str) -> bool:
    return find_word(text=text, word=word) is not None


def identify(*, answer: Answer, spec: Spec) -> str | None:
    """The release id the answer carries: ``expect_id`` if found, else the first known id, else None.

    With ``id_header`` only that header is read, and a value naming none of the ids is returned as it
    is (trimmed), so the failure message shows what the server said.
    """
    if spec.id_header:
        value = answer.header(spec.id_header)
        if value is None:
            return None
        text = value.strip()
    else:
        text = answer.body
    if spec.expect_id and has_word(text=text, word=spec.expect_id):
        return spec.expect_id
    found = []
    for ident in spec.known_ids:
        match = find_word(text=text, word=ident)
        if match:
            found.append((match.start(), ident))
    if found:
        return min(found)[1]
    if spec.id_header and text:
        return text[:128]
    return None


def problems_of(*, answer: Answer, spec: Spec, answered_id: str | None) -> list[str]:
    """Why this answer does not pass; empty when it does."""
    problems = []
    if answer.status not in spec.status_code:
        expected = ', '.join(str(code) for code in spec.status_code)
        problems.append(f'answered status {answer.status}, expected {expected}')
    if spec.expect_id and answered_id != spec.expect_id:
        where = f'header {spec.id_header}' if spec.id_header else 'body'
        if spec.id_header and answer.header(spec.id_header) is None:
            problems.append(f'answered without a {spec.id_header} header, not as release {spec.expect_id}')
        else:
            shown = f'release {answered_id}' if answered_id else 'no known release'
            problems.append(f'answered as {shown}, not {spec.expect_id} ({where})')
    if spec.expect_body and spec.expect_body not in answer.body:
        problems.append(f'body does not contain {spec.expect_body!r}')
    return problems


def poll(*, spec: Spec, opener, sleep=time.sleep, clock=time.monotonic) -> dict:
    """Request the URL up to ``spec.attempts`` times, ``spec.delay`` apart, until one answer passes.

    Returns the module's result keys: url, status (of the last answer, None if nothing answered),
    answered_id, attempts, elapsed, ok, and ``msg``: what passed, or why the last attempt failed.
    """
    started = clock()
    status = None
    answered_id = None
    problems: list[str] = []
    attempts = 0
    for attempt in range(spec.attempts):
        if attempt:
            sleep(spec.delay)
        attempts += 1
        try:
            answer = opener(spec.url, headers=spec.headers, timeout=spec.timeout, validate_certs=spec.validate_certs)
        except Exception as exc:  # refused, timed out, TLS: the next attempt may get through
            status = None
            answered_id = None
            problems = [f'did not answer: {describe_error(exc)}']
            continue
        status = answer.status
        answered_id = identify(answer=answer, spec=spec)
        problems = problems_of(answer=answer, spec=spec, answered_id=answered_id)
        if not problems:
            break
    elapsed = round(clock() - started, 3)
    ok = not problems
    tries = f'{attempts} attempt{"" if attempts == 1 else "s"} in {elapsed:.1f} s'
    if ok:
        as_id = f' as release {answered_id}' if spec.expect_id else ''
        msg = f'{spec.url} answered {status}{as_id}, {tries}'
    else:
        status_named = status is None or status not in spec.status_code
        last = '' if status_named else f', status {status}'
        msg = f'{spec.url} {"; ".join(problems)}{last}, {tries}'
    return {
        'url': spec.url,
        'status': status,
        'answered_id': answered_id,
        'attempts': attempts,
        'elapsed': elapsed,
        'ok': ok,
        'msg': msg,
    }


def describe_error(exc: BaseException) -> str:
    """A short lower-case reason for a request that got no answer."""
    reason = getattr(exc, 'reason', None) or exc
    text = getattr(reason, 'strerror', None) or str(reason).strip()
    if not text:
        return type(reason).__name__
    return text[0].lower() + text[1:]
