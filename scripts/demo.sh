#!/usr/bin/env bash
# make demo: deploy the example app (examples/app) onto this machine under ./demo-root with the
# atomic.deploy.release role: v1, then v2 (which adds a database migration), status, rollback,
# status. Needs no SSH and no prior setup: the local connection, a venv made by
# scripts/bootstrap.sh --demo, and the collection seen through build/collections.
#
# usage: scripts/demo.sh            (DEMO_KEEP_SERVER=1 leaves the demo web server running)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
DEMO_ROOT="${REPO_ROOT}/demo-root"
VENV="${ATOMIC_VENV:-${REPO_ROOT}/.venv}"
INVENTORY="${REPO_ROOT}/examples/demo/inventory.yml"
VARS_FILE="${REPO_ROOT}/examples/demo/deploy-vars.yml"

log() {
    printf '\n\033[1m==> %s\033[0m\n' "$*"
}

die() {
    printf 'demo: error: %s\n' "$*" >&2
    exit 1
}

started_all="$(date +%s.%N)"

log "setting up: venv with ansible-core (scripts/bootstrap.sh --demo), collection tree"
bash "${REPO_ROOT}/scripts/bootstrap.sh" --demo
# shellcheck source=collection-tree.sh disable=SC1091
source "${REPO_ROOT}/scripts/collection-tree.sh"
PYTHON="${VENV}/bin/python"
ANSIBLE_PLAYBOOK="${VENV}/bin/ansible-playbook"
[[ -x "${ANSIBLE_PLAYBOOK}" ]] || die "${ANSIBLE_PLAYBOOK} is missing after bootstrap"

# The demo's own settings (readable output, skipped tasks hidden, AWX-style stats shown), and no
# ansible.cfg from the working directory or the home directory.
export ANSIBLE_CONFIG="${REPO_ROOT}/examples/demo/ansible.cfg"

# A fresh playground every time (it is gitignored). The path is fixed: never a variable's value.
case "${DEMO_ROOT}" in
    */demo-root) rm -rf -- "${DEMO_ROOT}" ;;
    *) die "unexpected demo root ${DEMO_ROOT}" ;;
esac
# What an operator would put in place once: the app's settings, shared by every release.
mkdir -p "${DEMO_ROOT}/shared"
printf 'APP_ENV=demo\nAPP_NAME=atomic-deploy-demo\n' >"${DEMO_ROOT}/shared/.env"

# A web server for the post-activation URL check, serving current/public: it follows the current
# link on every request, so it serves whatever release is live.
port="$("${PYTHON}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${PYTHON}" -m http.server "${port}" --bind 127.0.0.1 --directory "${DEMO_ROOT}/current/public" \
    >"${DEMO_ROOT}/http.log" 2>&1 &
server_pid=$!
stop_server() {
    if [[ "${DEMO_KEEP_SERVER:-0}" != 1 ]]; then
        kill "${server_pid}" 2>/dev/null || true
        wait "${server_pid}" 2>/dev/null || true
    fi
}
trap stop_server EXIT

declare -a timings=()
run_step() {
    local label="$1"
    shift
    local started elapsed
    log "${label}"
    started="$(date +%s.%N)"
    "$@"
    elapsed="$("${PYTHON}" -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "${started}" "$(date +%s.%N)")"
    timings+=("$(printf '%-44s %6s s' "${label}" "${elapsed}")")
}

playbook() {
    local name="$1"
    shift
    "${ANSIBLE_PLAYBOOK}" -i "${INVENTORY}" "atomic.deploy.${name}" -e "release_root=${DEMO_ROOT}" "$@"
}

deploy() {
    playbook deploy -e "@${VARS_FILE}" -e "release_directory=${REPO_ROOT}/examples/app/$1" -e "demo_port=${port}"
}

show_live() {
    "${PYTHON}" - "${port}" "${DEMO_ROOT}" <<'PYEOF'
import pathlib
import re
import sqlite3
import sys
import urllib.request

port, root = sys.argv[1], pathlib.Path(sys.argv[2])
page = urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5).read().decode()
version = re.search(r'<p id="version">([^<]*)</p>', page)
print(f"  http://127.0.0.1:{port}/ serves: {version.group(1) if version else 'no version line'}")
print(f"  current -> {(root / 'current').readlink()}")
database = root / "shared" / "storage" / "app.db"
with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
    applied = [row[0] for row in connection.execute("SELECT name FROM schema_migrations ORDER BY name")]
    notes = connection.execute("SELECT count(*) FROM notes").fetchone()[0]
print(f"  {database.relative_to(root)}: migrations applied {', '.join(applied)}; {notes} notes")
PYEOF
}

run_step "deploy v1 (creates the database)" deploy v1
show_live
# Release ids are UTC timestamps with one-second resolution: never reuse v1's.
sleep 1
run_step "deploy v2 (adds migration 002)" deploy v2
show_live
run_step "status" playbook status
run_step "roll back to v1" playbook rollback
show_live
printf '  (migrations only go forward: the database keeps 002, which v1 does not use)\n'
run_step "status after the rollback" playbook status

total="$("${PYTHON}" -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "${started_all}" "$(date +%s.%N)")"
log "done in ${total} s; the deploy root is ${DEMO_ROOT}"
printf '  %s\n' "${timings[@]}"
if [[ "${DEMO_KEEP_SERVER:-0}" == 1 ]]; then
    printf '  the web server still runs: http://127.0.0.1:%s/ (pid %s)\n' "${port}" "${server_pid}"
fi
