# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pruning never pulls code out from under a running server (issue 13, part 6).

The release that was current before the latest switch is kept until the next switch, ``min_age``
keeps releases that were live recently, the release ``next`` points at is kept, and every switch
records ``deactivated_at`` in the metadata of the release ``current`` leaves.
"""

from __future__ import annotations

import os
import time

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _activate, _prune, _release, _stage, _stage_options


@pytest.fixture
def layout(tmp_path) -> _release.Layout:
    return _release.Layout(str(tmp_path / 'app'))


def deploy(layout, release_id, **active) -> dict:
    warn = [].append
    _stage.present(layout=layout, release_id=release_id, options=_stage_options.StageOptions(), warn=warn, result={})
    return _activate.active(layout=layout, release_id=release_id, warn=warn, result={}, **active)


def meta(layout, release_id) -> dict:
    return _release.read_metadata(layout.release(release_id))


def ids(layout) -> list[str]:
    return sorted(os.listdir(layout.releases))


def test_a_switch_records_deactivated_at_on_the_release_it_leaves(layout):
    deploy(layout, 'r1')
    assert 'deactivated_at' not in meta(layout, 'r1')
    before = time.time()
    deploy(layout, 'r2')
    left = _prune.deactivated_at(_release.find(_release.list_releases(layout)[0], 'r1'))
    assert before - 1 <= left <= time.time() + 1
    assert 'deactivated_at' not in meta(layout, 'r2')


def test_rollback_marking_failed_keeps_deactivated_at(layout):
    deploy(layout, 'r1')
    deploy(layout, 'r2')
    releases, _ignored = _release.list_releases(layout)  # listed before the switch, as the module does
    _release.switch_current(layout=layout, release_id='r1')
    _release.mark_failed(release=_release.find(releases, 'r2'), reason='rolled back')
    assert meta(layout, 'r2')['state'] == 'failed' and meta(layout, 'r2')['deactivated_at']
    assert meta(layout, 'r1')['deactivated_at']  # left by the switch to r2 earlier


def test_deploy_prune_keeps_the_release_it_switched_away_from(layout):
    for rid in ('r1', 'r2', 'r3'):
        deploy(layout, rid)
    result = deploy(layout, 'r4', prune=True, keep=1)
    assert result['removed'] == ['r1', 'r2']
    assert ids(layout) == ['r3', 'r4']


def test_deploy_prune_in_check_mode_predicts_the_same(layout):
    for rid in ('r1', 'r2', 'r3'):
        deploy(layout, rid)
    _stage.present(layout=layout, release_id='r4', options=_stage_options.StageOptions(), warn=[].append, result={})
    _activate.complete(layout=layout, release_id='r4', result={})
    check = _activate.active(
        layout=layout, release_id='r4', prune=True, keep=1, check_mode=True, warn=[].append, result={}
    )
    assert check['removed'] == ['r1', 'r2']


def test_standalone_prune_keeps_the_release_current_left_last(layout):
    for rid in ('r1', 'r2', 'r3'):
        deploy(layout, rid)
    outcome = _prune.prune(layout=layout, current='r3', keep=1)
    assert outcome['removed'] == ['r1'] and 'r2' in outcome['kept']
    deploy(layout, 'r4')  # the next switch ends the protection of r2
    assert _prune.prune(layout=layout, current='r4', keep=1)['removed'] == ['r2']


def test_the_previous_release_is_kept_after_a_rollback_too(layout):
    for rid in ('r1', 'r2', 'r3'):
        deploy(layout, rid)
    _release.switch_current(layout=layout, release_id='r2')
    releases, _ignored = _release.list_releases(layout)
    _release.mark_failed(release=_release.find(releases, 'r3'), reason='rolled back')
    # current left r3 last: the failed r3 is kept (a server may still serve it); r1 goes
    outcome = _prune.prune(layout=layout, current='r2', keep=1)
    assert outcome['removed'] == ['r1'] and set(outcome['kept']) == {'r2', 'r3'}


def test_min_age_keeps_releases_live_recently(layout):
    for rid in ('r1', 'r2', 'r3', 'r4'):
        deploy(layout, rid)
    now = time.time()
    plan = _prune.prune(layout=layout, current='r4', keep=1, min_age=3600, now=now, check_mode=True)
    assert plan['removed'] == []
    later = _prune.prune(layout=layout, current='r4', keep=1, min_age=3600, now=now + 7200, check_mode=True)
    assert later['removed'] == ['r1', 'r2']  # r3 is still the previous release


def test_min_age_counts_from_deactivated_at(layout):
    releases = [
        _release.Release(release_id=f'r{i}', path=f'/x/r{i}', state='complete', meta={'started': f'2026-01-0{i}'})
        for i in (1, 2, 3)
    ]
    releases[0].meta['deactivated_at'] = '2026-01-01T00:00:00.000000Z'
    releases[1].meta['deactivated_at'] = '2026-01-01T00:10:00.000000Z'
    now = _prune.deactivated_at(releases[1]) + 60
    remove, _kept = _prune.prune_plan(releases, current='r3', keep=1, min_age=300, now=now, previous='r3')
    assert [r.id for r in remove] == ['r1']  # r2 left 60 s ago, r1 11 minutes ago
    remove, _kept = _prune.prune_plan(releases, current='r3', keep=1, min_age=0, now=now, previous='r3')
    assert [r.id for r in remove] == ['r1', 'r2']


def test_prune_never_removes_the_release_next_points_at(layout):
    for rid in ('r1', 'r2', 'r3', 'r4'):
        deploy(layout, rid)
    os.symlink('releases/r1', layout.next)
    outcome = _prune.prune(layout=layout, current='r4', keep=1)
    assert 'r1' not in outcome['removed'] and 'r1' in ids(layout)
    assert outcome['removed'] == ['r2']


@pytest.mark.parametrize('min_age', [-1, True, 1.5])
def test_min_age_must_be_whole_seconds(min_age):
    with pytest.raises(_release.ReleaseError, match='min_age must be a number of seconds >= 0'):
        _prune.validate_prune_args(keep=1, protect=[], min_age=min_age)


def test_without_deactivated_at_the_history_names_the_previous_release(layout):
    for rid in ('r1', 'r2', 'r3'):
        deploy(layout, rid)
    for rid in ('r1', 'r2'):  # as switched by a version that did not record deactivated_at
        data = meta(layout, rid)
        data.pop('deactivated_at')
        _release.write_metadata(release_path=layout.release(rid), meta=data)
    outcome = _prune.prune(layout=layout, current='r3', keep=1, check_mode=True)
    assert outcome['removed'] == ['r1']  # r2: the history's last deploy of r3 left it
