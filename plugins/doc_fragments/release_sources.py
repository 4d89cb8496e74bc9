# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The options of M(atomic.deploy.release) for O(source=url) (and O(checksum)) and O(source=git)."""

    DOCUMENTATION = r"""
options:
  url:
    description: The download for O(source=url).
    type: str
  checksum:
    description:
      - The expected checksum of the download or archive, C(<algorithm>:<hex digest>), for
        example C(sha256:9f86d08...). Required with O(source=url); checked for O(source=archive) when given.
    type: str
  url_timeout:
    description: Seconds before the download times out.
    type: int
    default: 60
  url_headers:
    description:
      - HTTP headers sent with the O(source=url) download, for example an C(Authorization) or
        C(PRIVATE-TOKEN) header for an artifact store. Their values never appear in the result or the logs.
    type: dict
  git_repo:
    description: The repository for O(source=git), any URL or path C(git clone) accepts.
    type: str
  git_version:
    description: The branch, tag or commit to deploy; the resolved commit is recorded.
    type: str
    default: HEAD
  git_submodules:
    description:
      - With O(source=git), check the commit out in C(ROOT/.deploy/tmp), initialise its submodules
        recursively (C(git submodule update --init --recursive)) and put their trees into the release.
        Submodules are fetched afresh on every staging; only the main repository has a mirror.
    type: bool
    default: false
  git_key_file:
    description:
      - With O(source=git), the private key on the host that every git call (submodules too) uses over
        SSH, alone (C(ssh -i KEY -o IdentitiesOnly=yes) as C(GIT_SSH_COMMAND)). An absolute path to a
        readable regular file.
    type: path
  git_excludes:
    description:
      - With O(source=git), paths relative to the repository (files or whole directories, in submodules
        too) left out of the release, for example V(tests) or V(docs/internal).
    type: list
    elements: str
    default: []
"""
