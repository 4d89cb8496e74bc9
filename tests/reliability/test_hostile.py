# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile and bad input, table driven, through the real playbooks (module calls where a playbook cannot
express the input).

Every case runs against a fresh copy of one baseline root (two complete releases, shared data) and asserts:
- the run fails with a message that names the input (the offending value or variable);
- the disk is unchanged: the whole root is snapshotted before and after (names, types, modes, owners,
  sizes, mtimes, link targets, content hashes). Two traces are allowed, and only where stated:
  * ``lock``: the directory ROOT/.deploy may get a new mtime (a lock file was created and removed);
  * ``failed_release``: the input could only be judged while fetching (archive members, a download's
    checksum), so ROOT/releases/<id>/ exists holding nothing but its .release.json marked failed, and
    history.jsonl got exactly one more line, a ``failed`` event for that id;
- no lock is left behind, and nothing outside the root was written.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import io
import json
import os
import re
import shutil
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from _harness import (
    DEPLOY_PLAYBOOK,
    ROLLBACK_PLAYBOOK,
    Ansible,
    Archive,
    Snapshot,
    build_archive,
    can_mount,
    copy_root,
    current_id,
    lock_record,
    metadata,
    read_history,
    release_manifest,
    snapshot,
    snapshot_diff,
    tmpfs,
)

SHARED_DIRS = ["storage", "public/uploads"]
SHARED_FILES = [".env"]
SECRET = "APP_KEY=base64:hostile-suite-secret-value"


@dataclasses.dataclass
class World:
    """What a case may use: the baseline's archives, a web server for downloads, an outside dir."""

    base: Path
    archives: dict[str, Archive]
    url: str
    outside: Path


@dataclasses.dataclass
class Case:
    name: str
    expect: tuple[str, ...]  # regexes; each must match the failure messages of the run
    vars: dict = dataclasses.field(default_factory=dict)
    playbook: str = "deploy"  # deploy | rollback
    trace: str = "none"  # none | lock | failed_release
    setup: Callable[[Path, World], None] | None = None
    allow: tuple[str, ...] = ()  # further paths (relative to the root) a failed_release run may add, empty


def deploy_vars(root: Path, world: World, **overrides) -> dict:
    values = {
        "release_root": str(root),
        "release_id": "hostile1",
        "release_source": "archive",
        "release_archive": str(world.archives["good"].path),
        "release_shared_dirs": SHARED_DIRS,
        "release_shared_files": SHARED_FILES,
        "release_keep": 3,
        "release_lock_timeout": 120,
    }
    values.update(overrides)
    return values


# ------------------------------------------------------------------------------------------------------------
# Hostile archives and setups
# ------------------------------------------------------------------------------------------------------------


def hostile_archive(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(data))
    return path


def symlink_member(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def replace_with_link(path: Path, target: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    os.symlink(target, path)


def current_as_directory(root: Path, world: World) -> None:
    live = root / "releases" / (current_id(root) or "")
    (root / "current").unlink()
    shutil.copytree(live, root / "current", symlinks=True)


def mark_failed_by_hand(release_id: str) -> Callable[[Path, World], None]:
    def setup(root: Path, world: World) -> None:
        path = root / "releases" / release_id / ".release.json"
        meta = json.loads(path.read_text(encoding="utf-8"))
        meta.update(state="failed", failed_at="2026-01-01T00:00:00.000000Z", reason="broken on purpose")
        path.write_text(json.dumps(meta), encoding="utf-8")

    return setup


# ------------------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------------------

ZERO = "sha256:" + "0" * 64

CASES = [
    Case("release id with ../", (r"\.\./evil",), vars={"release_id": "../evil"}),
    Case("release id with /", (r"a/b",), vars={"release_id": "a/b"}),
    Case("release id ..", (r"'\.\.'|\"\.\.\"|release_id",), vars={"release_id": ".."}),
    Case("release id empty", (r"release_id|\bid\b",), vars={"release_id": ""}),
    Case("release id with nul byte", (r"nul|\\x00|\\u0000|null byte",), vars={"release_id": "a\x00b"}),
    Case("release id option-like", (r"-rf",), vars={"release_id": "-rf"}),
    Case("shared dir absolute", (r"/etc",), vars={"release_shared_dirs": ["/etc"]}),
    Case("shared dir with ..", (r"\.\./outside",), vars={"release_shared_dirs": ["storage", "../outside"]}),
    Case("shared file absolute", (r"/etc/passwd",), vars={"release_shared_files": ["/etc/passwd"]}),
    Case("shared file with ..", (r"config/\.\./\.\./x",), vars={"release_shared_files": ["config/../../x"]}),
    Case("keep 0", (r"keep", r"\b0\b"), vars={"release_keep": 0}),
    Case("keep negative", (r"keep", r"-1"), vars={"release_keep": -1}),
    Case(
        "archive member with ../",
        (r"\.\./\.\./\.\./escape\.txt",),
        vars={"release_archive": "{dotdot}"},
        trace="failed_release",
    ),
    Case(
        "archive member absolute",
        (r"/tmp/atomic-reliability-absolute\.txt",),
        vars={"release_archive": "{absolute}"},
        trace="failed_release",
    ),
    Case(
        "archive symlink member leading out",
        (r"public/escape",),
        vars={"release_archive": "{symlink}"},
        trace="failed_release",
    ),
    Case(
        "url without checksum",
        (r"checksum",),
        vars={"release_source": "url", "release_url": "{url}/good.tar.gz", "release_archive": None},
    ),
    Case(
        "url with wrong checksum",
        (r"checksum", r"good\.tar\.gz"),
        vars={"release_source": "url", "release_url": "{url}/good.tar.gz", "release_checksum": ZERO,
              "release_archive": None},
        trace="failed_release",
        # The download work dir of the documented layout; the partial download itself must be gone.
        allow=(".deploy/tmp",),
    ),
    Case("missing archive", (r"/nonexistent/app\.tar\.gz",), vars={"release_archive": "/nonexistent/app.tar.gz"}),
    Case(
        "current is a real directory",
        (r"current",),
        setup=current_as_directory,
    ),
    Case(
        "rollback target missing",
        (r"nope",),
        playbook="rollback",
        vars={"release_rollback_to": "nope"},
    ),
    Case(
        "rollback target failed",
        (r"base1", r"failed"),
        playbook="rollback",
        vars={"release_rollback_to": "base1"},
        setup=mark_failed_by_hand("base1"),
    ),
    Case(
        "symlink planted in shared/ leading out",
        (r"shared/storage",),
        setup=lambda root, world: replace_with_link(root / "shared" / "storage", world.outside),
    ),
    Case(
        "symlink planted as shared/.env leading out",
        (r"shared/\.env",),
        setup=lambda root, world: replace_with_link(root / "shared" / ".env", world.outside / "secret.txt"),
    ),
    Case(
        "releases/ is a symlink leading out",
        (r"releases",),
        setup=lambda root, world: (shutil.copytree(root / "releases", world.outside / "releases-copy", symlinks=True),
                                   replace_with_link(root / "releases", world.outside / "releases-copy")),
    ),
    Case(
        "symlink planted at releases/<new id> leading out",
        (r"releases/hostile1",),
        setup=lambda root, world: os.symlink(world.outside, root / "releases" / "hostile1"),
    ),
    Case(
        ".deploy is a symlink leading out",
        (r"\.deploy",),
        setup=lambda root, world: (shutil.copytree(root / ".deploy", world.outside / "deploy-copy"),
                                   replace_with_link(root / ".deploy", world.outside / "deploy-copy")),
    ),
]


# ------------------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("hostile-world")
    files = base / "files"
    files.mkdir()
    archives = {name: build_archive(dest=files / f"{name}.tar.gz", version=name) for name in ("good", "base1", "base2")}
    archives["dotdot"] = Archive(
        path=hostile_archive(files / "dotdot.tar.gz", [("public/ok.txt", b"ok\n"), ("../../../escape.txt", b"x\n")]),
        version="dotdot", manifest={},
    )
    archives["absolute"] = Archive(
        path=hostile_archive(
            files / "absolute.tar.gz",
            [("public/ok.txt", b"ok\n"), ("/tmp/atomic-reliability-absolute.txt", b"x\n")],
        ),
        version="absolute", manifest={},
    )
    archives["symlink"] = Archive(
        path=hostile_archive(
            files / "symlink.tar.gz",
            [("public/ok.txt", b"ok\n"), symlink_member("public/escape", "../../../../../../../../etc")],
        ),
        version="symlink", manifest={},
    )
    handler = functools.partial(_QuietHandler, directory=str(files))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside data\n", encoding="utf-8")
    yield World(base=base, archives=archives, url=f"http://127.0.0.1:{server.server_address[1]}", outside=outside)
    server.shutdown()


@pytest.fixture(scope="module")
def baseline(world: World, ansible: Ansible, deploy_playbook: Path) -> Path:
    """A root with two complete releases (base1, base2 live), shared data and a history."""
    root = world.base / "baseline"
    (root / "shared" / "storage").mkdir(parents=True)
    (root / "shared" / "storage" / "data.bin").write_bytes(os.urandom(4096))
    (root / "shared" / ".env").write_text(SECRET + "\n", encoding="utf-8")
    for release_id in ("base1", "base2"):
        run = ansible.deploy(**deploy_vars(root, world, release_id=release_id, release_archive=str(
            world.archives[release_id].path)))
        assert run.rc == 0, run.describe()
    assert current_id(root) == "base2"
    assert lock_record(root) is None
    return root


def fill(value, world: World):
    if isinstance(value, str):
        for key in ("dotdot", "absolute", "symlink"):
            value = value.replace("{" + key + "}", str(world.archives[key].path))
        return value.replace("{url}", world.url)
    return value


# ------------------------------------------------------------------------------------------------------------
# Assertions
# ------------------------------------------------------------------------------------------------------------


def assert_trace(*, case: Case, before: Snapshot, after: Snapshot, root: Path, release_id: str,
                 history_before: list[dict]) -> None:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    mtime_only = {
        p for p in changed
        if before[p].kind == after[p].kind == "d" and dataclasses.replace(before[p], mtime_ns=0) == dataclasses.replace(
            after[p], mtime_ns=0)
    }
    detail = "\n".join(snapshot_diff(before, after))
    if case.trace == "none":
        assert added == removed == changed == [], f"{case.name}: the disk changed:\n{detail}"
        return
    if case.trace == "lock":
        assert added == removed == [] and set(changed) <= {".deploy"} and set(changed) <= mtime_only, (
            f"{case.name}: more than the lock's transient trace:\n{detail}"
        )
        return
    release = f"releases/{release_id}"
    allowed_added = {release, f"{release}/.release.json", *case.allow}
    assert removed == [], f"{case.name}: removed entries:\n{detail}"
    assert set(added) <= allowed_added and {release, f"{release}/.release.json"} <= set(added), (
        f"{case.name}: expected only a failed marker for {release}:\n{detail}"
    )
    for extra in case.allow:
        if extra in after:
            assert after[extra].kind == "d" and not any(p.startswith(extra + "/") for p in after), (
                f"{case.name}: {extra} is not empty:\n{detail}"
            )
    assert set(changed) - mtime_only <= {".deploy/history.jsonl"}, f"{case.name}: unexpected changes:\n{detail}"
    assert set(mtime_only) <= {".", "releases", ".deploy"}, f"{case.name}: unexpected dir changes:\n{detail}"
    meta = metadata(root, release_id)
    assert meta is not None and meta["state"] == "failed", f"{case.name}: {release} is not marked failed: {meta}"
    entries, torn = read_history(root)
    assert not torn
    new = entries[len(history_before):]
    assert entries[: len(history_before)] == history_before, f"{case.name}: earlier history lines were rewritten"
    assert [(e.get("event"), e.get("id")) for e in new] == [("failed", release_id)], (
        f"{case.name}: expected one failed history line, got {new}"
    )


# ------------------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------------------

_OUTCOMES: list[str] = []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, world: World, baseline: Path, ansible: Ansible, tmp_path: Path) -> None:
    root = tmp_path / "root"
    copy_root(baseline, root)
    if case.setup is not None:
        case.setup(root, world)
    extra = {key: fill(value, world) for key, value in case.vars.items()}
    if case.playbook == "deploy":
        variables = deploy_vars(root, world, **extra)
        variables = {k: v for k, v in variables.items() if v is not None}
        playbook = DEPLOY_PLAYBOOK
    else:
        variables = {"release_root": str(root), **extra}
        playbook = ROLLBACK_PLAYBOOK
    release_id = variables.get("release_id", "")
    before = snapshot(root)
    outside_before = snapshot(world.outside)
    history_before, _torn = read_history(root)
    run = ansible.playbook(playbook=playbook, extra_vars=variables)
    after = snapshot(root)
    messages = "\n".join(run.failure_messages) or run.text
    _OUTCOMES.append(f"{case.name}: rc={run.rc} {messages.splitlines()[0][:160] if messages else ''}")
    assert run.rc != 0, f"{case.name}: the run succeeded\n{run.describe()}"
    assert run.failures, f"{case.name}: no task failed (the playbook itself did not run?)\n{run.describe()}"
    for pattern in case.expect:
        assert re.search(pattern, messages), f"{case.name}: the error does not name the input ({pattern}):\n{messages}"
    assert lock_record(root) is None, f"{case.name}: a lock was left behind: {lock_record(root)}"
    assert snapshot(world.outside) == outside_before, f"{case.name}: something outside the root changed"
    assert not Path("/tmp/atomic-reliability-absolute.txt").exists()
    assert not (root.parent / "escape.txt").exists() and not (root.parents[1] / "escape.txt").exists()
    assert_trace(case=case, before=before, after=after, root=root, release_id=release_id, history_before=history_before)


def test_hostile_summary(figures) -> None:
    figures(cases=len(CASES), outcomes=len(_OUTCOMES))
    for line in _OUTCOMES:
        print(f"  {line}")
