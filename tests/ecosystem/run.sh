#!/usr/bin/env bash
# Ecosystem tests: the collection as AWX, ansible-builder, ansible-doc, antsibull-changelog and a
# user installing the release tarball see it. Every test builds on `ansible-galaxy collection build`
# of the checkout installed offline into a scratch collections path, the only one Ansible may search.
#
# usage: bash tests/ecosystem/run.sh [pytest arguments...]    (e.g. -k runner, -x)
# Needs the venv from scripts/bootstrap.sh (ATOMIC_VENV to use another one).
# Ends with "ecosystem: N passed, N failed"; exits non-zero when any test failed or none ran.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
VENV="${ATOMIC_VENV:-${REPO_ROOT}/.venv}"
HERE="${REPO_ROOT}/tests/ecosystem"
export PATH="${VENV}/bin:${PATH}"
# The Makefile points this at the checkout; these tests name their collections path themselves.
unset ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS ANSIBLE_CONFIG
export ANSIBLE_NOCOLOR=1 PY_COLORS=0

for cmd in python3 ansible-galaxy ansible-playbook ansible-doc ansible-runner ansible-builder antsibull-changelog; do
    if [[ ! -x "${VENV}/bin/${cmd}" ]] && ! command -v "${cmd}" >/dev/null 2>&1; then
        echo "ecosystem: required tool ${cmd} not found in ${VENV}/bin or on PATH (run scripts/bootstrap.sh)" >&2
        echo "ecosystem: 0 passed, 1 failed"
        exit 1
    fi
done

junit="$(mktemp "${TMPDIR:-/tmp}/atomic-deploy-ecosystem.XXXXXX.xml")"
trap 'rm -f "${junit}"' EXIT

rc=0
(cd "${HERE}" && python3 -m pytest -c "${HERE}/pytest.ini" --rootdir "${HERE}" --junitxml "${junit}" "$@") || rc=$?

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
# A skipped test counts as failed: nothing here may be skipped silently.
echo "ecosystem: ${passed} passed, ${failed} failed"
if ((rc != 0 || failed != 0 || passed == 0)); then
    exit 1
fi
