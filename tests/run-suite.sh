#!/usr/bin/env bash
# Shared tail of the suite runners (tests/role/run.sh, tests/ecosystem/run.sh): run a suite's pytest
# with its own ini file, count the results from the junit XML, print "NAME: N passed, N failed"
# and exit non-zero when a test failed, was skipped (nothing may be skipped silently) or none ran.
#
# usage: bash tests/run-suite.sh NAME SUITE_DIR [pytest arguments...]
set -euo pipefail

name="$1"
here="$2"
shift 2

junit="$(mktemp "${TMPDIR:-/tmp}/atomic-deploy-${name}.XXXXXX.xml")"
trap 'rm -f "${junit}"' EXIT

rc=0
(cd "${here}" && python3 -m pytest -c "${here}/pytest.ini" --rootdir "${here}" --junitxml "${junit}" "$@") || rc=$?

read -r passed failed < <(python3 - "${junit}" <<'PY'
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print(0, 1)
    raise SystemExit(0)
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
total = sum(int(s.get("tests", 0)) for s in suites)
failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(total - failed - skipped, failed + skipped)
PY
)
echo "${name}: ${passed} passed, ${failed} failed"
if ((rc != 0 || failed != 0 || passed == 0)); then
    exit 1
fi
