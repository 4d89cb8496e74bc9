#!/usr/bin/env bash
# PLACEHOLDER written by the tooling task: the demo engineer replaces this file with the real demo.
# For now it only shows that the collection resolves from the checkout through the collection tree.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
# shellcheck source=scripts/collection-tree.sh
source "${REPO_ROOT}/scripts/collection-tree.sh"
export PATH="${REPO_ROOT}/.venv/bin:${PATH}"
PAGER='cat' ansible-doc atomic.deploy.atomic_symlink
