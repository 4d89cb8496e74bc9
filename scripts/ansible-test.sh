#!/usr/bin/env bash
# Runs ansible-test against a copy of the checkout laid out as ansible-test requires:
#   build/ansible-test/ansible_collections/atomic/deploy/   (every file git lists: tracked + untracked
#                                                             but not ignored; refreshed on each run)
#   build/ansible-test/ansible_collections/atomic/deploy/tests/output -> <repo>/tests/output
#
# usage: scripts/ansible-test.sh sanity|units|integration [extra ansible-test arguments...]
#
#   sanity       ansible-test sanity --venv --python 3.11 (every test; ignore files kept empty)
#   units        ansible-test units --local --python 3.11 (tests/unit, plain pytest style)
#   integration  ansible-test integration --local --python 3.11 (tests/integration/targets)
#
# Why a copy and not the symlink tree of scripts/collection-tree.sh (which ansible-playbook,
# ansible-doc and pytest use): ansible-test and pytest take their paths from getcwd()/realpath, which
# resolve the symlink back to the checkout, outside any ansible_collections/NS/NAME directory.
# ansible-test then refuses to run ("current working directory must be within the source tree") or
# its pytest plugin cannot place the test files ("not found in collection path").
#
# Environment:
#   ATOMIC_TEST_PYTHON   python version for ansible-test (default 3.11)
#   ATOMIC_VENV          virtual environment with the tools (default <repo>/.venv)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
VENV="${ATOMIC_VENV:-${REPO_ROOT}/.venv}"
PYTHON_VERSION="${ATOMIC_TEST_PYTHON:-3.11}"

die() {
    printf 'ansible-test.sh: error: %s\n' "$*" >&2
    exit 1
}

(($# >= 1)) || die "missing command; usage: scripts/ansible-test.sh sanity|units|integration [args...]"
command="$1"
shift

[[ -x "${VENV}/bin/ansible-test" ]] || die "${VENV}/bin/ansible-test not found; run scripts/bootstrap.sh"
export PATH="${VENV}/bin:${PATH}"

TEST_TREE="${REPO_ROOT}/build/ansible-test/ansible_collections/atomic/deploy"

list_files() {
    # NUL-separated paths relative to the repo root, of the files that make up the collection.
    if git -C "${REPO_ROOT}" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        local path
        while IFS= read -r -d '' path; do
            # a tracked file deleted in the working tree is still in the index: leave it out
            if [[ -e "${REPO_ROOT}/${path}" || -L "${REPO_ROOT}/${path}" ]]; then
                printf '%s\0' "${path}"
            fi
        done < <(git -C "${REPO_ROOT}" ls-files -z --cached --others --exclude-standard)
    else
        (cd "${REPO_ROOT}" && find . \( -name .git -o -name .venv -o -name build -o -name demo-root \
            -o -name __pycache__ -o -name .pytest_cache -o -name .ruff_cache -o -name .cache \
            -o -name .ansible -o -path ./tests/output \) -prune -o \( -type f -o -type l \) -printf '%P\0')
    fi
}

sync_test_tree() {
    mkdir -p "${TEST_TREE}" "${REPO_ROOT}/tests/output"
    # Start from an empty tree so files removed from the checkout disappear here too.
    find "${TEST_TREE}" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    list_files | tar -C "${REPO_ROOT}" --null --no-recursion -T - -cf - | tar -C "${TEST_TREE}" -xf -
    mkdir -p "${TEST_TREE}/tests"
    ln -sfn "${REPO_ROOT}/tests/output" "${TEST_TREE}/tests/output"
}

sync_test_tree
cd "${TEST_TREE}"
# Without this ansible-test walks up from the tree, finds the checkout's .git and asks git for the
# files of build/..., which .gitignore hides: every test would be skipped. The copy holds only the
# files git lists, so the unversioned walk of the copy sees exactly the collection.
export ANSIBLE_TEST_CONTENT_ROOT="${TEST_TREE}"

common=(--python "${PYTHON_VERSION}" --color no)
if [[ "${CI:-}" == true ]]; then
    # CI logs are read after the fact: say which file and command failed.
    common+=(-v)
fi

case "${command}" in
    sanity)
        cache="${HOME}/.ansible/test/cache"
        if ! compgen -G "${cache}/get_pip_*.py" >/dev/null; then
            die "no get-pip stand-in in ${cache}; run scripts/bootstrap.sh (ansible-test cannot download it here)"
        fi
        command -v shellcheck >/dev/null 2>&1 || die "shellcheck not found; run scripts/bootstrap.sh"
        exec ansible-test sanity --venv "${common[@]}" "$@"
        ;;
    units)
        [[ -d tests/unit ]] || die "no unit tests: ${REPO_ROOT}/tests/unit does not exist"
        exec ansible-test units --local "${common[@]}" "$@"
        ;;
    integration)
        [[ -d tests/integration/targets ]] || die "no integration targets: ${REPO_ROOT}/tests/integration/targets does not exist"
        exec ansible-test integration --local "${common[@]}" "$@"
        ;;
    *)
        die "unknown command ${command}; usage: scripts/ansible-test.sh sanity|units|integration [args...]"
        ;;
esac
