# Entry points for developers and CI. `make test` is the whole test gate; `make deps` installs
# what the end-to-end tests start (a real registry, skopeo, htpasswd, openssl); `make demo`
# pushes an image into a local idpbuilder-shaped registry and checks it.
SHELL := /bin/bash
CARGO ?= cargo
# Debian/Ubuntu packages the tests and the demo need.
DEPS := docker-registry skopeo apache2-utils openssl

.PHONY: build test demo coverage bench deps

build:
	$(CARGO) build --release

test:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --all-targets

demo:
	scripts/demo.sh

# Line coverage of the crate, including the binary as the end-to-end tests run it
# (--follow-exec); fails below 80%. cargo-tarpaulin is installed from crates.io when missing.
coverage:
	@command -v cargo-tarpaulin >/dev/null || $(CARGO) install cargo-tarpaulin --locked
	$(CARGO) tarpaulin --engine llvm --follow-exec --skip-clean --target-dir target/tarpaulin \
	  --exclude-files 'tests/*' 'fuzz/*' 'src/**/*_tests.rs' 'src/source/testing.rs' \
	  --out Stdout --fail-under 80

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
