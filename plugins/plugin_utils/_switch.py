# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The coordinated switch of a batch: the instant every host renames at, and the skew it reached.

PRIVATE: this module is internal to the atomic.deploy collection. It is not a public API and
may change without notice.

Pure functions over plain dicts (the staging and switch results of the hosts of one batch).

Every host's switch module must be waiting before the agreed instant, or it renames late and the
fleet switches apart. How long Ansible takes to get a module running on every host of the batch
is measured on the staging task that every host just ran: the action plugin records when it
started on the controller (``dispatched_at``) and the first module run reports when it started
on the host (``started_at``, the host's clock). The *dispatch spread* is the time from the first
host's dispatch to the last host's module start; it includes forking, connecting, sending the
module and starting Python on each host, and the clock offset of each host (the switch waits by
the host's clock, so the offset must be covered too). The switch task is dispatched the same way,
so the instant is the spread with a margin, never below :data:`FLOOR` and never above the cap
(the fixed estimate of the plan).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

FLOOR = 0.3
"""Seconds: the least wait, for the step from the gate to the switch task's dispatch."""
FACTOR = 1.5
"""The measured spread is multiplied by this: the switch task may dispatch a little slower."""
MARGIN = 0.15
"""Seconds added to the scaled spread: the step from the gate to the first dispatch."""


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def dispatch_spread(results: Iterable) -> float | None:
    """Seconds from the first ``dispatched_at`` to the last ``started_at`` of the staging results.

    Results without both times (a live release found without a module run, a host that failed
    before its module ran) are left out; None when no result has both.
    """
    dispatched, started = [], []
    for result in results:
        if not isinstance(result, Mapping):
            continue
        sent, began = _number(result.get('dispatched_at')), _number(result.get('started_at'))
        if sent is None or began is None:
            continue
        dispatched.append(sent)
        started.append(began)
    if not started:
        return None
    return max(0.0, max(started) - min(dispatched))


def measured_delay(spread: float | None, *, cap: float) -> float:
    """Seconds from the gate to the switch instant: the dispatch spread with a margin, within
    [:data:`FLOOR`, ``cap``]; ``cap`` itself when nothing was measured."""
    cap = max(float(cap), FLOOR)
    if spread is None:
        return round(cap, 3)
    return round(min(cap, max(FLOOR, FACTOR * spread + MARGIN)), 3)


def instant(*, now: float, plan: Mapping, stage_results: Iterable) -> dict:
    """The switch instant of a batch: ``{switch_at, switch_delay, dispatch_spread}``.

    With ``release_switch_delay: auto`` (the plan's ``switch_delay_auto``) the delay is measured
    (:func:`measured_delay`, capped by the plan's ``switch_delay``); a number set by the user is
    taken as it is.
    """
    spread = dispatch_spread(stage_results)
    cap = float(plan.get('switch_delay') or 0.0)
    delay = measured_delay(spread, cap=cap) if plan.get('switch_delay_auto') else cap
    return {
        'switch_at': now + delay,
        'switch_delay': delay,
        'dispatch_spread': None if spread is None else round(spread, 3),
    }


def skew(results: Iterable) -> float | None:
    """Seconds between the first and the last rename of a batch (``switched_at`` of the switch
    results); None with fewer than two renames."""
    times = [t for t in (_number(r.get('switched_at')) for r in results if isinstance(r, Mapping)) if t is not None]
    if len(times) < 2:
        return None
    return round(max(times) - min(times), 6)
