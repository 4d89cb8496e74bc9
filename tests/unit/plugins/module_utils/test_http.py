# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for plugins/module_utils/_http.py: identity rules, polling, timing and failure messages."""

from __future__ import annotations

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _http

URL = 'http://127.0.0.1/'


class FakeClock:
    """monotonic() and sleep() that only move when slept (or when a request 'takes' time)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Opener:
    """Returns the queued answers in order (the last one repeats); an exception in the queue is raised."""

    def __init__(self, *answers, clock: FakeClock | None = None, takes: float = 0.0) -> None:
        self.answers = list(answers)
        self.calls: list[dict] = []
        self.clock = clock
        self.takes = takes

    def __call__(self, url, *, headers, timeout, validate_certs):
        self.calls.append({'url': url, 'headers': headers, 'timeout': timeout, 'validate_certs': validate_certs})
        if self.clock is not None:
            self.clock.now += self.takes
        item = self.answers[min(len(self.calls), len(self.answers)) - 1]
        if isinstance(item, BaseException):
            raise item
        return item


def page(ident: str, status: int = 200, **headers) -> _http.Answer:
    return _http.Answer(status=status, headers=headers, body=f'<p>release {ident}</p>\n<p>id {ident}</p>'.encode())


def run(spec: _http.Spec, opener: Opener, clock: FakeClock | None = None) -> dict:
    clock = clock or FakeClock()
    return _http.poll(spec=spec, opener=opener, sleep=clock.sleep, clock=clock.clock)


@pytest.mark.parametrize(
    ('text', 'word', 'found'),
    [
        ('release v1.', 'v1', True),
        ('<b>v1</b>', 'v1', True),
        ('v1', 'v1', True),
        ('/releases/v1/public', 'v1', True),
        ('release v10', 'v1', False),
        ('release v1.2', 'v1', False),
        ('release pre-v1', 'v1', False),
        ('release v1_b', 'v1', False),
        ('app.v1', 'v1', False),
        ('20260112T143052Z', '20260112T143052Z', True),
        ('x20260112T143052Z', '20260112T143052Z', False),
        ('release 1.2.3 is live', '1.2.3', True),
        ('release 1.2.30', '1.2.3', False),
        ('anything', '', False),
    ],
)
def test_has_word(text: str, word: str, found: bool) -> None:
    assert _http.has_word(text=text, word=word) is found


def test_answer_headers_are_case_insensitive_and_bytes_are_decoded() -> None:
    answer = _http.Answer(status=200, headers={'X-Release': 'v2'}, body=b'caf\xc3\xa9 \xff')
    assert answer.header('x-release') == 'v2' and answer.header('X-RELEASE') == 'v2'
    assert answer.header('X-Other') is None
    assert answer.body.startswith('café ')


def test_first_answer_passes_without_delay() -> None:
    clock = FakeClock()
    opener = Opener(page('v2'))
    result = run(_http.Spec(url=URL, expect_id='v2', known_ids=['v1']), opener, clock)
    assert result == {
        'url': URL,
        'status': 200,
        'answered_id': 'v2',
        'attempts': 1,
        'elapsed': 0.0,
        'ok': True,
        'msg': f'{URL} answered 200 as release v2, 1 attempt in 0.0 s',
    }
    assert clock.sleeps == []
    assert opener.calls == [{'url': URL, 'headers': {}, 'timeout': 10.0, 'validate_certs': True}]


def test_attempts_are_retries_plus_one_delay_apart_and_each_has_the_timeout() -> None:
    clock = FakeClock()
    opener = Opener(page('v1'), clock=clock, takes=0.1)
    spec = _http.Spec(url=URL, expect_id='v2', known_ids=['v1'], retries=4, delay=0.5, timeout=3)
    result = run(spec, opener, clock)
    assert result['attempts'] == 5 and len(opener.calls) == 5
    assert clock.sleeps == [0.5] * 4
    assert {call['timeout'] for call in opener.calls} == {3.0}
    assert result['elapsed'] == pytest.approx(2.5)
    assert result['ok'] is False


def test_retries_zero_means_one_attempt() -> None:
    clock = FakeClock()
    result = run(_http.Spec(url=URL, retries=0), Opener(page('v1', 500)), clock)
    assert result['attempts'] == 1 and clock.sleeps == []


def test_stops_at_the_first_answer_that_passes() -> None:
    clock = FakeClock()
    opener = Opener(page('v1'), page('v1'), page('v2'), page('v1'))
    result = run(_http.Spec(url=URL, expect_id='v2', known_ids=['v1'], retries=9, delay=1), opener, clock)
    assert result['ok'] is True and result['attempts'] == 3 and result['answered_id'] == 'v2'
    assert clock.sleeps == [1.0, 1.0]


def test_old_release_answering_fails_naming_both_ids() -> None:
    result = run(_http.Spec(url=URL, expect_id='v2', known_ids=['v1'], retries=4, delay=0.5), Opener(page('v1')))
    assert result['ok'] is False and result['answered_id'] == 'v1' and result['status'] == 200
    assert result['msg'] == f'{URL} answered as release v1, not v2 (body), status 200, 5 attempts in 2.0 s'


def test_header_identity_failure_message_matches_the_plan() -> None:
    spec = _http.Spec(url=URL, expect_id='v2', id_header='X-Release', known_ids=['v1'], retries=4, delay=0.5)
    result = run(spec, Opener(_http.Answer(status=200, headers={'x-release': 'v1'}, body='v2 everywhere v2')))
    assert result['answered_id'] == 'v1'
    assert result['msg'] == f'{URL} answered as release v1, not v2 (header X-Release), status 200, 5 attempts in 2.0 s'


def test_header_identity_ignores_the_body_and_passes_on_the_header() -> None:
    spec = _http.Spec(url=URL, expect_id='v2', id_header='X-Release')
    assert run(spec, Opener(_http.Answer(status=200, headers={'X-Release': ' v2 '}, body='v1')))['ok'] is True


def test_unknown_header_value_is_reported_as_it_is() -> None:
    spec = _http.Spec(url=URL, expect_id='v2', id_header='X-Release', retries=0)
    result = run(spec, Opener(_http.Answer(status=200, headers={'X-Release': 'build-77'})))
    assert result['answered_id'] == 'build-77'
    assert 'answered as release build-77, not v2 (header X-Release)' in result['msg']


def test_missing_header_is_named() -> None:
    spec = _http.Spec(url=URL, expect_id='v2', id_header='X-Release', retries=0)
    result = run(spec, Opener(page('v2')))
    assert result['ok'] is False and result['answered_id'] is None
    assert 'answered without a X-Release header, not as release v2' in result['msg']


def test_body_naming_no_known_release() -> None:
    result = run(_http.Spec(url=URL, expect_id='v2', known_ids=['v1'], retries=0), Opener(page('v20')))
    assert result['answered_id'] is None
    assert 'answered as no known release, not v2 (body)' in result['msg']


def test_known_id_found_first_in_the_body_is_named() -> None:
    body = 'served by v3; previous v1'
    spec = _http.Spec(url=URL, expect_id='v2', known_ids=['v1', 'v3'], retries=0)
    assert run(spec, Opener(_http.Answer(status=200, body=body)))['answered_id'] == 'v3'


def test_without_expect_id_any_release_passes() -> None:
    result = run(_http.Spec(url=URL, known_ids=['v1']), Opener(page('v1')))
    assert result['ok'] is True and result['answered_id'] == 'v1'
    assert result['msg'] == f'{URL} answered 200, 1 attempt in 0.0 s'


def test_status_not_listed_fails_with_the_status() -> None:
    spec = _http.Spec(url=URL, expect_id='v2', known_ids=['v1'], retries=1, delay=0.5)
    result = run(spec, Opener(page('v2', 500)))
    assert result['ok'] is False and result['status'] == 500 and result['answered_id'] == 'v2'
    assert result['msg'] == f'{URL} answered status 500, expected 200, 2 attempts in 0.5 s'


def test_status_code_list() -> None:
    spec = _http.Spec(url=URL, status_code=[200, 204], retries=0)
    assert run(spec, Opener(page('v1', 204)))['ok'] is True
    assert run(spec, Opener(page('v1', 301)))['msg'].startswith(f'{URL} answered status 301, expected 200, 204')


def test_expect_body() -> None:
    spec = _http.Spec(url=URL, expect_body='db: ok', retries=0)
    assert run(spec, Opener(_http.Answer(status=200, body='app up\ndb: ok\n')))['ok'] is True
    result = run(spec, Opener(_http.Answer(status=200, body='app up\ndb: down\n')))
    assert result['ok'] is False
    assert result['msg'] == f"{URL} body does not contain 'db: ok', status 200, 1 attempt in 0.0 s"


def test_every_failed_expectation_is_listed() -> None:
    spec = _http.Spec(url=URL, expect_id='v2', known_ids=['v1'], expect_body='ok', retries=0)
    msg = run(spec, Opener(page('v1', 503)))['msg']
    assert msg == (
        f'{URL} answered status 503, expected 200; answered as release v1, not v2 (body); '
        "body does not contain 'ok', 1 attempt in 0.0 s"
    )


def test_no_answer_then_an_answer() -> None:
    clock = FakeClock()
    opener = Opener(ConnectionRefusedError(111, 'Connection refused'), page('v2'))
    result = run(_http.Spec(url=URL, expect_id='v2', retries=3, delay=0.5), opener, clock)
    assert result['ok'] is True and result['attempts'] == 2 and clock.sleeps == [0.5]


def test_never_answered() -> None:
    opener = Opener(ConnectionRefusedError(111, 'Connection refused'))
    result = run(_http.Spec(url=URL, expect_id='v2', retries=2, delay=0.5), opener)
    assert result['ok'] is False and result['status'] is None and result['answered_id'] is None
    assert result['msg'] == f'{URL} did not answer: connection refused, 3 attempts in 1.0 s'


class _Reasoned(OSError):
    def __init__(self, reason) -> None:
        super().__init__(str(reason))
        self.reason = reason


@pytest.mark.parametrize(
    ('exc', 'text'),
    [
        (ConnectionRefusedError(111, 'Connection refused'), 'connection refused'),
        (TimeoutError('timed out'), 'timed out'),
        (_Reasoned(ConnectionRefusedError(111, 'Connection refused')), 'connection refused'),
        (_Reasoned('Name or service not known'), 'name or service not known'),
        (ValueError(), 'ValueError'),
    ],
)
def test_describe_error(exc: BaseException, text: str) -> None:
    assert _http.describe_error(exc) == text


def test_the_last_attempt_decides_the_result() -> None:
    opener = Opener(page('v2', 500), page('v1'))
    result = run(_http.Spec(url=URL, expect_id='v2', known_ids=['v1'], retries=1), opener)
    assert result['status'] == 200 and result['answered_id'] == 'v1'
    assert 'answered as release v1, not v2' in result['msg'] and '500' not in result['msg']


def test_request_options_are_passed_on() -> None:
    opener = Opener(page('v2'))
    spec = _http.Spec(url=URL, headers={'Host': 'next.internal'}, validate_certs=False, timeout=2.5)
    run(spec, opener)
    assert opener.calls == [{'url': URL, 'headers': {'Host': 'next.internal'}, 'timeout': 2.5, 'validate_certs': False}]


@pytest.mark.parametrize(
    ('changes', 'problem'),
    [
        ({'url': '127.0.0.1/'}, "url '127.0.0.1/' is not an http:// or https:// url"),
        ({'url': 'ftp://host/'}, "url 'ftp://host/' is not an http:// or https:// url"),
        ({'status_code': []}, 'status_code must list at least one status'),
        ({'retries': -1}, 'retries must be 0 or more, got -1'),
        ({'delay': -0.5}, 'delay must be 0 or more, got -0.5'),
        ({'timeout': 0}, 'timeout must be more than 0, got 0.0'),
        ({'id_header': 'X-Release'}, 'id_header X-Release needs expect_id: the header is compared with it'),
    ],
)
def test_validate_names_the_option(changes: dict, problem: str) -> None:
    spec = _http.Spec(**{'url': URL, **changes})
    assert _http.validate(spec=spec) == [problem]


def test_validate_accepts_a_full_spec() -> None:
    spec = _http.Spec(url='https://example.com:8443/health', expect_id='v2', id_header='X-Release', retries=0, delay=0)
    assert _http.validate(spec=spec) == []
