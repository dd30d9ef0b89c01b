# Entry points for developers and CI. `make test` is the whole test gate; `make deps` installs
# what the end-to-end tests start (a real registry, skopeo, htpasswd, openssl) and `make tools`
# the second registry implementation they run against (container-registry, into .tools/);
# `make demo` pushes an image into a local idpbuilder-shaped registry and checks it.
SHELL := /bin/bash
CARGO ?= cargo
# Debian/Ubuntu packages the tests and the demo need (the engine tests start dockerd and a
# Podman service, build with buildah and static busybox, and unpack with umoci).
DEPS := docker-registry skopeo apache2-utils openssl docker.io podman buildah busybox-static umoci time

# Most end-to-end tests wait (for a registry to start, a deadline, a fault's timeout) rather
# than compute: on 2 cores, 4 at a time ran the suite under coverage in 92 s instead of 234 s
# at the default of one per core (8: 77 s); 4 leaves room for the tests that time things.
export RUST_TEST_THREADS ?= 4

.PHONY: build test check demo coverage tarpaulin bench deps tools fuzz-smoke man

build:
	$(CARGO) build --release

test:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --all-targets

demo:
	scripts/demo.sh

# Man pages from the clap definitions into MAN_DIR: idpbuilder.1, idpbuilder-push.1,
# idpbuilder-completion.1 (view with man -l target/man/idpbuilder-push.1).
MAN_DIR ?= target/man
man:
	$(CARGO) run --quiet --example man -- $(MAN_DIR)

# Line coverage of the crate, including the binary as the end-to-end tests run it
# (--follow-exec); fails below 80% and when any test fails. Every limit the tests hold (peak
# RSS among them) is held here too: tests/support/child.rs measures the binary, instrumented
# or not, under /usr/bin/time. --timeout is per test binary (60 s by default): the one e2e
# binary runs every end-to-end test. scripts/coverage-rustc keeps tarpaulin's flags off the
# dependencies (it says why).
coverage: tarpaulin
	RUSTC_WRAPPER=$(CURDIR)/scripts/coverage-rustc $(CARGO) tarpaulin --engine llvm --follow-exec --skip-clean \
	  --target-dir target/tarpaulin --timeout 1800 \
	  --exclude-files 'tests/*' 'fuzz/*' 'src/**/*_tests.rs' 'src/source/testing.rs' \
	  --out Stdout --fail-under 80

# The gate CI runs (.ci/run): what `make test` checks, with every test run once, under
# coverage, instead of twice (`make test`, then `make coverage`).
check:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(MAKE) coverage

# cargo-tarpaulin from crates.io when missing, built for what `make coverage` uses: without its
# default features (coveralls upload through git2, wasm), unoptimised and without debug info.
# Its build was the longest part of a CI run: 487 s as published (fat LTO, one codegen unit),
# 214 s at opt-level 1, 83 s so (this 2-core machine). Unoptimised, it merges a suite's
# profiles in ~14 s instead of ~2 s, since only our crate is instrumented (coverage-rustc).
TARPAULIN_VERSION := 0.37.5
tarpaulin:
	@if command -v cargo-tarpaulin >/dev/null; then echo "tarpaulin: present"; exit 0; fi; \
	CARGO_PROFILE_DEV_DEBUG=0 $(CARGO) install cargo-tarpaulin --version $(TARPAULIN_VERSION) \
	  --locked --no-default-features --debug

# Measures and prints; asserts nothing. Writes docs/benchmarks.md.
bench:
	scripts/bench.sh

# apt-get update runs only when something is missing; sudo only when not root.
deps:
	@missing=""; \
	for pkg in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q "ok installed" \
	    || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all present ($(DEPS))"; exit 0; fi; \
	sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	echo "deps: installing$$missing"; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

# Test tools from crates.io, built into the project's own tool directory (gitignored) and kept
# there: a run that finds the pinned version builds nothing. tests/support/container_registry.rs
# looks for $(TOOLS_DIR)/bin/container-registry (or $$IDPBUILDER_TEST_CONTAINER_REGISTRY); under
# CI=true its tests fail without it, elsewhere they print a skip line.
# Built without its release profile's fat LTO: 128 -> 113 s here, the same registry.
TOOLS_DIR := .tools
CONTAINER_REGISTRY_VERSION := 0.3.1
tools:
	@bin="$(TOOLS_DIR)/bin/container-registry"; \
	want="container-registry $(CONTAINER_REGISTRY_VERSION)"; \
	if [ -x "$$bin" ] && [ "$$("$$bin" --version 2>/dev/null)" = "$$want" ]; then \
	  echo "tools: $$want present in $(TOOLS_DIR)"; exit 0; \
	fi; \
	echo "tools: installing $$want into $(TOOLS_DIR)"; \
	install="env CARGO_PROFILE_RELEASE_LTO=false $(CARGO) install container-registry --version $(CONTAINER_REGISTRY_VERSION) \
	  --features bin --root $(TOOLS_DIR) --force"; \
	$$install --locked || { echo "tools: --locked failed; trying without"; $$install; } && \
	[ "$$("$$bin" --version)" = "$$want" ]

# Each cargo-fuzz target (fuzz/) for FUZZ_SECONDS on its seed corpus, when a nightly toolchain
# and cargo-fuzz are installed; otherwise one skip line. The long runs are local:
# cd fuzz && cargo +nightly fuzz run TARGET corpus/TARGET seeds/TARGET -- -max_total_time=600
FUZZ_TARGETS := destination challenge layout archive
FUZZ_SECONDS ?= 20
fuzz-smoke:
	@if ! $(CARGO) +nightly fuzz --version >/dev/null 2>&1; then \
	  echo "fuzz-smoke: skipped: needs a nightly toolchain and cargo-fuzz (rustup toolchain install nightly; cargo install cargo-fuzz)"; \
	  exit 0; \
	fi; \
	cd fuzz && log=$$(mktemp) && for target in $(FUZZ_TARGETS); do \
	  echo "fuzz-smoke: $$target for $(FUZZ_SECONDS) s"; \
	  mkdir -p corpus/$$target; \
	  if $(CARGO) +nightly fuzz run $(FUZZ_FLAGS) $$target corpus/$$target seeds/$$target -- \
	      -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 >"$$log" 2>&1; then \
	    grep -E '^(Done|stat::number_of_executed_units)' "$$log"; \
	  else \
	    tail -n 60 "$$log"; rm -f "$$log"; \
	    echo "fuzz-smoke: $$target failed; the input is under fuzz/artifacts/$$target"; exit 1; \
	  fi; \
	done; rm -f "$$log"
