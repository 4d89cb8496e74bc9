#!/usr/bin/env bash
# Case 1, the shell floor: what a deploy costs with no tool at all.
# usage: floor.sh ROOT RELEASE_ID ARCHIVE   (ROOT/shared/storage and ROOT/shared/.env exist)
set -euo pipefail
root="$1"
release="$2"
archive="$3"
mkdir "${root}/releases/${release}"
tar -xzf "${archive}" -C "${root}/releases/${release}"
ln -s ../../shared/storage "${root}/releases/${release}/storage"
ln -s ../../shared/.env "${root}/releases/${release}/.env"
ln -s "releases/${release}" "${root}/.current.tmp"
mv -T "${root}/.current.tmp" "${root}/current"
