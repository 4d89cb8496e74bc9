# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/plugin_utils/_switch.py: the switch instant measured from the staging
task's dispatch spread (floor, margin, cap, a number set by the user), and the skew of the renames."""

from __future__ import annotations

import pytest
from ansible_collections.atomic.deploy.plugins.plugin_utils import _switch

AUTO_PLAN = {'switch_delay': 5.3, 'switch_delay_auto': True}


def staged(dispatched: float, started: float) -> dict:
    return {'changed': True, 'dispatched_at': dispatched, 'started_at': started}


def test_the_spread_runs_from_the_first_dispatch_to_the_last_module_start():
    results = [staged(100.0, 100.3), staged(100.1, 100.9), staged(100.2, 100.5)]
    assert _switch.dispatch_spread(results) == pytest.approx(0.9)


def test_results_without_both_times_are_left_out():
    results = [
        staged(100.0, 100.2),
        {'changed': False, 'live': True, 'dispatched_at': 99.0},  # a live no-op: no module ran
        {'failed': True, 'msg': 'unreachable'},
        {'dispatched_at': True, 'started_at': 100.5},  # not a time
        None,
    ]
    assert _switch.dispatch_spread(results) == pytest.approx(0.2)
    assert _switch.dispatch_spread([{'live': True}, None]) is None


def test_a_host_clock_behind_the_controller_never_makes_the_spread_negative():
    assert _switch.dispatch_spread([staged(100.0, 99.5)]) == 0.0


@pytest.mark.parametrize(
    ('spread', 'cap', 'expected'),
    [
        (0.4, 5.3, 0.75),  # 1.5 x 0.4 + 0.15
        (0.0, 5.3, 0.3),  # the floor
        (0.05, 5.3, 0.3),
        (10.0, 5.3, 5.3),  # the cap: a measurement that says "waves" or "slow host" waits no longer than before
        (None, 5.3, 5.3),  # nothing measured: the fixed estimate
        (0.4, 0.0, 0.3),  # a cap below the floor is raised to it
    ],
)
def test_measured_delay_is_the_spread_with_a_margin_between_floor_and_cap(spread, cap, expected):
    assert _switch.measured_delay(spread, cap=cap) == pytest.approx(expected)


def test_instant_with_auto_is_measured():
    found = _switch.instant(now=1000.0, plan=AUTO_PLAN, stage_results=[staged(990.0, 990.1), staged(990.1, 990.6)])
    assert found == {'switch_at': pytest.approx(1001.05), 'switch_delay': 1.05, 'dispatch_spread': 0.6}


def test_instant_with_a_number_takes_it_as_it_is():
    plan = {'switch_delay': 2.0, 'switch_delay_auto': False}
    found = _switch.instant(now=1000.0, plan=plan, stage_results=[staged(990.0, 990.1), staged(990.1, 990.6)])
    assert found == {'switch_at': 1002.0, 'switch_delay': 2.0, 'dispatch_spread': 0.6}


def test_instant_with_auto_and_nothing_measured_waits_the_cap():
    found = _switch.instant(now=1000.0, plan=AUTO_PLAN, stage_results=[{'live': True}])
    assert found == {'switch_at': 1005.3, 'switch_delay': 5.3, 'dispatch_spread': None}


def test_skew_is_the_spread_of_the_rename_instants():
    results = [{'switched_at': 1001.004}, {'switched_at': 1001.0}, {'switched_at': 1001.021}, {'skipped': True}]
    assert _switch.skew(results) == pytest.approx(0.021)
    assert _switch.skew([{'switched_at': 1001.0}, {'skipped': True}, None]) is None
