# Copyright (c) atomic.deploy contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A test web server for the release_check target: the release it serves is the content of DIR/release.

GET /       200, "<p>release ID</p>" and the header X-Release: ID (ID read again on every request)
GET /broken 500
GET /stop   200, then the server exits
Listens on 127.0.0.1 on a free port, writes the port to DIR/port, and exits after --seconds.
"""

from __future__ import annotations

import argparse
import http.server
import os
import threading


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--dir', required=True)
    parser.add_argument('--seconds', type=float, default=300)
    args = parser.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with open(os.path.join(args.dir, 'release'), encoding='utf-8') as handle:
                ident = handle.read().strip()
            status = 500 if self.path == '/broken' else 200
            data = f'<p>release {ident}</p>\n'.encode()
            self.send_response(status)
            self.send_header('X-Release', ident)
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if self.path == '/stop':
                threading.Thread(target=self.server.shutdown).start()

        def log_message(self, *_args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    tmp = os.path.join(args.dir, 'port.tmp')
    with open(tmp, 'w', encoding='utf-8') as handle:
        handle.write(str(server.server_address[1]))
    os.replace(tmp, os.path.join(args.dir, 'port'))
    timer = threading.Timer(args.seconds, server.shutdown)
    timer.daemon = True
    timer.start()
    server.serve_forever()


if __name__ == '__main__':
    main()
