# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.atomic.deploy.plugins.plugin_utils._controller import TargetPythonActionBase


class ActionModule(TargetPythonActionBase):
    """Run the module on the host; a target Python older than 3.8 gets a clear message."""
