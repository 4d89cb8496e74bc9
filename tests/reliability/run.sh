#!/usr/bin/env bash
# Reliability suites for atomic.deploy (make reliability). Each suite is one pytest run against the real
# playbooks, bounded by its own time limit, and prints its figures and "<suite>: N passed, N failed":
#
#   security       static scan for shell strings (roles/, playbooks/, plugins/), symlink escapes, umask 000
#   hostile        bad and hostile input, table driven; every case snapshots the root before and after
#   privilege      www-data plants links against writable methods, seeding and pruning with become
#   concurrent     two deploys released at the same instant: one proceeds, the other fails on the lock
#   zero_downtime  nginx + a checking load client while 20 deploys and 5 rollbacks run; rm+ln -s compared
#   crash          SIGKILL and SIGINT at every task boundary of a deploy and at random points inside extraction
#   web_user_shared  a real www-data plants links into the root in shared/ and races the shared dir repair
#                  and the shared file creation over 20 deploys each
#   web_user_releases  www-data forges releases, manifests and an id file collision; deploys run as root with become
#
# Usage: tests/reliability/run.sh [suite ...]   (default: all, in the order above)
# Needs root (nginx workers drop to www-data, tmpfs mounts), nginx, and the repo venv (make setup).
# Exits non-zero on any failure; the last line is "reliability: N passed, N failed".
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "${here}/../.." && pwd -P)"
cd "${repo}" || exit 1

python="${RELIABILITY_PYTHON:-${repo}/.venv/bin/python}"
if [[ ! -x "${python}" ]]; then
    echo "reliability: ${python} does not exist; run make setup (or set RELIABILITY_PYTHON)" >&2
    echo "reliability: 0 passed, 1 failed"
    exit 1
fi
# shellcheck source=/dev/null
source "${repo}/scripts/collection-tree.sh"
bindir="$(dirname "${python}")"
export PATH="${bindir}:${PATH}"
export ANSIBLE_NOCOLOR=1 PY_COLORS=0

# suite:time limit in seconds. The limits are ceilings, not estimates (see the suites' own figures).
declare -A limits=([security]=180 [hostile]=300 [web_user_releases]=240 [privilege]=240 [concurrent]=180 [zero_downtime]=300 [crash]=420 [web_user_shared]=420)
order=(security hostile web_user_releases privilege concurrent zero_downtime crash web_user_shared)
if [[ $# -gt 0 ]]; then
    order=("$@")
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/atomic-reliability.XXXXXX")"
chmod 0755 "${work}"
cleanup() {
    # A suite killed by its time limit may leave tmpfs mounts below the work dir.
    grep -F " ${work}/" /proc/mounts | awk '{print $2}' | sort -r | while read -r mnt; do umount -l "${mnt}" || true; done
    rm -rf "${work}"
}
trap cleanup EXIT

passed=0
failed=0
failed_suites=()
started_all=$(date +%s)
for suite in "${order[@]}"; do
    limit="${limits[${suite}]:-}"
    if [[ -z "${limit}" || ! -f "${here}/test_${suite}.py" ]]; then
        echo "reliability: unknown suite ${suite} (known: ${!limits[*]})" >&2
        failed=$((failed + 1))
        failed_suites+=("${suite}")
        continue
    fi
    echo "==> reliability suite ${suite} (limit ${limit}s)"
    results="${work}/${suite}.json"
    started=$(date +%s)
    RELIABILITY_SUITE="${suite}" RELIABILITY_RESULTS="${results}" \
        timeout --kill-after=20 "${limit}" \
        "${python}" -m pytest -q -s -rfE --basetemp="${work}/${suite}" "${here}/test_${suite}.py"
    rc=$?
    elapsed=$(( $(date +%s) - started ))
    if [[ -f "${results}" ]]; then
        read -r p f < <("${python}" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["passed"], d["failed"])' "${results}")
    else
        p=0
        f=1
    fi
    if [[ ${rc} -eq 124 || ${rc} -eq 137 ]]; then
        echo "${suite}: stopped by its time limit of ${limit}s"
        f=$((f + 1))
    elif [[ ${rc} -ne 0 && ${f} -eq 0 ]]; then
        # pytest failed without a failed test (collection error, no tests): count it.
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [[ ${f} -ne 0 ]]; then
        failed_suites+=("${suite}")
    fi
    echo "==> ${suite}: ${p} passed, ${f} failed in ${elapsed}s"
done

echo "reliability stage took $(( $(date +%s) - started_all ))s"
if [[ ${#failed_suites[@]} -ne 0 ]]; then
    echo "failed suites: ${failed_suites[*]}"
fi
echo "reliability: ${passed} passed, ${failed} failed"
[[ ${failed} -eq 0 ]]
