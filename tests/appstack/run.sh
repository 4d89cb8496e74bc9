#!/usr/bin/env bash
# The appstack suite (make appstack): the configurations of docs/app-servers.md on real servers on
# 127.0.0.1 (nginx + php-fpm with OPcache, gunicorn + Flask) under load, through the shipped playbooks.
#
# Sets itself up: the Debian packages nginx, php8.2-fpm, php8.2-opcache (apt-get, when missing) and a
# suite venv build/appstack/venv with gunicorn and flask (tests/appstack/requirements.txt). Bounded by
# APPSTACK_TIME_LIMIT seconds (default 420). Needs root (php-fpm and nginx workers drop to www-data).
# Prints the figures table and "appstack: N passed, N failed".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "${here}/../.." && pwd -P)"
cd "${repo}"

python="${repo}/.venv/bin/python"
if [[ ! -x "${python}" ]]; then
    echo "appstack: ${python} does not exist; run make setup" >&2
    echo "appstack: 0 passed, 1 failed"
    exit 1
fi

missing=()
[[ -x /usr/sbin/nginx ]] || missing+=(nginx)
[[ -x /usr/sbin/php-fpm8.2 ]] || missing+=(php8.2-fpm)
[[ -e /etc/php/8.2/mods-available/opcache.ini ]] || missing+=(php8.2-opcache)
if ((${#missing[@]} > 0)); then
    echo "appstack: installing ${missing[*]}"
    sudo_cmd=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo_cmd=(sudo)
    fi
    # policy-rc.d: the packages must not start their system services; the suite runs its own.
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

venv="${repo}/build/appstack/venv"
requirements="${here}/requirements.txt"
stamp="${venv}/.requirements"
if [[ ! -x "${venv}/bin/gunicorn" ]] || ! cmp -s "${requirements}" "${stamp}"; then
    rm -rf "${venv}"
    "${python}" -m venv "${venv}"
    "${venv}/bin/python" -m pip install --disable-pip-version-check --quiet -r "${requirements}" </dev/null
    cp "${requirements}" "${stamp}"
fi

# shellcheck source=/dev/null
source "${repo}/scripts/collection-tree.sh"
export PATH="${repo}/.venv/bin:${PATH}" APPSTACK_VENV="${venv}" ANSIBLE_NOCOLOR=1 PY_COLORS=0

work="$(mktemp -d "${TMPDIR:-/tmp}/atomic-appstack.XXXXXX")"
chmod 0755 "${work}"
trap 'rm -rf "${work}"' EXIT

limit="${APPSTACK_TIME_LIMIT:-420}"
rc=0
timeout --kill-after=20 "${limit}" bash "${repo}/tests/run-suite.sh" appstack "${here}" --basetemp="${work}/pytest" "$@" || rc=$?
if ((rc == 124 || rc == 137)); then
    echo "appstack: stopped by its time limit of ${limit}s"
    echo "appstack: 0 passed, 1 failed"
fi
exit "${rc}"
