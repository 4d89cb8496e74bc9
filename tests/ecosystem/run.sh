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

exec bash "${REPO_ROOT}/tests/run-suite.sh" ecosystem "${HERE}" "$@"
