# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module-level tests for release_check, against a real http.server on 127.0.0.1 (open_url end to end)."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time

import pytest
from ansible_collections.atomic.deploy.plugins.modules import release_check


class Site:
    """What the server answers: a list of (status, headers, body), served in order (the last repeats)."""

    def __init__(self) -> None:
        self.answers = [(200, {}, 'ok')]
        self.requests: list[dict] = []
        self.delay = 0.0


def _handler(site: Site):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append({'path': self.path, 'headers': dict(self.headers), 'at': time.monotonic()})
            if site.delay:
                time.sleep(site.delay)
            status, headers, body = site.answers[min(len(site.requests), len(site.answers)) - 1]
            data = body.encode()
            # The timeout test's client is gone by the time a slow answer is written.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture
def site():
    state = Site()
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f'http://127.0.0.1:{server.server_address[1]}/'
    yield state
    server.shutdown()
    server.server_close()


def test_passes_as_the_expected_release_also_in_check_mode(site, run_module) -> None:
    site.answers = [(200, {}, '<h1>release v2</h1>')]
    for check in (True, False):
        result = run_module(release_check, {'url': site.url, 'expect_id': 'v2', 'known_ids': ['v1']}, check=check)
        assert result['changed'] is False and result['ok'] is True
        assert result['url'] == site.url and result['status'] == 200 and result['answered_id'] == 'v2'
        assert result['attempts'] == 1 and result['elapsed'] < 5
        assert 'diff' not in result
    assert len(site.requests) == 2


def test_old_release_fails_naming_both_ids_after_every_attempt(site, run_module, assert_error) -> None:
    site.answers = [(200, {'X-Release': 'v1'}, 'v2')]
    args = {'url': site.url, 'expect_id': 'v2', 'id_header': 'X-Release', 'known_ids': ['v1'], 'delay': 0.1}
    result = run_module(release_check, args, failed=True)
    msg = assert_error(result, site.url, 'v1', 'v2', 'X-Release')
    assert msg.startswith(f'{site.url} answered as release v1, not v2 (header X-Release), status 200, 5 attempts in ')
    assert result['attempts'] == 5 and len(site.requests) == 5
    assert result['answered_id'] == 'v1' and result['status'] == 200 and result['ok'] is False
    assert result['changed'] is False
    gaps = [b['at'] - a['at'] for a, b in zip(site.requests, site.requests[1:], strict=False)]
    assert min(gaps) >= 0.1
    # the upper bound only proves the polling ends; a loaded machine (the matrix runs two cores) is slow
    assert 0.4 <= result['elapsed'] < 15


def test_a_500_is_an_answer_with_its_status(site, run_module, assert_error) -> None:
    site.answers = [(500, {}, 'release v2 broke')]
    result = run_module(release_check, {'url': site.url, 'retries': 1, 'delay': 0}, failed=True)
    assert_error(result, site.url, 'status 500', '2 attempts')
    assert result['status'] == 500 and result['attempts'] == 2


def test_passes_once_the_new_release_answers(site, run_module) -> None:
    site.answers = [(502, {}, ''), (200, {}, 'v1'), (200, {}, 'v2')]
    result = run_module(release_check, {'url': site.url, 'expect_id': 'v2', 'known_ids': ['v1'], 'delay': 0})
    assert result['ok'] is True and result['attempts'] == 3 and result['answered_id'] == 'v2'


def test_headers_are_sent_and_body_is_checked(site, run_module) -> None:
    site.answers = [(200, {}, 'db: ok')]
    args = {'url': site.url + 'health', 'headers': {'Host': 'next.internal'}, 'expect_body': 'db: ok'}
    result = run_module(release_check, args)
    assert result['ok'] is True
    assert site.requests[0]['path'] == '/health' and site.requests[0]['headers']['Host'] == 'next.internal'


def test_redirect_is_not_followed(site, run_module) -> None:
    site.answers = [(302, {'Location': '/login'}, '')]
    assert run_module(release_check, {'url': site.url, 'status_code': [302]})['status'] == 302
    result = run_module(release_check, {'url': site.url, 'retries': 0}, failed=True)
    assert result['status'] == 302 and len(site.requests) == 2


def test_timeout_per_request(site, run_module, assert_error) -> None:
    # without the per-request timeout the two attempts would take 10 s; the margin is for a loaded machine
    site.delay = 5.0
    started = time.monotonic()
    result = run_module(release_check, {'url': site.url, 'timeout': 0.2, 'retries': 1, 'delay': 0}, failed=True)
    assert time.monotonic() - started < 4.5
    assert_error(result, site.url, 'did not answer', '2 attempts')
    assert result['status'] is None


def test_nothing_listening(run_module, assert_error) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    url = f'http://127.0.0.1:{port}/'
    result = run_module(release_check, {'url': url, 'retries': 0}, failed=True)
    assert_error(result, url, 'did not answer: connection refused')


@pytest.mark.parametrize(
    ('args', 'names'),
    [
        ({'url': 'localhost/health'}, ['url']),
        ({'url': 'http://127.0.0.1/', 'retries': -1}, ['retries']),
        ({'url': 'http://127.0.0.1/', 'id_header': 'X-Release'}, ['id_header', 'expect_id']),
    ],
)
def test_bad_options_fail_before_any_request(run_module, assert_error, args, names) -> None:
    result = run_module(release_check, args, failed=True)
    assert_error(result, *names)
    assert result['attempts'] == 0
