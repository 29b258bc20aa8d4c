# The one entry point: `make help` lists the targets. CI runs `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

STACK := deploy/local/stack.sh
CARGO ?= cargo
TOOLS_DIR ?= $(or $(AUDITLOG_TOOLS_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/auditlog/tools)
CHDB_PYTHON := $(TOOLS_DIR)/chdb-venv/bin/python

.PHONY: help install up down status fmt fmt-check lint build test test-unit bench soak demo clean-stack

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

install: ## install the local stack's tools (Apache Kafka from Maven Central, chDB venv) into the cache
	@$(STACK) install

up: ## start the local stack (Kafka API on :9092, ClickHouse HTTP on :8123) and wait until healthy
	@$(STACK) up

down: ## stop the local stack and everything make demo started
	@$(STACK) down

status: ## show the local stack's health
	@$(STACK) status

fmt: ## format the code
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint: ## clippy on every target, warnings are errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

build: ## build everything, tests included
	$(CARGO) build --workspace --all-targets

test: fmt-check lint ## install what is missing, start the stack if needed, run every test
	$(CARGO) test --workspace --no-run
	# Whole-system tests run the auditlog binary itself; cargo builds a package's binary for
	# tests only when that package has integration tests, so build it explicitly.
	$(CARGO) build --workspace --bins
	$(STACK) install clickhouse
	# The audit page's browser tests (tests/tests/e2e/ui_browser.rs) need Chromium and playwright-core.
	deploy/local/browser.sh install
	# The chart's tests (crates/auditlog/tests/helm_chart.rs) lint and render it with Helm.
	deploy/local/helm.sh install
	# The streaming tests' destinations (issue 25): SeaweedFS's S3 server (built from its Go
	# module, about 10 minutes once, then cached) and OpenSearch (from Maven Central, about a
	# minute once). The tests start private instances of both on free ports.
	$(STACK) install s3 opensearch
	cd deploy/local/clickhouse && $(CHDB_PYTHON) -m unittest --quiet
	$(STACK) with $(CARGO) test --workspace

bench: ## run the benchmarks (figures are ratios against a baseline from the same run)
	$(CARGO) build --release -p auditlog
	# The query bench's anchor, Coder's schema on PostgreSQL; the bench starts and stops it.
	deploy/local/postgres.sh install
	# The stream bench's destinations (issue 25): it starts private instances of both.
	$(STACK) install s3 opensearch
	$(STACK) with $(CARGO) bench --workspace

SOAK_MINUTES ?= 30
soak: ## a long run (SOAK_MINUTES, 30) on a three-node Kafka cluster at 5,000 events/s with a random fault every 2-3 minutes
	$(CARGO) build --release -p auditlog
	$(STACK) install kafka clickhouse
	AUDITLOG_SOAK_MINUTES=$(SOAK_MINUTES) $(CARGO) bench -p auditlog-e2e --bench soak

demo: ## the whole system: stack, schema, 2 ingesters, ~1M events, the API and the audit page, and a guide
	$(CARGO) build --release -p auditlog
	@$(STACK) up
	@deploy/local/demo.sh

clean-stack: down ## stop the stack and delete its data and logs
	rm -rf .stack

# Fuzzing (cargo-fuzz, libFuzzer) needs nightly; the fuzz crate is its own workspace in fuzz/.
# `make test` replays the committed seeds (fuzz/seeds/) without either. No sanitizer: the
# crates forbid unsafe code, so a finding is a panic, and AddressSanitizer would only slow the runs.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := filter cursor avro_single_object avro_confluent
CARGO_FUZZ_ROOT := $(TOOLS_DIR)/cargo-fuzz
.PHONY: fuzz

fuzz: ## run each fuzz target for FUZZ_SECONDS (60); crashers go to fuzz/artifacts/
	@test -x $(CARGO_FUZZ_ROOT)/bin/cargo-fuzz || $(CARGO) +nightly install --locked cargo-fuzz --root $(CARGO_FUZZ_ROOT)
	cd fuzz && for target in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$target; \
	  PATH="$(CARGO_FUZZ_ROOT)/bin:$$PATH" $(CARGO) +nightly fuzz run --sanitizer=none --debug-assertions \
	    $$target corpus/$$target seeds/$$target -- -max_total_time=$(FUZZ_SECONDS) -timeout=10; \
	done
