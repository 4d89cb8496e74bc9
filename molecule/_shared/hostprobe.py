"""Testinfra helpers: one ssh round trip reads a whole deploy root, so each check is an assertion on
that snapshot instead of a command of its own (a loaded 2-core CI box spends 0.2-0.5 s per command).

The same file sits in the tests/ directory of every role scenario (default, shared_uploads, failure,
nginx); keep the copies identical.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ['MOLECULE_INVENTORY_FILE']
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
HOST_NAMES = sorted(RUNNER.get_hosts('all'))

# Runs on the host as root: lstat of every entry under the root (links are not followed), the link
# text and resolved path of links, and the text of small files.
PROBE = r"""
import grp, json, os, pwd, stat, sys
root = sys.argv[1]
def name(table, ident):
    try:
        return table(ident)[0]
    except KeyError:
        return str(ident)
def describe(path):
    st = os.lstat(path)
    entry = {"mode": stat.S_IMODE(st.st_mode), "user": name(pwd.getpwuid, st.st_uid),
             "group": name(grp.getgrgid, st.st_gid), "nlink": st.st_nlink}
    if stat.S_ISLNK(st.st_mode):
        entry.update(kind="link", target=os.readlink(path), resolved=os.path.realpath(path))
    elif stat.S_ISDIR(st.st_mode):
        entry.update(kind="dir", entries=sorted(os.listdir(path)))
    elif stat.S_ISREG(st.st_mode):
        entry.update(kind="file", size=st.st_size)
        if st.st_size <= 65536:
            with open(path, "rb") as handle:
                entry["text"] = handle.read().decode("utf-8", "replace")
    else:
        entry["kind"] = "other"
    return entry
out = {}
if os.path.lexists(root):
    out[root] = describe(root)
    for top, dirs, files in os.walk(root):
        for each in dirs + files:
            path = os.path.join(top, each)
            out[path] = describe(path)
print(json.dumps(out))
"""


def role_var(name: str) -> Any:
    """A variable as molecule.yml's inventory sets it (not templated)."""
    return RUNNER.get_variables(HOST_NAMES[0])[name]


@dataclass(frozen=True)
class Snapshot:
    hostname: str
    entries: dict[str, dict]

    def get(self, path: str) -> dict | None:
        return self.entries.get(path)

    def __getitem__(self, path: str) -> dict:
        entry = self.entries.get(path)
        if entry is None:
            raise AssertionError(f'{path} does not exist on {self.hostname}')
        return entry

    def exists(self, path: str) -> bool:
        return path in self.entries

    def text(self, path: str) -> str:
        entry = self[path]
        assert entry['kind'] == 'file', f'{path} on {self.hostname} is a {entry["kind"]}, not a file'
        return entry['text']

    def json(self, path: str) -> Any:
        text = self.text(path)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise AssertionError(f'{path} on {self.hostname} is not json: {text!r}') from exc

    def json_lines(self, path: str) -> list[Any]:
        entries = []
        for number, line in enumerate(self.text(path).splitlines(), start=1):
            try:
                entries.append(json.loads(line))
            except ValueError as exc:
                raise AssertionError(f'{path} line {number} on {self.hostname} is not json: {line!r}') from exc
        return entries


def take_snapshot(*, host: testinfra.host.Host, root: str) -> Snapshot:
    with host.sudo():
        out = host.check_output('python3 -c %s %s', PROBE, root)
    return Snapshot(hostname=host.backend.get_hostname(), entries=json.loads(out))


def all_hosts() -> list[testinfra.host.Host]:
    return [RUNNER.get_host(name) for name in HOST_NAMES]
