#!/usr/bin/env bash
# Idempotent setup used by every Makefile target. Works on a fresh Debian 12 machine that has only
# python3 and make; a second run with nothing to do takes well under a second.
#
# usage: scripts/bootstrap.sh [--demo]
#   (default)  test machine: Debian packages the tests use, .venv with requirements-test.txt, and the
#              local get-pip stand-in for ansible-test
#   --demo     demo only: .venv with requirements.txt (ansible-core), no test packages
#
# Environment:
#   ATOMIC_PYTHON   interpreter that creates .venv (default: python3 on PATH)
#   ATOMIC_VENV     virtual environment directory (default: <repo>/.venv)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
VENV="${ATOMIC_VENV:-${REPO_ROOT}/.venv}"
PYTHON="${ATOMIC_PYTHON:-python3}"

# Debian packages the test suite needs (tools the modules, role, molecule, reliability and bench tests
# drive); python3-venv lets "python3 -m venv" work on Debian; shellcheck runs ansible-test's shellcheck
# sanity test instead of letting it skip.
TEST_PACKAGES=(
    python3-venv git nginx wrk busybox openssh-server openssh-client sudo debootstrap iproute2
    sqlite3 procps psmisc util-linux shellcheck acl
)
DEMO_PACKAGES=(python3-venv)

mode="test"
case "${1:-}" in
    "") ;;
    --demo) mode="demo" ;;
    *)
        echo "bootstrap: unknown argument ${1}; usage: scripts/bootstrap.sh [--demo]" >&2
        exit 2
        ;;
esac

log() {
    printf 'bootstrap: %s\n' "$*" >&2
}

die() {
    printf 'bootstrap: error: %s\n' "$*" >&2
    exit 1
}

# Several make targets (or engineers) may bootstrap at once: serialise on this script itself.
exec 9<"${BASH_SOURCE[0]}"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

missing_packages() {
    local package status
    for package in "$@"; do
        status="$(dpkg-query -W -f='${db:Status-Abbrev}' "${package}" 2>/dev/null || true)"
        if [[ "${status}" != ii* ]]; then
            printf '%s\n' "${package}"
        fi
    done
}

# Package maintainer scripts would start nginx and sshd as system services; the tests start their
# own instances on their own ports, so keep the system ones down while installing.
POLICY_RC_D=/usr/sbin/policy-rc.d
created_policy_rc_d=false
remove_policy_rc_d() {
    if [[ "${created_policy_rc_d}" == true ]]; then
        rm -f "${POLICY_RC_D}"
    fi
}

install_packages() {
    local -a wanted=("$@") missing=()
    command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this setup supports Debian/Ubuntu only"
    mapfile -t missing < <(missing_packages "${wanted[@]}")
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    local -a sudo_cmd=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "missing Debian packages ${missing[*]} and not root (no sudo to install them)"
        sudo_cmd=(sudo -n)
    fi
    log "installing Debian packages: ${missing[*]}"
    if [[ ! -e "${POLICY_RC_D}" ]]; then
        printf '#!/bin/sh\n# temporary: written by atomic.deploy scripts/bootstrap.sh\nexit 101\n' |
            "${sudo_cmd[@]}" tee "${POLICY_RC_D}" >/dev/null
        "${sudo_cmd[@]}" chmod 0755 "${POLICY_RC_D}"
        created_policy_rc_d=true
        trap remove_policy_rc_d EXIT
    fi
    # apt output goes to a log that is shown only when apt fails.
    local apt_log
    apt_log="$(mktemp)"
    if ! {
        "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                "${missing[@]}"
    } </dev/null >"${apt_log}" 2>&1; then
        cat "${apt_log}" >&2
        rm -f "${apt_log}"
        die "apt-get could not install ${missing[*]} (log above)"
    fi
    rm -f "${apt_log}"
    remove_policy_rc_d
    created_policy_rc_d=false
    mapfile -t missing < <(missing_packages "${wanted[@]}")
    if ((${#missing[@]} != 0)); then
        die "Debian packages still missing after apt-get install: ${missing[*]}"
    fi
}

requirements_hash() {
    # Content of every requirements file this mode installs, plus the interpreter, so a change to
    # either rebuilds the environment.
    local file
    {
        "${VENV}/bin/python" -c 'import sys; print(sys.version)'
        for file in "$@"; do
            printf '== %s\n' "${file}"
            cat "${REPO_ROOT}/${file}"
        done
    } | sha256sum | cut -d' ' -f1
}

ensure_venv() {
    command -v "${PYTHON}" >/dev/null 2>&1 || die "python interpreter ${PYTHON} not found (set ATOMIC_PYTHON)"
    if [[ -x "${VENV}/bin/python" ]] && ! "${VENV}/bin/python" -c 'import pip' >/dev/null 2>&1; then
        log "virtual environment ${VENV} is broken; recreating it"
        rm -rf "${VENV}"
    fi
    if [[ ! -x "${VENV}/bin/python" ]]; then
        log "creating virtual environment ${VENV} with ${PYTHON}"
        "${PYTHON}" -m venv "${VENV}" || die "python3 -m venv ${VENV} failed (is python3-venv installed?)"
    fi
}

install_requirements() {
    local stamp="$1"
    shift
    local -a files=("$@") pip_args=()
    local want file
    want="$(requirements_hash "${files[@]}")"
    if [[ -f "${VENV}/${stamp}" && "$(cat "${VENV}/${stamp}")" == "${want}" ]]; then
        return 0
    fi
    for file in "${files[@]}"; do
        pip_args+=(-r "${REPO_ROOT}/${file}")
    done
    log "installing ${files[*]} into ${VENV}"
    "${VENV}/bin/python" -m pip install --disable-pip-version-check --quiet "${pip_args[@]}" </dev/null
    printf '%s\n' "${want}" >"${VENV}/${stamp}"
}

install_get_pip_standin() {
    # ansible-test downloads get-pip.py from a host this machine cannot reach, unless the file is
    # already in its cache. The cache file name carries the pip version this ansible-test pins.
    local source version cache
    source="$(
        "${VENV}/bin/python" -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py"))'
    )"
    [[ -f "${source}" ]] || die "ansible-test source ${source} not found"
    version="$(sed -n "s/^ *pip='\([0-9][0-9.]*\)',\$/\1/p" "${source}" | head -n 1)"
    [[ -n "${version}" ]] || die "cannot find the pip version ansible-test pins in ${source}"
    cache="${HOME}/.ansible/test/cache/get_pip_${version//./_}.py"
    if ! cmp -s "${REPO_ROOT}/scripts/get_pip_standin.py" "${cache}"; then
        mkdir -p "$(dirname "${cache}")"
        cp "${REPO_ROOT}/scripts/get_pip_standin.py" "${cache}"
        log "installed get-pip stand-in ${cache}"
    fi
}

if [[ "${mode}" == demo ]]; then
    install_packages "${DEMO_PACKAGES[@]}"
    ensure_venv
    install_requirements .stamp-demo requirements.txt
else
    install_packages "${TEST_PACKAGES[@]}"
    ensure_venv
    install_requirements .stamp-test requirements.txt requirements-test.txt
    # requirements-test.txt includes requirements.txt, so the demo set is current too.
    requirements_hash requirements.txt >"${VENV}/.stamp-demo"
    install_get_pip_standin
fi
