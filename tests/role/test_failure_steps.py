"""What a deploy does when it ends: maintenance mode down, failure hooks, one notification per run.

A deploy with maintenance mode and a webhook succeeds; one whose migration fails leaves the old release
live, the maintenance flag gone, the lock free, one failure webhook and a final message naming the cause;
one whose post-switch check fails runs a broken failure hook that does not hide that cause; one whose
staging fails on a host runs the failure hooks with the stage.

run: bash tests/role/run.sh -k failure_steps
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import FILES, HOSTS, Fleet, Run, StatusServer, current, lock_held, make_archive, meta

FLAG = 'maintenance.on'


class Webhook:
    """A loopback HTTP server that records the JSON body of every POST."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get('Content-Length') or 0)
                owner.bodies.append(json.loads(self.rfile.read(length) or b'null'))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}/hook'
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope='module')
def webhook():
    server = Webhook()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def archive(fleet: Fleet) -> Path:
    return make_archive(path=fleet.base / 'app.tar.gz', files={'index.html': 'app\n'})


def maintenance_vars(*, archive: Path, release_id: str, webhook: Webhook, **extra) -> dict:
    log = '{{ release_root }}.maintenance.log'
    return {
        'release_id': release_id,
        'release_archive': str(archive),
        'release_maintenance_file': FLAG,
        'release_maintenance_up': ['sh', '-c', 'echo "up $1" >> "$0"', log, release_id],
        'release_maintenance_down': ['sh', '-c', 'echo "down $1" >> "$0"', log, release_id],
        'release_notify_url': webhook.url,
        'release_notify_app': 'shop',
        'release_hooks_on_failure': [str(FILES / 'hooks' / 'record_failure.yml')],
        **extra,
    }


def maintenance_log(root: Path) -> list[str]:
    path = Path(f'{root}.maintenance.log')
    return path.read_text(encoding='utf-8').splitlines() if path.exists() else []


# --- step 1: a deploy with maintenance mode and a webhook succeeds ---------------------------------


@pytest.fixture(scope='module')
def step_success(fleet: Fleet, archive: Path, webhook: Webhook) -> Run:
    run = fleet.ok(fleet.deploy(extra=maintenance_vars(archive=archive, release_id='f1', webhook=webhook)))
    return run


def test_success_turns_maintenance_off_and_notifies_once(fleet: Fleet, webhook: Webhook, step_success: Run) -> None:
    for host, root in fleet.roots.items():
        assert current(root) == 'f1', host
        assert maintenance_log(root) == ['up f1', 'down f1'], host
        assert not (root / FLAG).exists(), f'{host}: the maintenance flag was left'
        assert not Path(f'{root}.failure').exists(), f'{host}: a failure hook ran on success'
    assert len(webhook.bodies) == 1, webhook.bodies
    body = webhook.bodies[0]
    assert body['outcome'] == 'success' and body['app'] == 'shop' and body['release'] == 'f1', body
    assert body['hosts'] == list(HOSTS) and body['stage'] == '' and body['reason'] == '', body
    assert isinstance(body['duration'], float) and 0 < body['duration'] < 300, body
    assert body['by']['user'] and body['by']['controller'], body
    assert body['text'].startswith('shop: release f1 deployed to h1, h2, h3 by '), body


# --- step 2: the migration fails with maintenance mode on ------------------------------------------


@pytest.fixture(scope='module')
def step_failed_migration(fleet: Fleet, archive: Path, webhook: Webhook, step_success: Run) -> Run:
    webhook.bodies.clear()
    # The migration proves the flag was up while it ran, then fails like a real one.
    migrate = [
        'sh',
        '-c',
        'cat "$0" > "$0.seen-by-migration"; echo "SQLSTATE[42S21]: duplicate column" >&2; exit 3',
        f'{{{{ release_root }}}}/{FLAG}',
    ]
    extra = maintenance_vars(archive=archive, release_id='f2', webhook=webhook, release_migrate_command=migrate)
    return fleet.failed(fleet.deploy(extra=extra))


def test_failed_migration_leaves_old_release_no_maintenance_free_lock_and_one_webhook(
    fleet: Fleet, webhook: Webhook, step_failed_migration: Run
) -> None:
    run = step_failed_migration
    cause = 'migrations failed on host h1'
    assert (fleet.root('h1') / f'{FLAG}.seen-by-migration').read_text(encoding='utf-8').startswith('release f2')
    for host, root in fleet.roots.items():
        assert current(root) == 'f1', f'{host}: the old release is not live'
        assert not (root / FLAG).exists(), f'{host}: the maintenance page is still up'
        assert maintenance_log(root)[-2:] == ['up f2', 'down f2'], host
        assert not lock_held(root), f'{host}: the deploy lock was left behind'
        assert meta(root, release='f2')['state'] == 'failed', host
        assert run.recap[host]['failed'] == 1, f'{host}: {run.recap[host]}'
        stage, reason = Path(f'{root}.failure').read_text(encoding='utf-8').splitlines()[:2]
        assert stage == 'migrate' and cause in reason and 'SQLSTATE[42S21]' in reason, (host, stage, reason)
    final = run.results(task='End the failed deploy')
    assert set(final) == set(HOSTS), run.describe()
    assert all(f'release f2 was not switched on any host: {cause}' in r['msg'] for r in final.values()), final
    assert len(webhook.bodies) == 1, webhook.bodies
    body = webhook.bodies[0]
    assert body['outcome'] == 'failure' and body['release'] == 'f2' and body['stage'] == 'migrate', body
    assert cause in body['reason'] and cause in body['text'], body


# --- step 3: the post-switch check fails and the failure hook itself breaks -------------------------


@pytest.fixture(scope='module')
def step_broken_hook(fleet: Fleet, archive: Path, webhook: Webhook, step_failed_migration: Run) -> Run:
    webhook.bodies.clear()
    server = StatusServer(statuses={}, default=500)
    try:
        extra = maintenance_vars(
            archive=archive,
            release_id='f3',
            webhook=webhook,
            release_healthcheck_url=f'{server.url}/',
            release_healthcheck_retries=0,
            release_hooks_on_failure=[
                str(FILES / 'hooks' / 'record_failure.yml'),
                str(FILES / 'hooks' / 'broken_failure_hook.yml'),
            ],
        )
        return fleet.failed(fleet.deploy(extra=extra))
    finally:
        server.stop()


def test_a_broken_failure_hook_does_not_hide_the_cause(fleet: Fleet, webhook: Webhook, step_broken_hook: Run) -> None:
    run = step_broken_hook
    final = run.results(task='End the failed deploy')
    assert set(final) == set(HOSTS), run.describe()
    for host, root in fleet.roots.items():
        msg = final[host]['msg']
        assert msg.startswith('release f3 failed after the switch: '), msg
        assert 'rolled back to f1' in msg, msg
        assert f'then a failure hook failed on host {host}: Break in the failure hook: the failure hook broke' in msg
        assert current(root) == 'f1', host
        assert not (root / FLAG).exists(), host
        stage = Path(f'{root}.failure').read_text(encoding='utf-8').splitlines()[0]
        assert stage == 'verify', (host, stage)
    assert [body['outcome'] for body in webhook.bodies] == ['failure'], webhook.bodies
    assert webhook.bodies[0]['stage'] == 'verify'


# --- step 4: staging fails on one host: the hooks run with the stage, no maintenance was up -----------


@pytest.fixture(scope='module')
def step_bad_stage(fleet: Fleet, archive: Path, webhook: Webhook, step_broken_hook: Run) -> Run:
    webhook.bodies.clear()
    extra = maintenance_vars(archive=archive, release_id='f4', webhook=webhook)
    return fleet.failed(fleet.deploy(extra=extra, host_vars={'h3': {'release_checksum': 'sha256:' + '0' * 64}}))


def test_staging_failure_runs_the_failure_hooks_with_the_stage(fleet: Fleet, step_bad_stage: Run) -> None:
    run = step_bad_stage
    for host, root in fleet.roots.items():
        assert current(root) == 'f1', host
        assert run.recap[host]['failed'] == 1, f'{host}: {run.recap[host]}'
        stage, reason = Path(f'{root}.failure').read_text(encoding='utf-8').splitlines()[:2]
        assert stage == 'stage', (host, stage, reason)
        assert 'checksum mismatch' in reason or 'staging failed on host h3' in reason, (host, reason)
        assert 'up f4' not in maintenance_log(root), f'{host}: maintenance went up although staging failed'
