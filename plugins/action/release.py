# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.atomic.deploy.plugins.plugin_utils import _pack
from ansible_collections.atomic.deploy.plugins.plugin_utils._controller import OwnerActionBase


class ActionModule(OwnerActionBase):
    """Send controller-side code to the host, then run the release module once.

    ``source=archive`` (without ``remote_src``) transfers the archive; ``source=directory`` packs
    the directory into a tar.gz first. Both go into the task's remote temp dir, which the module
    run shares, so staging costs one transfer and one module run. Over a local connection without
    become the file is used where it is.
    """

    TRANSFERS_FILES = True

    def controller_file(self, args: dict) -> tuple[str | None, str | None]:
        """(path to send, temp file to delete afterwards)."""
        if args.get('state', 'present') != 'present':
            return None, None
        source = args.get('source', 'none')
        if source == 'directory':
            directory = args.get('directory')
            if not directory:
                raise AnsibleActionFail('source=directory needs directory (role variable release_directory)')
            path = os.path.expanduser(str(directory))
            if not os.path.isabs(path):
                path = self._find_needle('files', path)
            if not os.path.isdir(path):
                raise AnsibleActionFail(f'directory {path} does not exist on the controller or is not a directory')
            fd, packed = tempfile.mkstemp(prefix='atomic-deploy-', suffix='.tar.gz')
            try:
                with os.fdopen(fd, 'wb') as handle:
                    _pack.pack_directory(src=path, fileobj=handle)
            except _pack.PackError as exc:
                os.unlink(packed)
                raise AnsibleActionFail(f'cannot pack directory {path}: {exc}') from None
            except BaseException:
                os.unlink(packed)
                raise
            args['directory'] = path
            return packed, packed
        if source == 'archive' and not boolean(args.get('remote_src', False), strict=False):
            archive = args.get('archive')
            if not archive:
                raise AnsibleActionFail('source=archive needs archive (role variable release_archive)')
            path = os.path.expanduser(str(archive))
            try:
                path = self._loader.get_real_file(self._find_needle('files', path))
            except Exception as exc:  # the loader raises several types; all mean "not found here"
                raise AnsibleActionFail(f'archive {archive} does not exist on the controller: {exc}') from None
            return path, None
        return None, None

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = ActionBase.run(self, tmp, task_vars)
        del tmp
        args = self.module_args(task_vars)
        cleanup = None
        try:
            local, cleanup = self.controller_file(args)
            if local is not None:
                if self._task.check_mode or (self._connection.transport == 'local' and not self._play_context.become):
                    args['archive'] = local
                    args['remote_src'] = not self._task.check_mode
                else:
                    tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
                    remote = self._connection._shell.join_path(tmpdir, 'release-source')
                    self._transfer_file(local, remote)
                    self._fixup_perms2((tmpdir, remote))
                    args['archive'] = remote
                    args['remote_src'] = True
            result.update(
                self._execute_module(module_name=self._task.resolved_action, module_args=args, task_vars=task_vars)
            )
        finally:
            if cleanup is not None:
                os.unlink(cleanup)
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
