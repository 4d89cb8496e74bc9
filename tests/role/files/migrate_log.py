"""A stand-in migration command for the role tests: appends the directory it runs in to a log file.

The role runs the migrate command in the new release directory of the migrate host, and every test host
has its own deploy root, so the line names the host (and the release) that ran the migrations.

usage: python migrate_log.py LOGFILE
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: migrate_log.py LOGFILE", file=sys.stderr)
        return 2
    with open(argv[0], "a", encoding="utf-8") as log:
        log.write(os.getcwd() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
