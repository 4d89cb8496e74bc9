# atomic.deploy entry points. Every target sets itself up through scripts/bootstrap.sh (idempotent:
# Debian packages, .venv, get-pip stand-in), so a fresh Debian 12 machine with python3 and make is
# enough. A missing tool fails the target; nothing is skipped silently.
#
#   make demo         run scripts/demo.sh (needs only .venv with ansible-core)
#   make test         every stage below, in order; ends with "stages: N passed, N failed"
#   make lint         ruff check, ruff format --check, yamllint --strict, ansible-lint --profile production, changelog lint,
#                     antsibull-docs lint-collection-docs --plugin-docs, galaxy-importer on the built tarball
#   make sanity       ansible-test sanity --venv --python 3.11, every test, no ignore files
#   make units        ansible-test units --local --python 3.11 (tests/unit, once), the race test
#   make build-test   build + offline install of the collection tarball (tests/build/run.sh)
#   make integration  ansible-test integration --local --python 3.11 (tests/integration/targets)
#   make role-tests | reliability | ecosystem   tests/<suite>/run.sh
#   make appstack     tests/appstack/run.sh: real nginx + php-fpm (OPcache) and gunicorn under load
#   make host-tests   pytest tests/hosts (the SSH test hosts molecule uses), rootfs built first
#   make molecule     molecule test --all (in `make test` once molecule/*/molecule.yml exists)
#   make matrix       every ansible-core 2.16-2.21 in its own venv: sanity, units, a deploy/rollback/status
#                     run, every module on each target Python (tests/matrix/cores.yml; MATRIX_ARGS=--core X)
#   make bench        bench/run.sh
#   make bench-net    bench/run.sh net: deploys to SSH test hosts over links shaped to 100 Mbit/s (root; not in make test);
#                     BENCH_ARGS are bench/net.py's (e.g. BENCH_ARGS="--hosts 1,4,16,64")
#   make build        ansible-galaxy collection build into build/dist
#   make clean        remove build output, test output and caches; `make distclean` also .venv
#
# Sanity tests: none is skipped. pslint reports "no tests applicable" because the collection has no
# PowerShell; shellcheck runs because bootstrap installs it.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# Stages share build/ and tests/output: never run them in parallel.
.NOTPARALLEL:

REPO_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(REPO_ROOT)/.venv
export PATH := $(VENV)/bin:$(PATH)
# ansible-lint and molecule (ansible-compat) keep their collection cache in $VIRTUAL_ENV/.ansible;
# without it they install a copy of this collection into ~/.ansible/collections, which then
# shadows the checkout for any later ansible run that does not set ANSIBLE_COLLECTIONS_PATH.
export VIRTUAL_ENV := $(VENV)
# scripts/collection-tree.sh makes build/collections/ansible_collections/atomic/deploy -> checkout.
export ANSIBLE_COLLECTIONS_PATH := $(REPO_ROOT)/build/collections
export ANSIBLE_NOCOLOR := 1
export PY_COLORS := 0

BOOTSTRAP := bash scripts/bootstrap.sh
TREE := bash scripts/collection-tree.sh >/dev/null

MOLECULE_SCENARIOS := $(sort $(wildcard molecule/*/molecule.yml))
HOST_TESTS := $(sort $(wildcard tests/hosts/test_*.py))
TEST_STAGES := lint sanity units build-test integration role-tests reliability appstack ecosystem \
	$(if $(HOST_TESTS),host-tests) $(if $(MOLECULE_SCENARIOS),molecule) matrix

.PHONY: help setup setup-demo demo test lint sanity units build-test integration role-tests \
	reliability appstack ecosystem host-tests molecule matrix bench bench-net build clean distclean

help:
	@sed -n 's/^#   make /make /p' $(firstword $(MAKEFILE_LIST))

setup:
	@$(BOOTSTRAP)
	@$(TREE)

setup-demo:
	@$(BOOTSTRAP) --demo
	@$(TREE)

demo: setup-demo
	bash scripts/demo.sh

# Runs every stage even after a failure, so one CI run reports all of them; exits non-zero if any
# stage failed.
test:
	@passed=0; failed=0; failed_stages=""; \
	for stage in $(TEST_STAGES); do \
		echo "==> make $$stage"; \
		started=$$(date +%s); \
		if $(MAKE) --no-print-directory $$stage; then \
			passed=$$((passed + 1)); \
			echo "==> $$stage passed in $$(( $$(date +%s) - started ))s"; \
		else \
			failed=$$((failed + 1)); failed_stages="$$failed_stages $$stage"; \
			echo "==> $$stage FAILED after $$(( $$(date +%s) - started ))s"; \
		fi; \
	done; \
	if [ $$failed -ne 0 ]; then echo "failed stages:$$failed_stages"; fi; \
	echo "stages: $$passed passed, $$failed failed"; \
	[ $$failed -eq 0 ]

# Every linter runs even when one fails, so a single run reports every finding.
lint: setup
	@rc=0; \
	for cmd in "ruff check ." "ruff format --check ." "yamllint --strict ." "ansible-lint --profile production" "antsibull-changelog lint" \
		"antsibull-docs lint-collection-docs --plugin-docs $(ANSIBLE_COLLECTIONS_PATH)/ansible_collections/atomic/deploy" \
		"bash scripts/galaxy-import.sh"; do \
		echo "--> $$cmd"; \
		$$cmd || { rc=1; echo "--> $$cmd FAILED"; }; \
	done; \
	exit $$rc

sanity: setup
	bash scripts/ansible-test.sh sanity

# tests/unit runs once, under ansible-test (a plain `pytest tests/unit` collects the same tests).
units: setup
	bash scripts/ansible-test.sh units
	pytest -s tests/race

build-test: setup
	bash tests/build/run.sh

integration: setup
	bash scripts/ansible-test.sh integration

role-tests: setup
	bash tests/role/run.sh

reliability: setup
	bash tests/reliability/run.sh

appstack: setup
	bash tests/appstack/run.sh

ecosystem: setup
	bash tests/ecosystem/run.sh

# The rootfs is built first so the real up/ssh/down cases run instead of being skipped.
host-tests: setup
	python3 tests/hosts/hostctl.py build
	pytest tests/hosts

molecule: setup
	@if [ -z "$(MOLECULE_SCENARIOS)" ]; then echo "molecule: no scenario (molecule/*/molecule.yml)" >&2; exit 1; fi
	molecule test --all

# Python 3.12 and 3.13 for the controllers, 2.7 and 3.6-3.13 as targets, from pyenv (tests/README.md).
matrix: setup
	python3 tests/matrix/run.py $(MATRIX_ARGS)

bench: setup
	bash bench/run.sh

bench-net: setup
	bash bench/run.sh net $(BENCH_ARGS)

build: setup
	ansible-galaxy collection build --force --output-path build/dist

clean:
	rm -rf build tests/output demo-root .pytest_cache .ruff_cache .ansible .cache
	rm -f atomic-deploy-*.tar.gz
	find . -path ./.venv -prune -o -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf .venv
