#!/usr/bin/env bash
# Runs ansible-test against a copy of the checkout laid out as ansible-test requires:
#   build/ansible-test/ansible_collections/atomic/deploy/   (every file git lists: tracked + untracked
#                                                             but not ignored; refreshed on each run)
#   build/ansible-test/ansible_collections/atomic/deploy/tests/output -> <repo>/tests/output
#
# usage: scripts/ansible-test.sh sanity|units|integration [extra ansible-test arguments...]
#
#   sanity       ansible-test sanity --venv --python 3.11 (every test; no ignore files)
#   units        ansible-test units --local --python 3.11 (tests/unit, plain pytest style)
#   integration  ansible-test integration --local --allow-destructive --python 3.11
#                (tests/integration/targets)
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
#   ATOMIC_TEST_TREE     the directory that holds the copy's ansible_collections/ (default
#                        <repo>/build/ansible-test); the matrix gives each core its own, so two cores
#                        can run at once
#   ATOMIC_TEST_OUTPUT   what the copy's tests/output links to (default <repo>/tests/output)
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

TEST_BASE="${ATOMIC_TEST_TREE:-${REPO_ROOT}/build/ansible-test}"
TEST_TREE="${TEST_BASE}/ansible_collections/atomic/deploy"
TEST_OUTPUT="${ATOMIC_TEST_OUTPUT:-${REPO_ROOT}/tests/output}"

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
    mkdir -p "${TEST_TREE}" "${TEST_OUTPUT}"
    # Start from an empty tree so files removed from the checkout disappear here too.
    find "${TEST_TREE}" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    list_files | tar -C "${REPO_ROOT}" --null --no-recursion -T - -cf - | tar -C "${TEST_TREE}" -xf -
    mkdir -p "${TEST_TREE}/tests"
    ln -sfn "${TEST_OUTPUT}" "${TEST_TREE}/tests/output"
}

summarize_sanity() {
    # ansible-test only warns when it skips a sanity test (a missing tool, interpreter or venv
    # support): turn such a skip into a failure. "No tests applicable" (no files of that kind, e.g.
    # pslint without PowerShell) is not a skip of anything and is listed as such.
    python3 - tests/output/junit <<'PYTHON'
import glob
import os
import sys
import xml.etree.ElementTree as ET

junit_dir = sys.argv[1]
passed, failed, skipped, not_applicable = [], [], [], []
for path in sorted(glob.glob(os.path.join(junit_dir, "ansible-test-sanity-*.xml"))):
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name")
        skip = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif skip is None:
            passed.append(name)
        elif (skip.text or "").strip() == "No tests applicable.":
            not_applicable.append(name)
        else:
            skipped.append(f"{name} ({(skip.text or '').strip()})")
if not (passed or failed or skipped or not_applicable):
    print(f"sanity: no junit results in {junit_dir}: ansible-test did not run any sanity test", file=sys.stderr)
    sys.exit(1)
if not_applicable:
    print("sanity: not applicable (no files of their kind): " + ", ".join(not_applicable))
for item in skipped:
    print(f"sanity: skipped, which counts as a failure here: {item}", file=sys.stderr)
print(f"sanity: {len(passed)} passed, {len(failed) + len(skipped)} failed")
sys.exit(1 if failed or skipped else 0)
PYTHON
}

# Engineers share one working tree: a second run would wipe the copy under the first one's feet.
mkdir -p "${TEST_BASE}"
exec 8>"${TEST_BASE}.lock"
flock 8
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
        rm -f tests/output/junit/ansible-test-sanity-*.xml
        status=0
        ansible-test sanity --venv "${common[@]}" --junit "$@" || status=$?
        summarize_sanity || status=1
        exit "${status}"
        ;;
    units)
        [[ -d tests/unit ]] || die "no unit tests: ${REPO_ROOT}/tests/unit does not exist"
        exec ansible-test units --local "${common[@]}" "$@"
        ;;
    integration)
        [[ -d tests/integration/targets ]] || die "no integration targets: ${REPO_ROOT}/tests/integration/targets does not exist"
        # Targets marked "destructive" run too: these machines are disposable and tests run as root,
        # and ansible-test would otherwise leave them out with no more than a warning.
        exec ansible-test integration --local --allow-destructive "${common[@]}" "$@"
        ;;
    *)
        die "unknown command ${command}; usage: scripts/ansible-test.sh sanity|units|integration [args...]"
        ;;
esac
