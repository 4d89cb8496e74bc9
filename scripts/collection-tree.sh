#!/usr/bin/env bash
# Makes the checkout visible as the collection atomic.deploy without copying it:
#   build/collections/ansible_collections/atomic/deploy -> ../../../..  (the repo root)
# and exports the variables that make ansible-playbook, ansible-doc and ansible-galaxy use it.
#
# Source it (other scripts and the demo do):   source scripts/collection-tree.sh
# or run it to print the exports:              eval "$(scripts/collection-tree.sh)"
#
# Exports:
#   ATOMIC_REPO_ROOT           the checkout
#   ATOMIC_COLLECTIONS_ROOT    build/collections (the directory that holds ansible_collections/)
#   ATOMIC_COLLECTION_DIR      build/collections/ansible_collections/atomic/deploy (symlink to the checkout)
#   ANSIBLE_COLLECTIONS_PATH   ATOMIC_COLLECTIONS_ROOT first, then whatever was set before
#
# ansible-test cannot use this tree (it resolves the symlink back to the checkout): scripts/ansible-test.sh
# runs it on a copy instead.

__atomic_tree_main() {
    local repo_root
    repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
    local collections_root="${repo_root}/build/collections"
    local namespace_dir="${collections_root}/ansible_collections/atomic"
    local collection_dir="${namespace_dir}/deploy"
    local link_text="../../../.."

    mkdir -p "${namespace_dir}"
    if [[ -L "${collection_dir}" ]]; then
        if [[ "$(readlink "${collection_dir}")" != "${link_text}" ]]; then
            ln -sfn "${link_text}" "${collection_dir}"
        fi
    elif [[ -e "${collection_dir}" ]]; then
        echo "collection-tree: ${collection_dir} exists and is not a symlink; remove it (make clean)" >&2
        return 1
    else
        ln -s "${link_text}" "${collection_dir}"
    fi
    if [[ ! -f "${collection_dir}/galaxy.yml" ]]; then
        echo "collection-tree: ${collection_dir} does not resolve to the checkout (no galaxy.yml)" >&2
        return 1
    fi

    export ATOMIC_REPO_ROOT="${repo_root}"
    export ATOMIC_COLLECTIONS_ROOT="${collections_root}"
    export ATOMIC_COLLECTION_DIR="${collection_dir}"
    case ":${ANSIBLE_COLLECTIONS_PATH:-}:" in
        *":${collections_root}:"*) ;;
        *) export ANSIBLE_COLLECTIONS_PATH="${collections_root}${ANSIBLE_COLLECTIONS_PATH:+:${ANSIBLE_COLLECTIONS_PATH}}" ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
    # Executed, not sourced: build the tree and print the exports for eval.
    set -euo pipefail
    __atomic_tree_main
    for __atomic_var in ATOMIC_REPO_ROOT ATOMIC_COLLECTIONS_ROOT ATOMIC_COLLECTION_DIR ANSIBLE_COLLECTIONS_PATH; do
        printf 'export %s=%q\n' "${__atomic_var}" "${!__atomic_var}"
    done
else
    __atomic_tree_main
fi
unset -f __atomic_tree_main
