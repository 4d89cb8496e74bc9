#!/usr/bin/env bash
# make bench: the deploy benchmark (see bench/README.md).
#
#  1. bench/.venv: ansible (pinned; provides community.general for the deploy_helper case) and the same
#     ansible-core as the project. Every case runs with this venv's ansible-playbook and python.
#  2. The artifacts (bench/generate.py, deterministic) cached in bench/.cache/artifacts.
#  3. A tmpfs for every deploy root and Ansible's temp files (the VM disk is ~10x noisier), unmounted at exit.
#  4. bench/bench.py: runs the cases, prints the table, writes bench/results/latest.json (and raw/), and
#     rewrites the results section of bench/README.md.
#
# Environment:
#   BENCH_RUNS         timed runs per case after one warm-up (default 5)
#   BENCH_SCALE_RUNS   timed runs per host count in the scaling case (default BENCH_RUNS)
#   BENCH_HOSTS        host counts for the scaling case (default "1 8 32")
#   BENCH_CASES        subset of: shell_floor ansible_floor one_task deploy_helper deploy noop rollback scale disk
#   BENCH_TMPFS_SIZE   size of the tmpfs (default 6g; 32 roots of ~55 MB plus archives in flight)
#   BENCH_DEPLOY_PLAYBOOK    our deploy playbook (default atomic.deploy.deploy)
#   BENCH_ROLLBACK_PLAYBOOK  our rollback playbook (default <repo>/playbooks/rollback.yml)
#   BENCH_RESULTS      directory for latest.json and raw/ (default bench/results)
#   BENCH_README       0 to leave bench/README.md alone (quick or partial runs)
#   BENCH_STRICT       1 to exit 1 when a target is missed
#   BENCH_PYTHON       interpreter that creates bench/.venv (default python3)
#
# The network bench (make bench-net): `bash bench/run.sh net [NET.PY ARGS...]`, or BENCH_CASES=net. It runs
# bench/net.py instead of bench/bench.py (real SSH hosts over shaped links; needs root); its arguments come
# from the command line (make bench-net BENCH_ARGS="--hosts 1,4,16,64") and these variables:
#   BENCH_NET_HOSTS    host counts, up to 64 (default "1 4 16 64")
#   BENCH_NET_ROUNDS   rounds, every case once per round, interleaved (default 3)
#   BENCH_NET_CASES    subset of: rsync_floor ansible_floor ours_archive ours_mitogen ours_directory ours_noop
#                      (default: rsync_floor ours_archive ours_mitogen ours_noop)
#   BENCH_NET_LABEL    a name for the run (results go to bench/results/net-LABEL.json and .md)
#   BENCH_NET_DELTA_CACHE  cold (default: every run starts with an empty controller-side delta cache)
#                      or warm (every run starts with the cache its round's v1 deploy left)
#   BENCH_STRICT, BENCH_RESULTS, BENCH_DEPLOY_PLAYBOOK as above
# It writes only under bench/results/ (never a README).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
VENV="${BENCH_DIR}/.venv"
CACHE="${BENCH_DIR}/.cache"
PYTHON="${BENCH_PYTHON:-python3}"
# The bench venv's pins (ansible-core as the project's, ansible for community.general, mitogen).
REQUIREMENTS="${BENCH_DIR}/requirements.txt"

die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}

log() {
    printf 'bench: %s\n' "$*" >&2
}

ensure_venv() {
    local stamp="${VENV}/.bench-requirements"
    local wanted
    wanted="$(sha256sum <"${REQUIREMENTS}")"
    if [[ -x "${VENV}/bin/ansible-playbook" && -f "${stamp}" && "$(cat "${stamp}")" == "${wanted}" ]]; then
        return 0
    fi
    log "creating ${VENV} from ${REQUIREMENTS}"
    "${PYTHON}" -m venv "${VENV}" || die "cannot create ${VENV} with ${PYTHON} (on Debian: apt-get install python3-venv)"
    "${VENV}/bin/pip" install --quiet --disable-pip-version-check -r "${REQUIREMENTS}" \
        || die "pip install -r ${REQUIREMENTS} into ${VENV} failed"
    compgen -G "${VENV}/lib/python3*/site-packages/ansible_collections/community/general/plugins/modules/deploy_helper.py" \
        >/dev/null || die "${VENV} has no community.general (expected from the ansible package)"
    compgen -G "${VENV}/lib/python3*/site-packages/ansible_mitogen/plugins/strategy/mitogen_linear.py" \
        >/dev/null || die "${VENV} has no ansible_mitogen strategy plugins (expected from mitogen)"
    printf '%s' "${wanted}" >"${stamp}"
}

mode=local
if [[ "${1:-}" == net ]]; then
    mode=net
    shift
elif [[ "${BENCH_CASES:-}" == net ]]; then
    mode=net
elif [[ $# -gt 0 ]]; then
    die "unknown argument $1 (the only one is: net, followed by bench/net.py's arguments)"
fi

# More than one bench at a time would measure each other.
exec 9<"${BASH_SOURCE[0]}"
flock -n 9 || die "another bench/run.sh is running (lock on ${BASH_SOURCE[0]})"

ensure_venv

mkdir -p "${CACHE}"
log "generating the artifacts (cached in ${CACHE}/artifacts)"
"${VENV}/bin/python" "${BENCH_DIR}/generate.py" --out "${CACHE}/artifacts" >"${CACHE}/manifest.out" \
    || die "bench/generate.py failed"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/atomic-bench.XXXXXX")"
mounted=false
child=""
cleanup() {
    if [[ -n "${child}" ]] && kill -0 "${child}" 2>/dev/null; then
        kill -TERM "${child}" 2>/dev/null || true
        wait "${child}" 2>/dev/null || true
    fi
    if [[ "${mode}" == net ]]; then
        # net.py tears down itself; this also covers a net.py that was killed outright.
        python3 "${BENCH_DIR}/../tests/hosts/hostctl.py" down --name benchnet >/dev/null 2>&1 \
            || log "hostctl down --name benchnet failed"
    fi
    if [[ "${mounted}" == true ]]; then
        umount "${WORK}" 2>/dev/null || umount -l "${WORK}" || log "could not unmount ${WORK}"
    else
        rm -rf "${WORK}"
    fi
    rmdir "${WORK}" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if mount -t tmpfs -o "size=${BENCH_TMPFS_SIZE:-6g},mode=0755" tmpfs "${WORK}"; then
    mounted=true
elif grep -qs ' /dev/shm tmpfs ' /proc/mounts; then
    # Not allowed to mount (not root): /dev/shm is a tmpfs too.
    rmdir "${WORK}"
    WORK="$(mktemp -d /dev/shm/atomic-bench.XXXXXX)"
    log "cannot mount a tmpfs; using ${WORK}"
else
    die "cannot mount a tmpfs on ${WORK} and /dev/shm is not a tmpfs: the figures would measure the disk"
fi

if [[ "${mode}" == net ]]; then
    args=(
        --work "${WORK}"
        --artifacts "${CACHE}/artifacts"
        --venv "${VENV}"
        --rounds "${BENCH_NET_ROUNDS:-3}"
    )
    [[ -n "${BENCH_NET_HOSTS:-}" ]] && args+=(--hosts "${BENCH_NET_HOSTS}")
    [[ -n "${BENCH_NET_CASES:-}" ]] && args+=(--cases "${BENCH_NET_CASES}")
    [[ -n "${BENCH_NET_LABEL:-}" ]] && args+=(--label "${BENCH_NET_LABEL}")
    [[ -n "${BENCH_NET_DELTA_CACHE:-}" ]] && args+=(--delta-cache "${BENCH_NET_DELTA_CACHE}")
    [[ -n "${BENCH_DEPLOY_PLAYBOOK:-}" ]] && args+=(--deploy-playbook "${BENCH_DEPLOY_PLAYBOOK}")
    [[ -n "${BENCH_RESULTS:-}" ]] && args+=(--results "${BENCH_RESULTS}")
    [[ "${BENCH_STRICT:-0}" == 1 ]] && args+=(--strict)
    args+=("$@")
    # In the background so a signal reaches this script's trap at once, which passes it on; net.py
    # then removes its qdiscs and hosts.
    trap 'kill -TERM "${child}" 2>/dev/null; wait "${child}"; exit 130' INT TERM
    "${VENV}/bin/python" "${BENCH_DIR}/net.py" "${args[@]}" &
    child=$!
    rc=0
    wait "${child}" || rc=$?
    child=""
    exit "${rc}"
fi

args=(
    --work "${WORK}"
    --artifacts "${CACHE}/artifacts"
    --venv "${VENV}"
    --runs "${BENCH_RUNS:-5}"
    --hosts "${BENCH_HOSTS:-1 8 32}"
)
if [[ -n "${BENCH_SCALE_RUNS:-}" ]]; then
    args+=(--scale-runs "${BENCH_SCALE_RUNS}")
fi
if [[ -n "${BENCH_CASES:-}" ]]; then
    args+=(--cases "${BENCH_CASES}")
fi
if [[ -n "${BENCH_DEPLOY_PLAYBOOK:-}" ]]; then
    args+=(--deploy-playbook "${BENCH_DEPLOY_PLAYBOOK}")
fi
if [[ -n "${BENCH_ROLLBACK_PLAYBOOK:-}" ]]; then
    args+=(--rollback-playbook "${BENCH_ROLLBACK_PLAYBOOK}")
fi
if [[ -n "${BENCH_RESULTS:-}" ]]; then
    args+=(--results "${BENCH_RESULTS}")
fi
if [[ "${BENCH_README:-1}" == 0 ]]; then
    args+=(--no-readme)
fi
if [[ "${BENCH_STRICT:-0}" == 1 ]]; then
    args+=(--strict)
fi

"${VENV}/bin/python" "${BENCH_DIR}/bench.py" "${args[@]}"
