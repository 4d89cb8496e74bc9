#!/usr/bin/env bash
# make lint: import the built collection tarball with galaxy-importer, as Galaxy does on an upload
# (MANIFEST/FILES, ansible-doc of every plugin, the changelog, ansible-lint --profile production
# offline, the sanity ignore files), and fail on any warning or error it logs.
#
# usage: scripts/galaxy-import.sh
# Builds the tarball into a temporary directory (build/dist is left alone) and runs the importer there
# with scripts/galaxy-importer.cfg. Needs galaxy-importer and ansible-galaxy on PATH (.venv).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
work="$(mktemp -d "${TMPDIR:-/tmp}/galaxy-import.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

(cd "${REPO_ROOT}" && ansible-galaxy collection build --force --output-path "${work}/dist" >/dev/null)
tarball="$(find "${work}/dist" -name '*.tar.gz' -print -quit)"
[[ -n "${tarball}" ]] || { echo "galaxy-import.sh: error: ansible-galaxy built no tarball in ${work}/dist" >&2; exit 1; }

mkdir -p "${work}/run" "${work}/tmp"
# The importer writes importer_result.json into its working directory and lints with its own environment.
if ! (cd "${work}/run" && env GALAXY_IMPORTER_CONFIG="${REPO_ROOT}/scripts/galaxy-importer.cfg" \
    GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP="${work}/tmp" GALAXY_IMPORTER_TMP_ROOT_DIR="${work}/tmp" \
    python -m galaxy_importer.main "${tarball}" >"${work}/import.log" 2>&1); then
    cat "${work}/import.log"
    echo "galaxy-import.sh: error: galaxy-importer failed on $(basename "${tarball}")" >&2
    exit 1
fi
if grep -E '^(WARNING|ERROR|CRITICAL)' "${work}/import.log" >"${work}/findings.log"; then
    cat "${work}/findings.log"
    echo "galaxy-import.sh: error: galaxy-importer reported $(wc -l <"${work}/findings.log") warning(s) or error(s) on $(basename "${tarball}")" >&2
    exit 1
fi
echo "galaxy-import.sh: $(basename "${tarball}") imports with no warning ($(grep -c '^Loading ' "${work}/import.log") plugins, roles and playbooks loaded)"
