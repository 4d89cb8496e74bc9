# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/plugin_utils/_plan.py: every rule on the role variables, the id, the token,
the migrate host, serial batches, the flags and the switch delay."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.atomic.deploy.plugins.plugin_utils import _plan

HOSTS = ['h1', 'h2', 'h3']
NOW = datetime.datetime(2026, 1, 10, 8, 30, 22, tzinfo=datetime.timezone.utc)


def values(**extra) -> dict:
    """The role defaults, a root and an archive."""
    base = {
        'release_root': '/srv/app',
        'release_id': '',
        'release_keep': 5,
        'release_source': 'archive',
        'release_archive': 'app.tar.gz',
        'release_url': '',
        'release_checksum': '',
        'release_git_repo': '',
        'release_directory': '',
        'release_migrate_command': [],
        'release_migrate_host': '',
        'release_healthcheck_command': [],
        'release_reload_command': [],
        'release_reload_services': [],
        'release_healthcheck_url': '',
        'release_healthcheck_retries': 5,
        'release_healthcheck_delay': 2,
        'release_switch_delay': 'auto',
        'release_hooks_after_fetch': [],
        'release_hooks_before_migrate': [],
        'release_hooks_before_activate': [],
        'release_hooks_after_activate': [],
    }
    base.update(extra)
    return base


def plan(*, batch=None, play=None, previous=None, forks=5, **extra) -> dict:
    batch = HOSTS if batch is None else batch
    return _plan.make_plan(
        values=values(**extra),
        play_hosts=HOSTS if play is None else play,
        batch=batch,
        forks=forks,
        previous=previous,
        now=NOW,
        token='t0',
    )


def problems(**kwargs) -> list[str]:
    with pytest.raises(_plan.PlanError) as caught:
        plan(**kwargs)
    return caught.value.problems


def test_defaults_plan_a_plain_deploy():
    found = plan()
    assert found == {
        'id': '20260110T083022Z',
        'token': 't0',
        'play': HOSTS,
        'hosts': HOSTS,
        'batch': HOSTS,
        'first': True,
        'migrate_host': '',
        'migrate_skipped': False,
        'switch_delay': 1.4,
        'switch_delay_auto': True,
        'migrate_argv': [],
        'healthcheck_argv': [],
        'expect_id': False,
        'next_link': False,
        'precheck': False,
        'coordinated': True,
        'reloads': False,
        'rollback_steps': False,
        'pre': False,
        'checks': False,
        'after': False,
        'maintenance': False,
        'maintenance_file': '',
        'started_at': 1768033822.0,
    }


@pytest.mark.parametrize(
    'extra',
    [
        {'release_maintenance_file': 'maintenance.on'},
        {'release_maintenance_up': 'php artisan down'},
        {'release_maintenance_down': ['php', 'artisan', 'up']},
    ],
)
def test_maintenance_mode_runs_the_pre_activation_steps(extra):
    found = plan(**extra)
    assert found['maintenance'] is True and found['pre'] is True


@pytest.mark.parametrize('name', ['shared', 'releases', 'current', '.deploy', '..', 'shared/maintenance.on', '/tmp/m'])
def test_maintenance_file_must_be_a_name_in_the_root(name):
    with pytest.raises(_plan.PlanError, match='release_maintenance_file must be a file name in release_root'):
        plan(release_maintenance_file=name)


def test_maintenance_command_with_shell_syntax_is_refused():
    with pytest.raises(_plan.PlanError, match='release_maintenance_up'):
        plan(release_maintenance_up='php artisan down && touch x')


def test_a_later_serial_batch_keeps_the_start_of_the_run():
    play = [*HOSTS, 'h4']
    first = plan(play=play)
    later = _plan.make_plan(values=values(), play_hosts=play, batch=['h4'], previous=first)
    assert later['started_at'] == first['started_at'] and later['first'] is False


def test_token_comes_from_the_lock_module(monkeypatch):
    monkeypatch.setattr(_plan._lock, 'new_token', lambda: 'from-lock')
    found = _plan.make_plan(values=values(), play_hosts=HOSTS, batch=HOSTS)
    assert found['token'] == 'from-lock'


@pytest.mark.parametrize(
    ('extra', 'expected'),
    [
        ({'release_root': 'srv/app'}, "release_root must be an absolute path, got 'srv/app'"),
        ({'release_root': None}, 'release_root must be an absolute path, got None'),
        ({'release_id': '-bad'}, "release_id '-bad' is not a valid release id"),
        ({'release_id': 'a/b'}, "release_id 'a/b' is a path"),
        ({'release_id': 'x' * 129}, 'is not a valid release id'),
        ({'release_keep': 0}, 'release_keep must be at least 1, got 0'),
        ({'release_keep': 'many'}, "release_keep must be an integer, got 'many'"),
        ({'release_source': 'ftp'}, "release_source must be one of archive, url, git, directory, none, got 'ftp'"),
        ({'release_archive': ''}, 'release_source=archive needs release_archive'),
        ({'release_source': 'url', 'release_url': 'http://x/a.tgz'}, 'release_source=url needs release_checksum'),
        ({'release_source': 'git'}, 'release_source=git needs release_git_repo'),
        ({'release_source': 'directory'}, 'release_source=directory needs release_directory'),
        ({'release_migrate_command': {'a': 1}}, 'release_migrate_command must be an argv list or a string, got dict'),
        ({'release_healthcheck_command': 3}, 'release_healthcheck_command must be an argv list or a string, got int'),
        ({'release_reload_command': {'x': 1}}, 'release_reload_command must be an argv list or a string'),
        ({'release_healthcheck_retries': -1}, 'release_healthcheck_retries must not be negative, got -1'),
        ({'release_healthcheck_delay': -0.5}, 'release_healthcheck_delay must not be negative, got -0.5'),
        ({'release_healthcheck_delay': 'soon'}, "release_healthcheck_delay must be a number, got 'soon'"),
        ({'release_switch_delay': -1}, 'release_switch_delay must not be negative, got -1'),
        ({'release_switch_delay': 'later'}, "release_switch_delay must be a number of seconds or auto, got 'later'"),
        ({'release_switch_delay': True}, 'release_switch_delay must be a number of seconds or auto, got True'),
        ({'release_migrate_host': ['h1']}, "release_migrate_host must be a host name, got ['h1']"),
        ({'release_hooks_after_fetch': 'hook.yml'}, 'release_hooks_after_fetch must be a list, got str'),
        ({'release_reload_services': 'nginx'}, 'release_reload_services must be a list, got str'),
        ({'release_restart_services': 'worker'}, 'release_restart_services must be a list, got str'),
        ({'release_healthcheck_headers': ['Host']}, 'release_healthcheck_headers must be a dict of header names'),
        ({'release_precheck_headers': 'Host: x'}, 'release_precheck_headers must be a dict of header names'),
        ({'release_healthcheck_header': ['X-Release']}, 'release_healthcheck_header must be a string, got list'),
        ({'release_precheck_url': 5}, 'release_precheck_url must be a string, got int'),
        ({'release_prune_min_age': -5}, 'release_prune_min_age must not be negative, got -5'),
    ],
)
def test_each_rule_names_its_variable(extra, expected):
    found = problems(**extra)
    assert len(found) == 1, found
    assert expected in found[0]


def test_every_problem_is_reported_at_once():
    found = problems(release_root='rel', release_keep=0, release_archive='')
    assert [p.split()[0] for p in found] == ['release_root', 'release_keep', 'release_source=archive']
    with pytest.raises(_plan.PlanError, match='; '):
        plan(release_root='rel', release_keep=0)


def test_migrate_host_in_a_later_batch_is_refused():
    found = problems(batch=['h1'], release_migrate_command=['migrate'], release_migrate_host='h3')
    assert found == [
        'release_migrate_host h3 is not in the first serial batch (h1): migrations must run before any host '
        'switches; put it first in the inventory or leave release_migrate_host empty'
    ]


@pytest.mark.parametrize(
    ('migrate_host', 'expected_host', 'skipped'),
    [('', 'h1', False), ('h2', 'h2', False), ('elsewhere', '', True)],
)
def test_migrate_host(migrate_host, expected_host, skipped):
    found = plan(release_migrate_command='php artisan migrate', release_migrate_host=migrate_host)
    assert found['migrate_host'] == expected_host
    assert found['migrate_skipped'] is skipped
    assert found['migrate_argv'] == ['php', 'artisan', 'migrate']
    assert found['pre'] is True


def test_no_migrate_host_without_a_command():
    found = plan(release_migrate_host='h2')
    assert found['migrate_host'] == '' and found['migrate_skipped'] is False and found['pre'] is False


def test_later_serial_batch_keeps_id_and_token_and_does_not_migrate():
    first = plan(batch=['h1'], release_migrate_command=['migrate'])
    assert first['migrate_host'] == 'h1' and first['first'] is True
    second = _plan.make_plan(
        values=values(release_migrate_command=['migrate']),
        play_hosts=HOSTS,
        batch=['h2'],
        previous=first,
        now=NOW + datetime.timedelta(seconds=5),
        token='other',
    )
    assert (second['id'], second['token']) == (first['id'], 't0')
    assert second['hosts'] == ['h1', 'h2'] and second['batch'] == ['h2']
    assert second['first'] is False and second['migrate_host'] == ''


@pytest.mark.parametrize(
    'previous',
    [
        # the role again for the same hosts: this batch's hosts already went through the plan
        {'id': 'old', 'token': 'old', 'play': HOSTS, 'hosts': ['h1']},
        # another play: another host list
        {'id': 'old', 'token': 'old', 'play': ['h1', 'h2'], 'hosts': ['h1', 'h2']},
        'not a plan',
    ],
)
def test_a_new_invocation_gets_a_new_plan(previous):
    found = plan(batch=['h1'], previous=previous)
    assert found['id'] == '20260110T083022Z' and found['token'] == 't0' and found['first'] is True
    assert found['hosts'] == ['h1']


@pytest.mark.parametrize(('given', 'expected'), [('v1.2', 'v1.2'), (42, '42'), (None, '20260110T083022Z')])
def test_release_id(given, expected):
    assert plan(release_id=given)['id'] == expected


def test_explicit_id_wins_over_the_previous_batch():
    previous = {'id': 'old', 'token': 'old', 'play': HOSTS, 'hosts': ['h1']}
    assert plan(batch=['h2'], previous=previous, release_id='new')['id'] == 'new'


@pytest.mark.parametrize(
    ('extra', 'pre', 'checks', 'after'),
    [
        ({}, False, False, False),
        ({'release_prune_become': True}, False, False, True),
        ({'release_prune_become': 'false'}, False, False, False),
        ({'release_writable_become': True, 'release_writable_dirs': ['var/cache']}, True, False, False),
        ({'release_writable_become': True}, False, False, False),
        ({'release_healthcheck_command': 'true'}, True, False, False),
        ({'release_hooks_after_fetch': ['a.yml']}, True, False, False),
        ({'release_hooks_before_migrate': ['a.yml']}, True, False, False),
        ({'release_hooks_before_activate': ['a.yml']}, True, False, False),
        ({'release_migrate_command': ['m'], 'release_migrate_host': 'gone'}, True, False, False),
        ({'release_reload_services': ['php-fpm']}, False, True, True),
        ({'release_reload_command': 'true'}, False, True, True),
        ({'release_hooks_after_activate': ['a.yml']}, False, True, True),
        ({'release_healthcheck_url': 'http://127.0.0.1/'}, False, True, True),
        ({'release_restart_services': ['worker']}, False, True, True),
        ({'release_precheck_url': 'http://127.0.0.1:8081/'}, True, False, False),
    ],
)
def test_flags(extra, pre, checks, after):
    found = plan(**extra)
    assert (found['pre'], found['checks'], found['after']) == (pre, checks, after)


@pytest.mark.parametrize(
    ('value', 'batch', 'forks', 'expected'),
    [
        ('auto', 1, 5, 0.0),
        ('auto', 2, 5, 1.1),
        ('auto', 8, 10, 2.9),
        ('auto', 32, 10, 3.5),
        ('AUTO', 32, 50, 10.1),
        (None, 3, 5, 1.4),
        ('', 3, 5, 1.4),
        (0, 8, 5, 0.0),
        ('1.5', 8, 5, 1.5),
        (2, 1, 5, 2.0),
    ],
)
def test_switch_delay(value, batch, forks, expected):
    assert _plan.switch_delay(value, batch=batch, forks=forks) == pytest.approx(expected)


@pytest.mark.parametrize(
    ('command', 'argv'),
    [
        ([], []),
        (None, []),
        ('', []),
        ('systemctl reload  php-fpm', ['systemctl', 'reload', 'php-fpm']),
        (['kill', '-HUP', 1234], ['kill', '-HUP', '1234']),
        (['sh', '-c', 'kill -HUP $(cat /run/app.pid)'], ['sh', '-c', 'kill -HUP $(cat /run/app.pid)']),
        ('php artisan migrate --force', ['php', 'artisan', 'migrate', '--force']),
    ],
)
def test_command_argv(command, argv):
    assert _plan.command_argv(command, name='release_reload_command') == argv


@pytest.mark.parametrize(
    ('command', 'syntax'),
    [
        ('kill -HUP $(cat /run/app.pid)', '$('),
        ('kill -HUP `cat /run/app.pid`', '`'),
        ('echo "a b"', '"'),
        ("echo 'a b'", "'"),
        ('ps ax | grep app', '|'),
        ('reload; true', ';'),
        ('make && make install', '&&'),
        ('reload || true', '||'),
        ('app < input', '<'),
        ('app > /tmp/log', '>'),
        ('app &', '&'),
    ],
)
def test_command_string_with_shell_syntax_is_refused(command, syntax):
    with pytest.raises(ValueError) as caught:
        _plan.command_argv(command, name='release_reload_command')
    msg = str(caught.value)
    assert msg.startswith(f'release_reload_command {command!r} contains shell syntax (')
    assert syntax in msg.split('contains shell syntax (', 1)[1].split('), but a command string', 1)[0].split()
    assert 'split on white space and never run by a shell' in msg
    # the argv list it would run, and the sh -c form
    assert '["' + command.split()[0] in msg
    assert '["sh", "-c", ' in msg


def test_plan_refuses_a_shell_string():
    found = problems(release_reload_command='kill -HUP $(cat /run/app.pid)')
    assert len(found) == 1 and found[0].startswith("release_reload_command 'kill -HUP $(cat /run/app.pid)'")
    assert 'release_reload_command: ["sh", "-c", "kill -HUP $(cat /run/app.pid)"]' in found[0]


@pytest.mark.parametrize(
    ('extra', 'expect_id', 'next_link', 'precheck'),
    [
        ({}, False, False, False),
        ({'release_healthcheck_expect_id': True}, True, False, False),
        ({'release_healthcheck_expect_id': 'yes'}, True, False, False),
        ({'release_healthcheck_expect_id': 'false'}, False, False, False),
        ({'release_healthcheck_header': 'X-Release'}, True, False, False),
        ({'release_next_link': True}, False, True, False),
        ({'release_precheck_url': 'http://127.0.0.1:8081/'}, False, True, True),
    ],
)
def test_identity_and_precheck_flags(extra, expect_id, next_link, precheck):
    found = plan(**extra)
    assert (found['expect_id'], found['next_link'], found['precheck']) == (expect_id, next_link, precheck)


def test_generated_id_without_a_time_is_now_in_utc():
    """The default release id; on a Python 3.10 controller this once failed (datetime.UTC is 3.11+)."""
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    generated = _plan.generated_id()
    after = datetime.datetime.now(datetime.timezone.utc)
    moment = datetime.datetime.strptime(generated, _plan.ID_FORMAT).replace(tzinfo=datetime.timezone.utc)
    assert before <= moment <= after


@pytest.mark.parametrize(('value', 'auto'), [('auto', True), ('AUTO ', True), (None, True), ('', True), (2, False)])
def test_the_plan_says_when_the_switch_instant_is_measured(value, auto):
    found = plan(release_switch_delay=value)
    assert found['switch_delay_auto'] is auto


@pytest.mark.parametrize(
    ('extra', 'reloads', 'rollback_steps'),
    [
        ({}, False, False),
        ({'release_reload_services': ['php-fpm']}, True, True),
        ({'release_restart_services': ['worker']}, True, True),
        ({'release_reload_command': ['systemctl', 'reload', 'nginx']}, True, True),
        ({'release_hooks_after_rollback': ['notify.yml']}, False, True),
    ],
)
def test_the_plan_computes_the_flags_the_flow_branches_on(extra, reloads, rollback_steps):
    found = plan(**extra)
    assert (found['reloads'], found['rollback_steps']) == (reloads, rollback_steps)


def test_one_host_does_not_coordinate():
    assert _plan.make_plan(values=values(), play_hosts=['h1'], batch=['h1'], token='t0')['coordinated'] is False
