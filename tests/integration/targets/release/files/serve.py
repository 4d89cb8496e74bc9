# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Serve a directory on 127.0.0.1 for the url source tests.

usage: serve.py DIRECTORY STATE_FILE

Binds a free port, writes {"port": N, "pid": P} to STATE_FILE (atomically), and serves until a
file named STATE_FILE + ".stop" appears, or at most 900 seconds, so a failed test never leaves
a server behind.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import sys
import threading
import time


def main() -> None:
    directory, state_file = sys.argv[1], sys.argv[2]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
    with http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler) as httpd:
        tmp = f'{state_file}.tmp'
        with open(tmp, 'w') as handle:
            json.dump({'port': httpd.server_address[1], 'pid': os.getpid()}, handle)
        os.replace(tmp, state_file)

        def watch() -> None:
            deadline = time.monotonic() + 900
            while not os.path.exists(f'{state_file}.stop') and time.monotonic() < deadline:
                time.sleep(0.2)
            httpd.shutdown()

        threading.Thread(target=watch, daemon=True).start()
        httpd.serve_forever(poll_interval=0.2)


if __name__ == '__main__':
    main()
