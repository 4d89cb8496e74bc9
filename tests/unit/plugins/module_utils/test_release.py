# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for plugins/module_utils/_release.py and _prune.py: ids, deploy order, rollback, pruning, switching."""

from __future__ import annotations

import json
import os
import pwd

import pytest
from ansible_collections.atomic.deploy.plugins.module_utils import _fs, _prune, _release

# --- helpers -----------------------------------------------------------------------------------


def started(n: int) -> str:
    """A distinct, ordered ISO start time; n=0 is the oldest."""
    return f'2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000000Z'


def make(layout: _release.Layout, release_id: str, *, state: str = 'complete', start: int | str | None = 0) -> str:
    """A release directory with metadata (``state=None`` makes an unmanaged directory)."""
    path = os.path.join(layout.releases, release_id)
    os.makedirs(path)
    if state is not None:
        meta = {'format': 1, 'id': release_id, 'state': state}
        if start is not None:
            meta['started'] = started(start) if isinstance(start, int) else start
        with open(os.path.join(path, _release.METADATA_NAME), 'w') as handle:
            json.dump(meta, handle)
    return path


def point(layout: _release.Layout, release_id: str, *, absolute: bool = False) -> None:
    text = os.path.join(layout.releases, release_id) if absolute else f'releases/{release_id}'
    _fs.swap_symlink(path=layout.current, target=text, fsync=False)


@pytest.fixture
def layout(tmp_path) -> _release.Layout:
    layout = _release.Layout(str(tmp_path / 'app'))
    os.makedirs(layout.releases)
    return layout


def ids(releases) -> list[str]:
    return [r.id for r in releases]


# --- validate_id / Layout ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ('value', 'fragment'),
    [
        ('../x', 'is a path'),
        ('/', 'is a path'),
        ('a/b', 'is a path'),
        ('', 'must not be empty'),
        ('a\x00', 'nul byte'),
        ('.', 'is a path'),
        ('..', 'is a path'),
        ('.hidden', 'not a valid release id'),
        ('-rf', 'not a valid release id'),
        ('a' * 129, 'not a valid release id'),
        ('with space', 'not a valid release id'),
        ('semi;colon', 'not a valid release id'),
        ('new\nline', 'not a valid release id'),
        ('ünïcode', 'not a valid release id'),
        (12, 'must be a string'),
        (None, 'must be a string'),
    ],
)
def test_validate_id_rejects(value, fragment):
    with pytest.raises(_release.ReleaseError) as info:
        _release.validate_id(value, name='release_id')
    message = str(info.value)
    assert fragment in message
    assert message.startswith('release_id')
    assert info.value.details == {'name': 'release_id'}


@pytest.mark.parametrize(
    'value',
    ['20260112T143052Z', 'v2.4.0', 'a', '_private', '0', 'release-1_2.3', 'a' * 128, 'A.-_', 'x..y'],
)
def test_validate_id_accepts(value):
    assert _release.validate_id(value) == value


@pytest.mark.parametrize(
    ('root', 'fragment'), [('', 'non-empty'), ('relative/app', 'absolute'), ('/a\x00b', 'nul byte')]
)
def test_layout_rejects_bad_roots(root, fragment):
    with pytest.raises(_release.ReleaseError, match=fragment):
        _release.Layout(root)


def test_layout_paths_and_link_text():
    layout = _release.Layout('/srv/app/')
    assert layout.root == '/srv/app'
    assert layout.current == '/srv/app/current'
    assert layout.lock == '/srv/app/.deploy/lock'
    assert layout.history == '/srv/app/.deploy/history.jsonl'
    assert layout.link_text('v1') == 'releases/v1'
    assert layout.link_text('v1', style='absolute') == '/srv/app/releases/v1'
    with pytest.raises(_release.ReleaseError):
        layout.release('../etc')


def test_iso_sorts_in_time_order():
    import datetime

    early = datetime.datetime(2026, 1, 1, 0, 0, 0, 5, tzinfo=datetime.timezone.utc)
    late = datetime.datetime(2026, 1, 1, 0, 0, 0, 40, tzinfo=datetime.timezone.utc)
    assert _release.iso(early) == '2026-01-01T00:00:00.000005Z'
    assert _release.iso(early) < _release.iso(late)


# --- list_releases: deploy order ---------------------------------------------------------------


def test_order_is_started_not_name_v2_before_v10(layout):
    make(layout, 'v10', start=2)
    make(layout, 'v2', start=1)
    make(layout, 'v9', start=0)
    releases, ignored = _release.list_releases(layout)
    assert ids(releases) == ['v9', 'v2', 'v10']
    assert ignored == []


def test_order_contradicting_lexical_ids(layout):
    # ids whose lexical order is the reverse of their start order
    make(layout, 'zzz', start=0)
    make(layout, 'mmm', start=1)
    make(layout, 'aaa', start=2)
    releases = _release.list_releases(layout)[0]
    assert ids(releases) == ['zzz', 'mmm', 'aaa']


def test_order_ignores_mtime(layout):
    old = make(layout, 'first', start=0)
    new = make(layout, 'second', start=1)
    # touch the older release so its mtime is newest, and the newer one far in the past
    os.utime(old, (2_000_000_000, 2_000_000_000))
    os.utime(new, (1_000_000, 1_000_000))
    os.utime(os.path.join(old, _release.METADATA_NAME), (2_000_000_000, 2_000_000_000))
    releases = _release.list_releases(layout)[0]
    assert ids(releases) == ['first', 'second']


def test_order_ties_broken_by_id(layout):
    make(layout, 'b', start=5)
    make(layout, 'a', start=5)
    assert ids(_release.list_releases(layout)[0]) == ['a', 'b']


def test_states_unmanaged_and_ignored_entries(layout, tmp_path):
    make(layout, 'done', start=1)
    make(layout, 'building', state='in_progress', start=2)
    make(layout, 'broken', state='failed', start=3)
    make(layout, 'handmade', state=None)
    # metadata whose id names another release: a directory renamed by hand
    renamed = make(layout, 'renamed', start=4)
    with open(os.path.join(renamed, _release.METADATA_NAME), 'w') as handle:
        json.dump({'format': 1, 'id': 'something-else', 'state': 'complete', 'started': started(4)}, handle)
    # unreadable metadata
    garbage = make(layout, 'garbage', state=None)
    with open(os.path.join(garbage, _release.METADATA_NAME), 'w') as handle:
        handle.write('{not json')
    # not releases: a symlink to a directory, a file, temp and trash dirs, a hidden dir
    (tmp_path / 'elsewhere').mkdir()
    os.symlink(str(tmp_path / 'elsewhere'), os.path.join(layout.releases, 'linked'))
    with open(os.path.join(layout.releases, 'file'), 'w'):
        pass
    os.mkdir(os.path.join(layout.releases, '.tmp-x-abc'))
    os.mkdir(os.path.join(layout.releases, '.trash-y-abc'))
    releases, ignored = _release.list_releases(layout)
    states = {r.id: r.state for r in releases}
    assert states == {
        'done': 'complete',
        'building': 'unfinished',
        'broken': 'failed',
        'handmade': 'unmanaged',
        'renamed': 'unmanaged',
        'garbage': 'unmanaged',
    }
    # unmanaged sort first, then by start
    assert ids(releases)[3:] == ['done', 'building', 'broken']
    assert ignored == ['.tmp-x-abc', '.trash-y-abc', 'file', 'linked']


def test_metadata_symlink_is_not_followed(layout, tmp_path):
    path = make(layout, 'r1', state=None)
    fake = tmp_path / 'fake.json'
    fake.write_text(json.dumps({'id': 'r1', 'state': 'complete', 'started': started(0)}))
    os.symlink(fake, os.path.join(path, _release.METADATA_NAME))
    assert _release.read_metadata(path) is None
    assert _release.list_releases(layout)[0][0].state == 'unmanaged'


def test_list_releases_without_releases_dir(tmp_path):
    assert _release.list_releases(_release.Layout(str(tmp_path / 'nothing'))) == ([], [])


def test_current_flag(layout):
    make(layout, 'a', start=0)
    make(layout, 'b', start=1)
    point(layout, 'a')
    releases = _release.list_releases(layout)[0]
    assert [(r.id, r.current) for r in releases] == [('a', True), ('b', False)]


# --- current_id --------------------------------------------------------------------------------


def test_current_id_relative_and_absolute(layout):
    make(layout, 'r1')
    assert _release.current_id(layout) is None
    point(layout, 'r1')
    assert _release.current_id(layout) == 'r1'
    point(layout, 'r1', absolute=True)
    assert _release.current_id(layout) == 'r1'
    _fs.swap_symlink(path=layout.current, target='./releases/../releases/r1', fsync=False)
    assert _release.current_id(layout) == 'r1'


@pytest.mark.parametrize(
    'text',
    ['../elsewhere/releases/r1', '/tmp/releases/r1', 'releases', 'releases/r1/sub', 'shared/r1', 'releases/.hidden'],
)
def test_current_id_outside_releases_is_none(layout, text):
    _fs.swap_symlink(path=layout.current, target=text, fsync=False)
    assert _release.current_id(layout) is None


def test_current_id_real_directory_is_none(layout):
    os.mkdir(layout.current)
    assert _release.current_id(layout) is None


# --- rollback_candidate ------------------------------------------------------------------------


def build(layout, spec: list[tuple[str, str]]) -> list[_release.Release]:
    for index, (release_id, state) in enumerate(spec):
        make(layout, release_id, state=state, start=index)
    return _release.list_releases(layout)[0]


def test_rollback_candidate_skips_failed_and_unfinished(layout):
    releases = build(
        layout, [('r1', 'complete'), ('r2', 'complete'), ('r3', 'failed'), ('r4', 'in_progress'), ('r5', 'complete')]
    )
    assert _release.rollback_candidate(releases, 'r5').id == 'r2'
    assert _release.rollback_candidate(releases, 'r2').id == 'r1'
    assert _release.rollback_candidate(releases, 'r1') is None


def test_rollback_candidate_without_current_is_newest_complete(layout):
    releases = build(layout, [('r1', 'complete'), ('r2', 'complete'), ('r3', 'failed')])
    assert _release.rollback_candidate(releases, None).id == 'r2'


def test_rollback_candidate_ignores_newer_releases(layout):
    # after a rollback current is older than complete releases: only older ones are candidates
    releases = build(layout, [('r1', 'complete'), ('r2', 'complete'), ('r3', 'complete')])
    assert _release.rollback_candidate(releases, 'r2').id == 'r1'


def test_rollback_candidate_skips_unmanaged(layout):
    make(layout, 'handmade', state=None)
    releases = build(layout, [('r1', 'complete')])
    assert _release.rollback_candidate(releases, 'r1') is None


# --- prune_plan --------------------------------------------------------------------------------


def plan(releases, **kwargs):
    remove, kept = _prune.prune_plan(releases, **kwargs)
    return ids(remove), ids(kept)


def test_prune_keeps_newest_complete(layout):
    releases = build(layout, [(f'r{i}', 'complete') for i in range(1, 8)])
    assert plan(releases, current='r7', keep=3) == (['r1', 'r2', 'r3', 'r4'], ['r5', 'r6', 'r7'])


def test_prune_keep_one_keeps_only_current(layout):
    releases = build(layout, [('r1', 'complete'), ('r2', 'complete')])
    assert plan(releases, current='r2', keep=1) == (['r1'], ['r2'])


@pytest.mark.parametrize('keep', [0, -1])
def test_prune_keep_below_one_is_an_error(layout, keep):
    releases = build(layout, [('r1', 'complete')])
    with pytest.raises(_release.ReleaseError, match=f'keep must be at least 1, got {keep}'):
        _prune.prune_plan(releases, current='r1', keep=keep)


def test_prune_protect(layout):
    releases = build(layout, [(f'r{i}', 'complete') for i in range(1, 6)])
    assert plan(releases, current='r5', keep=2, protect=['r1']) == (['r2', 'r3'], ['r1', 'r4', 'r5'])


def test_prune_current_oldest_is_kept(layout):
    # after rolling back to the oldest release, newer ones fill keep but current stays
    releases = build(layout, [('r1', 'complete'), ('r2', 'complete'), ('r3', 'complete'), ('r4', 'complete')])
    remove, kept = plan(releases, current='r1', keep=2)
    assert 'r1' in kept
    assert remove == ['r2']
    assert kept == ['r1', 'r3', 'r4']


def test_prune_failed_and_unfinished_do_not_count_toward_keep(layout):
    releases = build(
        layout,
        [
            ('r1', 'complete'),
            ('r2', 'failed'),
            ('r3', 'complete'),
            ('r4', 'in_progress'),
            ('r5', 'complete'),
            ('r6', 'failed'),
            ('r7', 'in_progress'),
        ],
    )
    remove, kept = plan(releases, current='r5', keep=2)
    # the two newest complete are r3 and r5; r1 goes; failed/unfinished older than current go;
    # failed/unfinished newer than current (r6, r7) stay for inspection
    assert remove == ['r1', 'r2', 'r4']
    assert kept == ['r3', 'r5', 'r6', 'r7']


def test_prune_without_current_keeps_unfinished(layout):
    releases = build(layout, [('r1', 'complete'), ('r2', 'complete'), ('r3', 'in_progress')])
    assert plan(releases, current=None, keep=1) == (['r1'], ['r2', 'r3'])


def test_prune_never_removes_unmanaged(layout):
    make(layout, 'handmade', state=None)
    releases = build(layout, [('r1', 'complete'), ('r2', 'complete')])
    remove, kept = plan(releases, current='r2', keep=1)
    assert remove == ['r1']
    assert 'handmade' in kept


def test_prune_order_is_started_not_name(layout):
    # by name v10 < v2 < v9; by start v9, v2, v10: keep=1 must keep v10 (current) only
    make(layout, 'v9', start=0)
    make(layout, 'v2', start=1)
    make(layout, 'v10', start=2)
    releases = _release.list_releases(layout)[0]
    assert plan(releases, current='v10', keep=2) == (['v9'], ['v2', 'v10'])


# --- create_release ----------------------------------------------------------------------------


def test_create_release_writes_marker(layout):
    meta = _release.new_metadata(release_id='r1', owner={'user': 'deploy'}, source={'type': 'none'})
    path = _release.create_release(layout=layout, release_id='r1', meta=meta)
    assert path == os.path.join(layout.releases, 'r1')
    stored = _release.read_metadata(path)
    assert stored['state'] == 'in_progress'
    assert stored['id'] == 'r1'
    assert stored['deployed_by'] == {'user': 'deploy', 'host_user': pwd.getpwuid(os.geteuid()).pw_name}
    assert stored['started'].endswith('Z')
    assert _release.leftovers(layout) == []
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o755)


def test_create_release_never_leaves_a_dir_without_marker(layout, monkeypatch):
    def broken(**_kwargs):
        raise OSError(28, 'no space left on device')

    monkeypatch.setattr(_release, 'write_metadata', broken)
    meta = _release.new_metadata(release_id='r1', owner=None, source=None)
    with pytest.raises(OSError, match='no space'):
        _release.create_release(layout=layout, release_id='r1', meta=meta)
    assert os.listdir(layout.releases) == []


def test_create_release_existing_id_refused_and_cleaned(layout):
    make(layout, 'r1')
    meta = _release.new_metadata(release_id='r1', owner=None, source=None)
    with pytest.raises(_release.ReleaseError, match='already exists') as info:
        _release.create_release(layout=layout, release_id='r1', meta=meta)
    assert os.path.join(layout.releases, 'r1') in str(info.value)
    assert sorted(os.listdir(layout.releases)) == ['r1']
    assert _release.read_metadata(os.path.join(layout.releases, 'r1'))['state'] == 'complete'


def test_create_release_rejects_bad_id(layout):
    with pytest.raises(_release.ReleaseError):
        _release.create_release(layout=layout, release_id='../escape', meta={})
    assert os.listdir(layout.releases) == []


def test_finalize_and_mark_failed(layout):
    make(layout, 'r1', state='in_progress')
    release = _release.list_releases(layout)[0][0]
    _release.finalize(release=release, extra={'note': 'x'})
    stored = _release.read_metadata(release.path)
    assert stored['state'] == 'complete' and stored['finished'] and stored['note'] == 'x'
    assert release.state == 'complete'
    _release.mark_failed(release=release, reason='smoke test failed')
    stored = _release.read_metadata(release.path)
    assert stored['state'] == 'failed' and stored['reason'] == 'smoke test failed' and stored['failed_at']
    assert _release.list_releases(layout)[0][0].state == 'failed'


# --- switch_current ----------------------------------------------------------------------------


class FakeClock:
    """time.time and time.sleep stand-ins that record what the switch did at each moment."""

    def __init__(self, *, now: float, layout: _release.Layout) -> None:
        self.now = now
        self.layout = layout
        self.slept: list[float] = []
        self.seen_during_sleep: dict = {}

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        # what the world looks like while the switch waits for its instant
        self.seen_during_sleep = {
            'current': _fs.read_link(self.layout.current),
            'staged': [os.readlink(p) for p in _release.stale_temp_links(self.layout)],
        }
        self.now += seconds


def test_switch_waits_until_switch_at_with_link_prepared(layout):
    make(layout, 'r1', start=0)
    make(layout, 'r2', start=1)
    point(layout, 'r1')
    fake = FakeClock(now=1000.0, layout=layout)
    outcome = _release.switch_current(
        layout=layout, release_id='r2', switch_at=1002.5, clock=fake.clock, sleep=fake.sleep
    )
    assert fake.slept == [2.5]
    assert fake.seen_during_sleep == {'current': 'releases/r1', 'staged': ['releases/r2']}
    assert outcome == {
        'previous_target': 'releases/r1',
        'target': 'releases/r2',
        'switched_at': 1002.5,
        'late': 0.0,
        'waited': 2.5,
        'backup': None,
    }
    assert os.readlink(layout.current) == 'releases/r2'
    assert _release.stale_temp_links(layout) == []


def test_switch_late_arrival_switches_at_once(layout):
    make(layout, 'r1')
    fake = FakeClock(now=1000.75, layout=layout)
    outcome = _release.switch_current(
        layout=layout, release_id='r1', switch_at=1000.0, clock=fake.clock, sleep=fake.sleep
    )
    assert fake.slept == []
    assert outcome['late'] == 0.75
    assert outcome['waited'] == 0.0
    assert outcome['previous_target'] is None
    assert os.readlink(layout.current) == 'releases/r1'


def test_switch_too_far_ahead_is_refused_without_change(layout):
    make(layout, 'r1')
    make(layout, 'r2')
    point(layout, 'r1')
    fake = FakeClock(now=1000.0, layout=layout)
    with pytest.raises(_release.ReleaseError, match='switch_at .* more than 600 seconds ahead'):
        _release.switch_current(
            layout=layout, release_id='r2', switch_at=1000.0 + 601, clock=fake.clock, sleep=fake.sleep
        )
    assert fake.slept == []
    assert os.readlink(layout.current) == 'releases/r1'
    assert _release.stale_temp_links(layout) == []


def test_switch_interrupted_while_waiting_leaves_no_temp_link(layout):
    make(layout, 'r1')
    make(layout, 'r2')
    point(layout, 'r1')

    def interrupted(_seconds):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _release.switch_current(
            layout=layout, release_id='r2', switch_at=2000.0, clock=lambda: 1999.0, sleep=interrupted
        )
    assert os.readlink(layout.current) == 'releases/r1'
    assert _release.stale_temp_links(layout) == []


def test_switch_absolute_style(layout):
    make(layout, 'r1')
    outcome = _release.switch_current(layout=layout, release_id='r1', style='absolute', fsync=False)
    assert os.readlink(layout.current) == os.path.join(layout.releases, 'r1')
    assert outcome['target'] == os.path.join(layout.releases, 'r1')


def test_switch_missing_release_is_refused(layout):
    with pytest.raises(_release.ReleaseError, match='does not exist') as info:
        _release.switch_current(layout=layout, release_id='nope')
    assert os.path.join(layout.releases, 'nope') in str(info.value)
    assert not os.path.lexists(layout.current)


def test_switch_real_directory_refused_without_adopt(layout):
    make(layout, 'r1')
    os.mkdir(layout.current)
    with open(os.path.join(layout.current, 'index.html'), 'w') as handle:
        handle.write('old')
    with pytest.raises(_release.ReleaseError, match='is a real directory, not a symlink') as info:
        _release.switch_current(layout=layout, release_id='r1')
    assert layout.current in str(info.value)
    assert os.path.isdir(layout.current) and not os.path.islink(layout.current)
    outcome = _release.switch_current(layout=layout, release_id='r1', adopt=True)
    assert os.readlink(layout.current) == 'releases/r1'
    assert outcome['previous_target'] is None
    with open(os.path.join(outcome['backup'], 'index.html')) as handle:
        assert handle.read() == 'old'


def test_switch_real_file_refused_even_with_adopt(layout):
    make(layout, 'r1')
    with open(layout.current, 'w') as handle:
        handle.write('x')
    with pytest.raises(_release.ReleaseError, match='is a real file'):
        _release.switch_current(layout=layout, release_id='r1', adopt=True)
    assert os.path.isfile(layout.current)


def test_switch_sweeps_stale_temp_links(layout):
    make(layout, 'r1')
    stale = os.path.join(layout.root, '.current.tmp-deadbeef0000')
    os.symlink('releases/old', stale)
    # a regular file with the same prefix is not ours: left alone
    lookalike = os.path.join(layout.root, '.current.tmp-notalink')
    with open(lookalike, 'w'):
        pass
    assert _release.stale_temp_links(layout) == [stale]
    _release.switch_current(layout=layout, release_id='r1')
    assert not os.path.lexists(stale)
    assert os.path.exists(lookalike)


# --- execute_prune / discard_release -----------------------------------------------------------


def test_execute_prune_never_follows_planted_links(layout, tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'canary').write_text('alive')
    old = make(layout, 'r1', start=0)
    make(layout, 'r2', start=1)
    os.symlink('/', os.path.join(old, 'root'))
    os.symlink(str(outside), os.path.join(old, 'outside'))
    point(layout, 'r2')
    releases = _release.list_releases(layout)[0]
    remove, _kept = _prune.prune_plan(releases, current='r2', keep=1)
    outcome = _prune.execute_prune(layout=layout, remove=remove)
    assert outcome == {'removed': ['r1'], 'leftovers': [], 'blocked': {}}
    assert sorted(os.listdir(layout.releases)) == ['r2']
    assert (outside / 'canary').read_text() == 'alive'


def test_execute_prune_check_mode_and_leftovers(layout):
    make(layout, 'r1', start=0)
    make(layout, 'r2', start=1)
    os.mkdir(os.path.join(layout.releases, '.tmp-r3-abc'))
    os.mkdir(os.path.join(layout.releases, '.trash-r0-abc'))
    releases = _release.list_releases(layout)[0]
    remove, _kept = _prune.prune_plan(releases, current='r2', keep=1)
    before = sorted(os.listdir(layout.releases))
    outcome = _prune.execute_prune(layout=layout, remove=remove, check_mode=True)
    assert outcome['removed'] == ['r1']
    assert [os.path.basename(p) for p in outcome['leftovers']] == ['.tmp-r3-abc', '.trash-r0-abc']
    assert sorted(os.listdir(layout.releases)) == before
    _prune.execute_prune(layout=layout, remove=remove)
    assert sorted(os.listdir(layout.releases)) == ['r2']
