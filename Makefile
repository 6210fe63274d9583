# r58 developer entry points. `make run` and `make test` work on a fresh
# Debian/Ubuntu machine: they install the system packages they miss first.

CARGO   ?= cargo
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT     := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900

# Build: GStreamer headers. Run: the plugins the pipelines use (x264enc is in -ugly).
PKGS_RUN  := pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
             gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
             gstreamer1.0-plugins-ugly
# Tests: a real browser, and node for playwright-core (only when missing:
# an existing Node install often bundles its own npm, which Debian's clashes with);
# namespaces, nftables, socat (the FRP stand-in) and coturn for the remote-path tests.
PKGS_TEST := $(PKGS_RUN) chromium iproute2 nftables socat coturn $(if $(shell command -v node),,nodejs) $(if $(shell command -v npm),,npm)

.PHONY: run test bench deps-run deps-test build release clean

# Install only what is missing, so a second run costs nothing.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$(echo $$missing | tr '\n' ' ')"; \
	  $(APT) update -q && $(APT) install -y -q --no-install-recommends $$missing; \
	fi
endef

deps-run:
	$(call apt_install,$(PKGS_RUN))
	@command -v $(firstword $(CARGO)) >/dev/null || { echo "error: cargo not found: install Rust from https://rustup.rs"; exit 1; }

deps-test:
	$(call apt_install,$(PKGS_TEST))
	@command -v node >/dev/null || { echo "error: node not found"; exit 1; }
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error

build: deps-run
	$(CARGO) build --locked

release: deps-run
	$(CARGO) build --locked --release

# Runs the daemon with the built-in defaults (cam0 = test pattern) unless
# CONFIG=path/to/r58.toml is given. The log prints the viewer URL.
run: release
	./target/release/r58 run $(if $(CONFIG),--config $(CONFIG))

test: deps-test
	$(CARGO) test --locked

# Prints figures (time to first frame, CPU and RSS per viewer count); not a pass/fail test.
bench: deps-test
	$(CARGO) build --locked --release
	$(CARGO) bench --locked --bench whep
	$(CARGO) bench --locked --bench remote

clean:
	$(CARGO) clean
	rm -rf tests/browser/node_modules
