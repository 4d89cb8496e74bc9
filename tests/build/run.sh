#!/usr/bin/env bash
# Builds the collection tarball the way a release would, installs it offline into a scratch
# collections path and checks that the installed collection works there.
#
# The build runs on a scratch copy of the checkout (the files git lists) into which a decoy is
# planted for every path galaxy.yml's build_ignore must keep out, so each exclusion check can fail
# even on a clean clone where those paths do not exist yet.
#
# usage: bash tests/build/run.sh        (the venv from scripts/bootstrap.sh must exist)
# Ends with "build: N passed, N failed"; exits non-zero when any check fails.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
VENV="${ATOMIC_VENV:-${REPO_ROOT}/.venv}"
export PATH="${VENV}/bin:${PATH}"
# Only the scratch collections path may be searched: never the checkout or ~/.ansible.
unset ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS ANSIBLE_CONFIG
export ANSIBLE_NOCOLOR=1

for tool in ansible-galaxy ansible-doc git tar python3; do
    command -v "${tool}" >/dev/null 2>&1 || {
        echo "build: required tool ${tool} not found (run scripts/bootstrap.sh)" >&2
        exit 1
    }
done

passed=0
failed=0
pass() {
    passed=$((passed + 1))
    printf 'ok      %s\n' "$1"
}
fail() {
    failed=$((failed + 1))
    printf 'FAILED  %s\n' "$1"
    if [[ -n "${2:-}" ]]; then
        printf '%s\n' "$2" | sed 's/^/        /'
    fi
}
finish() {
    echo "build: ${passed} passed, ${failed} failed"
    if ((failed > 0)); then
        exit 1
    fi
    exit 0
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/atomic-deploy-build-test.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT

SRC="${WORK}/src"
DIST="${WORK}/dist"
INSTALL="${WORK}/collections"
mkdir -p "${SRC}" "${DIST}" "${INSTALL}"

# --- scratch copy of the checkout --------------------------------------------------------------
list_files() {
    local path
    while IFS= read -r -d '' path; do
        if [[ -e "${REPO_ROOT}/${path}" || -L "${REPO_ROOT}/${path}" ]]; then
            printf '%s\0' "${path}"
        fi
    done < <(git -C "${REPO_ROOT}" ls-files -z --cached --others --exclude-standard)
}
list_files | tar -C "${REPO_ROOT}" --null --no-recursion -T - -cf - | tar -C "${SRC}" -xf -

namespace="$(sed -n 's/^namespace: *//p' "${SRC}/galaxy.yml")"
name="$(sed -n 's/^name: *//p' "${SRC}/galaxy.yml")"
version="$(sed -n 's/^version: *//p' "${SRC}/galaxy.yml")"
if [[ "${namespace}.${name}" != "atomic.deploy" || -z "${version}" ]]; then
    fail "galaxy.yml names atomic.deploy with a version" "found ${namespace}.${name} ${version}"
    finish
fi

# Decoys: path in the source tree -> must not reach the tarball.
decoys=(
    "tests/output/junit/decoy.xml"
    ".venv/bin/decoy"
    "venv/bin/decoy"
    "build/decoy.txt"
    "build/collections/ansible_collections/atomic/deploy"
    "demo-root/releases/decoy/index.html"
    ".git/decoy"
    ".cache/decoy"
    ".ansible/decoy"
    "plugins/modules/__pycache__/decoy.cpython-311.pyc"
    "plugins/module_utils/decoy.pyc"
    ".pytest_cache/decoy"
    "tests/unit/.pytest_cache/decoy"
    ".ruff_cache/decoy"
    ".tox/decoy"
    "bench/results/decoy.json"
    "bench/results/raw/decoy.json"
    "bench/README.md"
    "bench/net.py"
    "atomic-deploy-0.0.1.tar.gz"
    "release-decoy.tar.gz"
    "molecule/decoy/.molecule/state.yml"
    "molecule/default/converge.yml"
    "changelogs/.plugin-cache.yaml"
)
for decoy in "${decoys[@]}"; do
    if [[ "${decoy}" == "build/collections/ansible_collections/atomic/deploy" ]]; then
        # the symlink back to the checkout that scripts/collection-tree.sh makes
        mkdir -p "${SRC}/$(dirname "${decoy}")"
        ln -sfn ../../../.. "${SRC}/${decoy}"
    else
        mkdir -p "${SRC}/$(dirname "${decoy}")"
        echo "decoy: must not be packaged" >"${SRC}/${decoy}"
    fi
done
# Content that must be packaged even though its neighbours are not.
keep=(
    "meta/runtime.yml"
    "LICENSE"
    "changelogs/changelog.yaml"
    "changelogs/config.yaml"
)
readme="$(sed -n 's/^readme: *//p' "${SRC}/galaxy.yml")"
if [[ -n "${readme}" ]]; then
    keep+=("${readme}")
fi
while IFS= read -r -d '' path; do
    keep+=("${path}")
done < <(cd "${SRC}" && find plugins roles playbooks -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 2>/dev/null)

# --- build -----------------------------------------------------------------------------------------
tarball="${DIST}/${namespace}-${name}-${version}.tar.gz"
if output="$(cd "${SRC}" && ansible-galaxy collection build --output-path "${DIST}" 2>&1)" && [[ -f "${tarball}" ]]; then
    pass "ansible-galaxy collection build writes $(basename "${tarball}")"
else
    fail "ansible-galaxy collection build writes $(basename "${tarball}")" "${output}"
    finish
fi

members="$(tar -tzf "${tarball}" | sed 's#^\./##; s#/$##')"
for decoy in "${decoys[@]}"; do
    # the path itself or anything below it
    found="$(awk -v path="${decoy}" '$0 == path || index($0, path "/") == 1' <<<"${members}")"
    if [[ -n "${found}" ]]; then
        fail "tarball excludes ${decoy}" "${found}"
    else
        pass "tarball excludes ${decoy}"
    fi
done
leaked="$(grep -E '(^|/)(__pycache__|\.pytest_cache|\.ruff_cache|\.git|\.venv|\.cache)(/|$)|\.pyc$|^(build|demo-root|tests/output)(/|$)|^[^/]*\.tar\.gz$' <<<"${members}" || true)"
if [[ -z "${leaked}" ]]; then
    pass "tarball holds no caches, environments, build output or nested tarballs"
else
    fail "tarball holds no caches, environments, build output or nested tarballs" "${leaked}"
fi
for path in MANIFEST.json FILES.json "${keep[@]}"; do
    if grep -qxF -- "${path}" <<<"${members}"; then
        pass "tarball contains ${path}"
    else
        fail "tarball contains ${path}"
    fi
done

# --- install offline -------------------------------------------------------------------------------
# The scratch path is also the only configured one, so a copy of atomic.deploy installed elsewhere
# (~/.ansible/collections) can neither satisfy the install ("already installed") nor answer below.
export ANSIBLE_COLLECTIONS_PATH="${INSTALL}"
if output="$(cd "${WORK}" && ansible-galaxy collection install --offline -p "${INSTALL}" "${tarball}" 2>&1)" &&
    [[ -f "${INSTALL}/ansible_collections/${namespace}/${name}/MANIFEST.json" ]]; then
    pass "ansible-galaxy collection install --offline -p <tmp> <tarball>"
else
    fail "ansible-galaxy collection install --offline -p <tmp> <tarball>" "${output}"
    finish
fi
installed_version="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["collection_info"]["version"])' \
    "${INSTALL}/ansible_collections/${namespace}/${name}/MANIFEST.json")"
if [[ "${installed_version}" == "${version}" ]]; then
    pass "installed MANIFEST.json has version ${version}"
else
    fail "installed MANIFEST.json has version ${version}" "found ${installed_version}"
fi

if output="$(cd "${WORK}" && ansible-galaxy collection list "${namespace}.${name}" 2>&1)" &&
    grep -qE "^${namespace}\.${name} +${version//./\\.}( |$)" <<<"${output}"; then
    pass "ansible-galaxy collection list finds ${namespace}.${name} ${version} in <tmp>"
else
    fail "ansible-galaxy collection list finds ${namespace}.${name} ${version} in <tmp>" "${output}"
fi

# --- ansible-doc from the installed copy -------------------------------------------------------------
mapfile -t modules < <(cd "${SRC}/plugins/modules" 2>/dev/null && find . -maxdepth 1 -name '*.py' ! -name '__init__.py' -printf '%f\n' | sed 's/\.py$//' | sort)
if ((${#modules[@]} == 0)); then
    fail "the checkout has modules in plugins/modules to check with ansible-doc"
    finish
fi
if listing="$(cd "${WORK}" && ansible-doc -t module -l "${namespace}.${name}" 2>&1)"; then
    for module in "${modules[@]}"; do
        if grep -qE "^${namespace}\.${name}\.${module}( |$)" <<<"${listing}"; then
            pass "ansible-doc -l lists ${namespace}.${name}.${module} from <tmp>"
        else
            fail "ansible-doc -l lists ${namespace}.${name}.${module} from <tmp>" "${listing}"
        fi
    done
else
    fail "ansible-doc -t module -l ${namespace}.${name}" "${listing}"
fi
for module in "${modules[@]}"; do
    fqcn="${namespace}.${name}.${module}"
    if output="$(cd "${WORK}" && ansible-doc -t module --json "${fqcn}" 2>&1)" &&
        python3 -c 'import json, sys; doc = json.load(sys.stdin)[sys.argv[1]]["doc"]; assert doc["module"] == sys.argv[2]' \
            "${fqcn}" "${module}" <<<"${output}" 2>/dev/null; then
        pass "ansible-doc renders ${fqcn} from <tmp>"
    else
        fail "ansible-doc renders ${fqcn} from <tmp>" "$(head -c 2000 <<<"${output}")"
    fi
done

# --- the install commands README.md documents ------------------------------------------------------
# A project directory as a user has it: the tarball installed with -p ./collections, and ansible.cfg's
# collections_path naming that directory, so neither ansible-galaxy nor ansible-doc warns; then the
# same from a git checkout (git+file://). Without the setting, ansible-galaxy warns (the control case).
unset ANSIBLE_COLLECTIONS_PATH
PROJECT="${WORK}/project"
mkdir -p "${PROJECT}"
cp "${tarball}" "${PROJECT}/"
if output="$(cd "${PROJECT}" && ansible-galaxy collection install "$(basename "${tarball}")" -p ./collections 2>&1)" &&
    grep -q 'not part of the configured Ansible collections paths' <<<"${output}"; then
    pass "without collections_path, ansible-galaxy warns that ./collections is not configured"
else
    fail "without collections_path, ansible-galaxy warns that ./collections is not configured" "${output}"
fi
rm -rf "${PROJECT}/collections"
printf '[defaults]\ncollections_path = ./collections\n' >"${PROJECT}/ansible.cfg"
install_check() {
    local label="$1" source="$2" output listing
    rm -rf "${PROJECT}/collections"
    if output="$(cd "${PROJECT}" && ansible-galaxy collection install "${source}" -p ./collections 2>&1)" &&
        [[ -f "${PROJECT}/collections/ansible_collections/${namespace}/${name}/MANIFEST.json" ]] &&
        ! grep -q 'WARNING' <<<"${output}"; then
        pass "README install from ${label}: ansible-galaxy collection install ... -p ./collections, no warning"
    else
        fail "README install from ${label}: ansible-galaxy collection install ... -p ./collections, no warning" "${output}"
        return
    fi
    if listing="$(cd "${PROJECT}" && ansible-doc -t module -l "${namespace}.${name}" 2>&1)" &&
        grep -qE "^${namespace}\.${name}\.release( |$)" <<<"${listing}" && ! grep -q 'WARNING' <<<"${listing}"; then
        pass "README install from ${label}: ansible-doc -l ${namespace}.${name} finds the modules, no warning"
    else
        fail "README install from ${label}: ansible-doc -l ${namespace}.${name} finds the modules, no warning" "${listing}"
    fi
}
install_check tarball "$(basename "${tarball}")"
GITSRC="${WORK}/checkout"
mkdir -p "${GITSRC}"
list_files | tar -C "${REPO_ROOT}" --null --no-recursion -T - -cf - | tar -C "${GITSRC}" -xf -
if output="$(cd "${GITSRC}" && git init -q -b main . && git add -A &&
    git -c user.name=build -c user.email=build@example.invalid commit -q -m checkout 2>&1)"; then
    install_check "a git checkout" "git+file://${GITSRC},main"
else
    fail "a git repository of the checkout for git+file://" "${output}"
fi

finish
