#!/usr/bin/env bash
# Role tests: the atomic.deploy.release role and its playbooks (deploy, rollback, status) driven on three
# local-connection hosts, each with its own deploy root, plus the argument specs check. The checkout is
# the collection atomic.deploy through scripts/collection-tree.sh.
#
# usage: bash tests/role/run.sh [pytest arguments...]    (e.g. -k lifecycle, -x)
# ROLE_TESTS_KEEP=1 keeps the scratch roots and every playbook's output (the path is printed).
# Needs the venv from scripts/bootstrap.sh (ATOMIC_VENV to use another one), runuser/setpriv and git,
# and runs as root (the tests act as www-data).
# Ends with "role: N passed, N failed"; exits non-zero when any test failed or none ran.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
VENV="${ATOMIC_VENV:-${REPO_ROOT}/.venv}"
HERE="${REPO_ROOT}/tests/role"
export PATH="${VENV}/bin:${PATH}"
# The tests name their own ansible.cfg and collections path (helpers.Fleet.env).
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATHS
export ANSIBLE_NOCOLOR=1 PY_COLORS=0

for cmd in python3 ansible-playbook ansible-doc git setpriv; do
    if ! command -v "${cmd}" >/dev/null 2>&1; then
        echo "role: required tool ${cmd} not found in ${VENV}/bin or on PATH (run scripts/bootstrap.sh)" >&2
        echo "role: 0 passed, 1 failed"
        exit 1
    fi
done
if [[ "$(id -u)" != 0 ]]; then
    echo "role: the role tests act as www-data through setpriv and must run as root" >&2
    echo "role: 0 passed, 1 failed"
    exit 1
fi
# shellcheck source=../../scripts/collection-tree.sh disable=SC1091
source "${REPO_ROOT}/scripts/collection-tree.sh"

exec bash "${REPO_ROOT}/tests/run-suite.sh" role "${HERE}" "$@"
