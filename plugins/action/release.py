# -*- coding: utf-8 -*-
# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import tempfile
import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.atomic.deploy.plugins.module_utils import _manifest, _release, _source
from ansible_collections.atomic.deploy.plugins.plugin_utils import _delta, _pack
from ansible_collections.atomic.deploy.plugins.plugin_utils._controller import OwnerActionBase

display = Display()


class ActionModule(OwnerActionBase):
    """Send controller-side code to the host, then run the release module.

    ``source=archive`` (without ``remote_src``) and ``source=directory`` come from the controller.
    Over a local connection without become (and in check mode) the archive is read where it is,
    in one module run. Otherwise, with ``delta=true`` (the default), a first module run takes the
    lock, spots a live no-op and reports the content the host already has in any complete
    release; then only the missing content is sent, compressed, in one transfer (the whole
    artifact when the host has nothing usable), and a second module run assembles the release.
    See docs/delta.md. With ``delta=false`` the artifact is sent whole, then one module run.
    """

    TRANSFERS_FILES = True

    def controller_source(self, args: dict) -> tuple[str | None, str | None]:
        """(controller path, kind) of the code to send, or (None, None)."""
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
            args['directory'] = path
            return path, 'directory'
        if source == 'archive' and not boolean(args.get('remote_src', False), strict=False):
            archive = args.get('archive')
            if not archive:
                raise AnsibleActionFail('source=archive needs archive (role variable release_archive)')
            path = os.path.expanduser(str(archive))
            try:
                path = self._loader.get_real_file(self._find_needle('files', path))
            except Exception as exc:  # the loader raises several types; all mean "not found here"
                raise AnsibleActionFail(f'archive {archive} does not exist on the controller: {exc}') from None
            return path, 'archive'
        return None, None

    @staticmethod
    def pack(path: str) -> str:
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
        return packed

    def manifest(self, args: dict, path: str, kind: str) -> dict | None:
        try:
            strip = int(args.get('strip_components') or 0)
        except (TypeError, ValueError):
            return None
        try:
            return _delta.artifact_manifest(
                path=path,
                kind=kind,
                strip_components=0 if kind == 'directory' else strip,
                drop_macos_metadata=boolean(args.get('drop_macos_metadata', True), strict=False),
            )
        except (OSError, _manifest.ManifestError) as exc:
            display.warning(f'delta staging is off for this run: cannot read the artifact manifest of {path}: {exc}')
            return None

    def send(self, local: str) -> str:
        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        remote = self._connection._shell.join_path(tmpdir, 'release-source')
        self._transfer_file(local, remote)
        self._fixup_perms2((tmpdir, remote))
        return remote

    def execute(self, args: dict, task_vars: dict) -> dict:
        return self._execute_module(module_name=self._task.resolved_action, module_args=args, task_vars=task_vars)

    def run(self, tmp=None, task_vars=None):
        # With each module's started_at, how long this task took to reach the host (plugin_utils/_switch.py).
        dispatched_at = time.time()
        task_vars = task_vars or {}
        result = ActionBase.run(self, tmp, task_vars)
        result['dispatched_at'] = dispatched_at
        del tmp
        args = self.module_args(task_vars)
        cleanup: list[str] = []
        try:
            local, kind = self.controller_source(args)
            if local is None:
                result.update(self.execute(args, task_vars))
                return result
            if kind == 'archive':
                args['_archive_origin'] = local
            delta_on = boolean(args.get('delta', True), strict=False)
            in_place = self._task.check_mode or (
                self._connection.transport == 'local' and not self._play_context.become
            )
            manifest = self.manifest(args, local, kind) if delta_on else None
            if manifest is not None and not args.get('_content_digest'):
                args['_content_digest'] = manifest['digest']
            if in_place or not delta_on:
                if kind == 'directory':
                    local = self.pack(local)
                    cleanup.append(local)
                if in_place:
                    args['archive'] = local
                    args['remote_src'] = not self._task.check_mode
                else:
                    args['archive'] = self.send(local)
                    args['remote_src'] = True
                result.update(self.execute(args, task_vars))
                return result
            fast = self.live_check(args, task_vars, manifest) if manifest is not None else None
            if fast is not None:
                result.update(fast)
                return result
            result.update(self.delta_run(args, task_vars, local=local, kind=kind, manifest=manifest, cleanup=cleanup))
        finally:
            for path in cleanup:
                os.unlink(path)
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def live_check(self, args: dict, task_vars: dict, manifest: dict) -> dict | None:
        """The result of a no-op re-deploy of the live release, found without a module run; else None.

        A module run costs its AnsiballZ payload (about 150 kB on the wire with ansible-core 2.19);
        this read-only check costs about 8 kB. Anything unusual falls through to the module.
        """
        interpreter = task_vars.get('ansible_python_interpreter') or (task_vars.get('ansible_facts') or {}).get(
            'discovered_interpreter_python'
        )
        if not interpreter or not getattr(self._connection, 'has_pipelining', False) or args.get('_delta'):
            return None
        try:
            interpreter = str(self._templar.template(interpreter))
            if not interpreter.startswith('/'):
                return None  # 'auto' and friends: the module run discovers it
            program, argument = _delta.live_check_program(
                root=str(args['root']),
                release_id=str(args['id']),
                content_digest=manifest['digest'],
                checksum=args.get('checksum'),
            )
            quote = self._connection._shell.quote
            res = self._low_level_execute_command(
                f'{quote(interpreter)} - {quote(argument)}', sudoable=True, in_data=program
            )
        except Exception as exc:  # any trouble here only means: ask the module
            display.vvv(f'atomic.deploy.release: live check skipped: {exc}')
            return None
        if res.get('rc') != 0:
            return None
        data = None
        for line in reversed(str(res.get('stdout') or '').splitlines()):
            if line.startswith('{'):
                try:
                    data = json.loads(line)
                except ValueError:
                    data = None
                break
        if not isinstance(data, dict) or not data.get('live'):
            return None
        root = os.path.normpath(str(args['root']))
        result = dict(
            changed=False,
            id=args['id'],
            release_path=os.path.join(root, 'releases', str(args['id'])),
            state='complete',
            live=True,
            created=False,
            rebuilt=False,
            current_before=args['id'],
            removed=[],
            token=args.get('lock_token'),
            source=data.get('source') or {},
            delta={'mode': 'none', 'sent_bytes': 0},
        )
        drift = data.get('drift') or {}
        if drift.get('drifted'):
            kinds = ('changed', 'added', 'removed', 'untrusted')
            parts = [f'{what} {", ".join(drift[what][:10])}' for what in kinds if drift.get(what)]
            result['warnings'] = [
                f'release {args["id"]} (current) has drifted from what was deployed: {"; ".join(parts)} '
                '(releases_info verify=true lists it)'
            ]
        return result

    def delta_run(self, args: dict, task_vars: dict, *, local: str, kind: str, manifest, cleanup: list) -> dict:
        """Probe (lock, no-op, what the host has), one transfer, assemble."""
        if kind == 'archive' and args.get('checksum'):
            # The archive may never reach the host: check it here, where it is read.
            try:
                args['checksum'] = _source.verify_file(path=local, checksum=args['checksum'])
            except _release.ReleaseError as exc:
                raise AnsibleActionFail(str(exc)) from None
        probe = self.execute(dict(args, archive=local, _delta={'probe': True}), task_vars)
        probed = probe.get('delta') or {}
        if probe.get('failed') or not probed.get('probe'):
            # Failed, a live no-op, or a complete release kept as it is: nothing to send.
            if not probe.get('failed'):
                probe['delta'] = {'mode': 'none', 'sent_bytes': 0}
            return probe
        have = _delta.parse_have(probed.get('have'))
        token = probe.get('token') or args.get('lock_token')
        second = dict(args, lock_token=token)
        info = {'mode': 'full', 'held_files': len(have)}
        if manifest is not None and have:
            need = _delta.missing(manifest['entries'], have)
            try:
                strip = 0 if kind == 'directory' else int(args.get('strip_components') or 0)
                local_file = _delta.bundle(
                    path=local,
                    kind=kind,
                    strip_components=strip,
                    manifest=manifest,
                    need=need,
                    bases=probed.get('bases') or (),
                )
            except (OSError, _manifest.ManifestError) as exc:
                self.unlock_after_failure(second, probed, task_vars)
                raise AnsibleActionFail(f'cannot pack the delta of {local}: {exc}') from None
            info.update(
                mode='delta', sent_files=len(need), sent_content_bytes=_manifest.content_size(manifest['entries'], need)
            )
            second['_delta'] = {'lock_acquired': bool(probed.get('lock_acquired'))}
        else:
            local_file = local
            if kind == 'directory':
                local_file = self.pack(local)
                cleanup.append(local_file)
            second['_delta'] = {'lock_acquired': bool(probed.get('lock_acquired'))}
        info['sent_bytes'] = os.path.getsize(local_file)
        try:
            remote = self.send(local_file)
        except BaseException:
            self.unlock_after_failure(second, probed, task_vars)
            raise
        if info['mode'] == 'delta':
            second['_bundle'] = remote
            second['archive'] = local
        else:
            second['archive'] = remote
            second['remote_src'] = True
        outcome = self.execute(second, task_vars)
        if 'started_at' in probe:
            outcome['started_at'] = probe['started_at']
        stats = outcome.get('stats') or {}
        info.update({k: stats[k] for k in ('linked', 'copied', 'hashed_files') if k in stats})
        outcome['delta'] = info
        if probe.get('warnings'):
            outcome['warnings'] = list(probe['warnings']) + list(outcome.get('warnings') or [])
        return outcome

    def unlock_after_failure(self, args: dict, probed: dict, task_vars: dict) -> None:
        """The probe took the lock and nothing was staged: give it back, as a failed staging does."""
        if not probed.get('lock_acquired') or not args.get('lock_token'):
            return
        self._execute_module(
            module_name='atomic.deploy.deploy_lock',
            module_args={'root': args['root'], 'state': 'absent', 'token': args['lock_token']},
            task_vars=task_vars,
        )
