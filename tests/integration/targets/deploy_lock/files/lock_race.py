# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Concurrent deploy_lock attempts on one root; prints a JSON report of who won each round.

Two modes, both real:

``ansible``  starts N full ``ansible`` ad-hoc runs of atomic.deploy.deploy_lock at once (controller,
             action plugin, AnsiballZ, module), each with its own token, and reports each result.
             The runs overlap in time, but process start-up jitter decides who gets there first.
``module``   forks N processes per round that each import the module, wait on a barrier, and then
             run its main() at the same instant, so the read-check-write sections really collide.
             Repeated for R rounds, each on a fresh root.

The collection is the first atomic.deploy found in ``--collections`` (directories that hold
ansible_collections/, separated by ":"; the target passes the controller's COLLECTIONS_PATHS).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import subprocess
import sys


def ansible_mode(*, collections: str, root: str, racers: int, python: str) -> dict:
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=collections,
        ANSIBLE_CALLBACK_RESULT_FORMAT='json',
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_DEPRECATION_WARNINGS='0',
        ANSIBLE_HOST_KEY_CHECKING='0',
    )
    procs = []
    for n in range(racers):
        args = {
            'root': root,
            'token': f'ansible-racer-{n}',
            'owner': {'user': f'racer-{n}', 'controller': 'integration'},
        }
        argv = [
            python,
            '-m',
            'ansible.cli.adhoc',
            'localhost',
            '-i',
            'localhost,',
            '-c',
            'local',
            '-e',
            f'ansible_python_interpreter={python}',
            '-m',
            'atomic.deploy.deploy_lock',
            '-a',
            json.dumps(args),
        ]
        procs.append((n, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)))
    results = []
    for n, proc in procs:
        out, err = proc.communicate(timeout=120)
        # "localhost | CHANGED => {...}": the JSON result follows the arrow
        _head, _arrow, body = out.partition('=>')
        try:
            result = json.loads(body)
        except ValueError:
            result = {'unparsed': out, 'stderr': err}
        results.append(
            {
                'racer': n,
                'rc': proc.returncode,
                'acquired': bool(result.get('acquired')) and not result.get('failed'),
                'msg': result.get('msg', ''),
                'result': result,
            }
        )
    return {'mode': 'ansible', 'rounds': [results]}


def _import_module(collections: str):
    """Import the module (and what AnsibleModule loads lazily) once, before the workers fork."""
    sys.path.insert(0, collections)
    import importlib

    import ansible.module_utils.testing  # noqa: F401 - pulls in unittest.mock, slow to import in every worker
    from ansible_collections.atomic.deploy.plugins.modules import deploy_lock

    for direction in ('c2m', 'm2c'):
        importlib.import_module(f'ansible.module_utils._internal._json._profiles._module_legacy_{direction}')
    return deploy_lock


def _module_worker(collections: str, root: str, token: str, barrier, queue) -> None:
    from ansible.module_utils.testing import patch_module_args

    deploy_lock = _import_module(collections)
    args = {'root': root, 'token': token, 'owner': {'user': token, 'controller': 'integration'}}
    captured = io.StringIO()
    code = None
    with patch_module_args(args):
        barrier.wait(timeout=60)
        sys.stdout = captured
        try:
            deploy_lock.main()
        except SystemExit as exc:
            code = exc.code
        except BaseException as exc:
            captured.write(json.dumps({'failed': True, 'msg': f'crash: {exc!r}'}))
            code = 99
        finally:
            sys.stdout = sys.__stdout__
    try:
        result = json.loads(captured.getvalue())
    except ValueError:
        result = {'failed': True, 'msg': f'unparsable output: {captured.getvalue()[:500]}'}
    queue.put(
        {
            'token': token,
            'rc': code,
            'acquired': bool(result.get('acquired')) and not result.get('failed'),
            'msg': result.get('msg', ''),
        }
    )


def module_mode(*, collections: str, root: str, racers: int, rounds: int) -> dict:
    _import_module(collections)
    ctx = multiprocessing.get_context('fork')
    report = []
    for round_no in range(rounds):
        round_root = os.path.join(root, f'round-{round_no}')
        barrier = ctx.Barrier(racers)
        queue = ctx.Queue()
        procs = [
            ctx.Process(target=_module_worker, args=(collections, round_root, f'r{round_no}-w{n}', barrier, queue))
            for n in range(racers)
        ]
        for proc in procs:
            proc.start()
        results = [queue.get(timeout=120) for _proc in procs]
        for proc in procs:
            proc.join(timeout=60)
        report.append(sorted(results, key=lambda r: r['token']))
    return {'mode': 'module', 'rounds': report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--mode', choices=['ansible', 'module'], required=True)
    parser.add_argument(
        '--collections', required=True, help='directories holding ansible_collections/, separated by ":"'
    )
    parser.add_argument('--root', required=True, help='deploy root (module mode: one subdirectory per round)')
    parser.add_argument('--racers', type=int, default=4)
    parser.add_argument('--rounds', type=int, default=20)
    args = parser.parse_args()
    found = [
        os.path.normpath(path)
        for path in args.collections.split(':')
        if path and os.path.isfile(os.path.join(path, 'ansible_collections', 'atomic', 'deploy', 'galaxy.yml'))
    ]
    if not found:
        sys.exit(f'no atomic.deploy collection below any of {args.collections}')
    collections = found[0]
    if args.mode == 'ansible':
        report = ansible_mode(collections=collections, root=args.root, racers=args.racers, python=sys.executable)
    else:
        report = module_mode(collections=collections, root=args.root, racers=args.racers, rounds=args.rounds)
    report['winners'] = [sum(1 for r in results if r['acquired']) for results in report['rounds']]
    print(json.dumps(report))


if __name__ == '__main__':
    main()
