# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan of one deploy run: the checks of the role variables and what the run does.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice.

Pure functions over plain values (no Ansible objects): the action plugin ``release_plan`` reads
the role variables and calls :func:`make_plan`; the filters call :func:`command_argv` and
:func:`switch_delay`. Every rule that involves the role variables lives here, once, and reuses
the modules' own checks (``_release.validate_id``, ``_lock.new_token``).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import time

from ansible_collections.atomic.deploy.plugins.module_utils import _lock, _release

# The role variables the plan reads (tests/role/test_argument_specs.py counts them as used by the
# main entry point).
VARIABLES = (
    'release_root',
    'release_id',
    'release_keep',
    'release_source',
    'release_archive',
    'release_url',
    'release_checksum',
    'release_git_repo',
    'release_directory',
    'release_migrate_command',
    'release_migrate_host',
    'release_healthcheck_command',
    'release_reload_command',
    'release_reload_services',
    'release_healthcheck_url',
    'release_healthcheck_retries',
    'release_healthcheck_delay',
    'release_switch_delay',
    'release_hooks_after_fetch',
    'release_hooks_before_migrate',
    'release_hooks_before_activate',
    'release_hooks_after_activate',
    'release_restart_services',
    'release_healthcheck_expect_id',
    'release_healthcheck_header',
    'release_healthcheck_headers',
    'release_precheck_url',
    'release_precheck_headers',
    'release_next_link',
    'release_prune_min_age',
    'release_prune_become',
    'release_writable_become',
    'release_writable_dirs',
    'release_hooks_after_rollback',
    'release_maintenance_file',
    'release_maintenance_up',
    'release_maintenance_down',
)
COMMANDS = (
    'release_migrate_command',
    'release_healthcheck_command',
    'release_reload_command',
    'release_maintenance_up',
    'release_maintenance_down',
)
# Names of the deploy root the maintenance flag file must not take.
ROOT_NAMES = ('.', '..', 'current', 'next', 'releases', 'shared', '.deploy')
# What each source needs, by variable.
SOURCE_NEEDS = {
    'archive': ('release_archive',),
    'url': ('release_url', 'release_checksum'),
    'git': ('release_git_repo',),
    'directory': ('release_directory',),
    'none': (),
}
# Text a shell would treat specially; a command string is split on white space and never run by a
# shell, so any of these would reach the program as a literal argument.
SHELL_SYNTAX = ('$(', '`', '"', "'", '&&', '||', '|', ';', '<', '>', '&')
ID_FORMAT = '%Y%m%dT%H%M%SZ'
AUTO = 'auto'


class PlanError(Exception):
    """The role variables break one or more rules; ``problems`` names each variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__('; '.join(problems))
        self.problems = problems


def _empty(value) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, dict)) and len(value) == 0)


def command_argv(value, *, name: str) -> list[str]:
    """The argv of a command variable: a list as it is, a string split on white space.

    A string with shell syntax is refused: it would run with the syntax as literal arguments.
    Raises ValueError naming ``name``.
    """
    if value is None:
        return []
    if isinstance(value, str):
        found = [token for token in SHELL_SYNTAX if token in value]
        if found:
            words = json.dumps(value.split())
            shell = json.dumps(['sh', '-c', value])
            raise ValueError(
                f'{name} {value!r} contains shell syntax ({" ".join(found)}), but a command string is split on '
                f'white space and never run by a shell: it would run {words}. Give an argv list without shell '
                f'syntax, or run it through a shell explicitly: {name}: {shell}'
            )
        return value.split()
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    raise ValueError(f'{name} must be an argv list or a string, got {type(value).__name__}')


def is_auto(value) -> bool:
    """``release_switch_delay`` asks for the measured instant (``auto``, empty or null)."""
    return value is None or (isinstance(value, str) and value.strip().lower() in ('', AUTO))


def switch_delay(value, *, batch: int, forks: int) -> float:
    """Seconds from agreeing on the switch instant to the rename, before any measurement.

    ``auto`` is 0 for one host, else 0.5 + 0.3 s per host running at once (at most the forks): the
    cap of the measured instant (plugin_utils/_switch.py) and the rollback's wait. Raises ValueError.
    """
    if is_auto(value):
        return 0.0 if batch < 2 else round(0.5 + 0.3 * min(batch, max(forks, 1)), 3)
    if isinstance(value, bool):
        raise ValueError(f'release_switch_delay must be a number of seconds or {AUTO}, got {value!r}')
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'release_switch_delay must be a number of seconds or {AUTO}, got {value!r}') from None
    if seconds < 0 or math.isnan(seconds):
        raise ValueError(f'release_switch_delay must not be negative, got {value!r}')
    return seconds


def _flag(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ('1', 'true', 'yes', 'on', 'y', 't')
    return bool(value)


def _number(value, *, name: str, kind, problems: list[str], minimum: float) -> float | None:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = kind(value)
    except (TypeError, ValueError):
        problems.append(f'{name} must be a{"n integer" if kind is int else " number"}, got {value!r}')
        return None
    if number < minimum:
        problems.append(
            f'{name} must be at least {minimum:g}, got {value!r}'
            if minimum > 0
            else f'{name} must not be negative, got {value!r}'
        )
        return None
    return number


def generated_id(now: datetime.datetime | None = None) -> str:
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime(ID_FORMAT)


def make_plan(
    *,
    values: dict,
    play_hosts: list[str],
    batch: list[str],
    forks: int = 5,
    previous: dict | None = None,
    now: datetime.datetime | None = None,
    token: str | None = None,
) -> dict:
    """Check the role variables (``values``: name -> value) and plan the run.

    ``previous`` is the plan an earlier serial batch of the same play registered (on the hosts of
    that batch): the same play host list and none of this batch's hosts in it means this batch
    continues that run (same id and token, no migrations); anything else starts a new run.
    Raises PlanError with every problem found.
    """
    problems: list[str] = []
    get = values.get
    play_hosts = [str(h) for h in play_hosts]
    batch = [str(h) for h in batch]
    again = (
        isinstance(previous, dict)
        and list(previous.get('play') or []) == play_hosts
        and not set(previous.get('hosts') or []) & set(batch)
    )

    root = get('release_root')
    if not isinstance(root, str) or not os.path.isabs(root):
        problems.append(f'release_root must be an absolute path, got {root!r}')

    given = get('release_id')
    release_id = '' if given is None else str(given)
    if release_id == '':
        release_id = str(previous['id']) if again else generated_id(now)
    try:
        _release.validate_id(release_id, name='release_id')
    except _release.ReleaseError as exc:
        problems.append(str(exc))

    _number(get('release_keep', 5), name='release_keep', kind=int, problems=problems, minimum=1)

    source = get('release_source', 'archive')
    if source not in SOURCE_NEEDS:
        problems.append(f'release_source must be one of {", ".join(SOURCE_NEEDS)}, got {source!r}')
    for name in SOURCE_NEEDS.get(source, ()):
        if _empty(get(name)):
            problems.append(f'release_source={source} needs {name}')

    argv = {}
    for name in COMMANDS:
        try:
            argv[name] = command_argv(get(name), name=name)
        except ValueError as exc:
            problems.append(str(exc))
            argv[name] = []

    _number(
        get('release_healthcheck_retries', 5),
        name='release_healthcheck_retries',
        kind=int,
        problems=problems,
        minimum=0,
    )
    _number(
        get('release_healthcheck_delay', 2), name='release_healthcheck_delay', kind=float, problems=problems, minimum=0
    )
    try:
        delay = switch_delay(get('release_switch_delay', AUTO), batch=len(batch), forks=int(forks or 1))
    except ValueError as exc:
        problems.append(str(exc))
        delay = 0.0

    migrate_host = get('release_migrate_host') or ''
    if not isinstance(migrate_host, str):
        problems.append(f'release_migrate_host must be a host name, got {migrate_host!r}')
        migrate_host = ''
    migrate = bool(argv['release_migrate_command']) and not again
    if not migrate:
        run_on = ''
    elif not migrate_host:
        run_on = batch[0] if batch else ''
    else:
        run_on = migrate_host if migrate_host in batch else ''
    skipped = migrate and bool(migrate_host) and migrate_host not in play_hosts
    if migrate and migrate_host and migrate_host not in batch and migrate_host in play_hosts:
        problems.append(
            f'release_migrate_host {migrate_host} is not in the first serial batch ({", ".join(batch)}): migrations '
            f'must run before any host switches; put it first in the inventory or leave release_migrate_host empty'
        )

    for name in (
        'release_hooks_after_fetch',
        'release_hooks_before_migrate',
        'release_hooks_before_activate',
        'release_hooks_after_activate',
        'release_reload_services',
        'release_restart_services',
        'release_hooks_after_rollback',
    ):
        value = get(name) or []
        if not isinstance(value, (list, tuple)):
            problems.append(f'{name} must be a list, got {type(value).__name__}')
    for name in ('release_healthcheck_headers', 'release_precheck_headers'):
        value = get(name) or {}
        if not isinstance(value, dict):
            problems.append(f'{name} must be a dict of header names and values, got {type(value).__name__}')
    for name in ('release_healthcheck_header', 'release_precheck_url', 'release_healthcheck_url'):
        if not isinstance(get(name) or '', str):
            problems.append(f'{name} must be a string, got {type(get(name)).__name__}')
    _number(get('release_prune_min_age', 0), name='release_prune_min_age', kind=int, problems=problems, minimum=0)
    precheck = bool(get('release_precheck_url'))
    maintenance_file = get('release_maintenance_file') or ''
    # The flag file lives in the deploy root, where only the deploy user writes: never in shared/,
    # where the web user could swap it for a link the deploy would then write or delete through.
    if not isinstance(maintenance_file, str) or '/' in maintenance_file or maintenance_file in ROOT_NAMES:
        problems.append(
            f'release_maintenance_file must be a file name in release_root (no /, not one of '
            f'{", ".join(ROOT_NAMES)}), got {maintenance_file!r}'
        )
        maintenance_file = ''
    maintenance = bool(maintenance_file or argv['release_maintenance_up'] or argv['release_maintenance_down'])

    if problems:
        raise PlanError(problems)

    def some(*names: str) -> bool:
        return any(not _empty(get(name)) for name in names)

    checks = (
        bool(argv['release_reload_command'])
        or some('release_reload_services', 'release_restart_services', 'release_hooks_after_activate')
        or some('release_healthcheck_url')
    )

    return {
        'id': release_id,
        'token': str(previous['token']) if again else (token or _lock.new_token()),
        'play': play_hosts,
        'hosts': (list(previous.get('hosts') or []) if again else []) + batch,
        'batch': batch,
        'first': not again,
        'migrate_host': run_on,
        'migrate_skipped': skipped,
        'switch_delay': delay,
        # auto: the gate measures the instant (plugin_utils/_switch.py), with switch_delay as its cap.
        'switch_delay_auto': is_auto(get('release_switch_delay', AUTO)),
        'migrate_argv': argv['release_migrate_command'],
        'healthcheck_argv': argv['release_healthcheck_command'],
        # A header to read the id from means the id is expected.
        'expect_id': _flag(get('release_healthcheck_expect_id')) or bool(get('release_healthcheck_header')),
        # The pre-switch URL check reaches the staged release through ROOT/next.
        'next_link': _flag(get('release_next_link')) or precheck,
        'precheck': precheck,
        'maintenance': maintenance,
        'maintenance_file': maintenance_file,
        # For the notification's duration: the start of the run, kept across serial batches.
        'started_at': float(previous.get('started_at') or 0) if again else (now.timestamp() if now else time.time()),
        'pre': bool(run_on)
        or maintenance
        or skipped
        # the writable dirs as a step of their own, with become
        or (_flag(get('release_writable_become')) and some('release_writable_dirs'))
        or precheck
        or bool(argv['release_healthcheck_command'])
        or some('release_hooks_after_fetch', 'release_hooks_before_migrate', 'release_hooks_before_activate'),
        # The flags the role's flow branches on, computed once here.
        'checks': checks,
        # Steps after the switch that keep the lock: the checks, and pruning with become (a task of its
        # own, as the switch runs without become).
        'after': checks or _flag(get('release_prune_become')),
        'coordinated': len(batch) > 1,
        'reloads': bool(argv['release_reload_command']) or some('release_reload_services', 'release_restart_services'),
        'rollback_steps': bool(argv['release_reload_command'])
        or some('release_reload_services', 'release_restart_services', 'release_hooks_after_rollback'),
    }
