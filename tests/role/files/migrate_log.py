"""A stand-in migration command for the role tests: appends "<host> <directory>" to a log file.

<host> is ROLE_TEST_HOST, which the test fleet's Python wrapper sets on each host (every test host is this
machine); the role runs the migrate command in the new release directory of the migrate host, and every
test host has its own deploy root, so the line shows where the migrations ran and for which release.

usage: python migrate_log.py LOGFILE
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print('usage: migrate_log.py LOGFILE', file=sys.stderr)
        return 2
    with open(argv[0], 'a', encoding='utf-8') as log:
        log.write(f'{os.environ.get("ROLE_TEST_HOST", "unknown-host")} {os.getcwd()}\n')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
