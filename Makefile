# r58 developer entry points. `make run` and `make test` work on a fresh
# Debian/Ubuntu machine: they install the system packages they miss first.

CARGO   ?= cargo
# `make cross CARGO="cargo +1.94"` adds the target to that toolchain.
RUSTUP_TOOLCHAIN_ARG = $(patsubst +%,--toolchain %,$(filter +%,$(CARGO)))
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT     := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900

# Build: GStreamer and OpenSSL (DTLS) headers. Run: the plugins the
# pipelines use (x264enc is in -ugly).
PKGS_RUN  := pkg-config libssl-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
             gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
             gstreamer1.0-plugins-ugly
# Tests: a real browser, and node for playwright-core (only when missing:
# an existing Node install often bundles its own npm, which Debian's clashes with);
# namespaces, nftables, socat (the FRP stand-in) and coturn for the remote-path tests;
# edid-decode checks board/'s EDID; QEMU, Debian's U-Boot for it, mkimage,
# fw_setenv and mtools run the image's A/B boot script (make boot-test).
PKGS_IMAGE := qemu-system-arm u-boot-qemu u-boot-tools libubootenv-tool mtools dosfstools fdisk
PKGS_TEST := $(PKGS_RUN) $(PKGS_IMAGE) chromium iproute2 nftables socat coturn systemd edid-decode openssl $(if $(shell command -v node),,nodejs) $(if $(shell command -v npm),,npm)

# Cross build for the R58 (aarch64) on this Debian machine: multiarch arm64
# GStreamer headers, the cross linker, qemu-user to run the tests.
TARGET     := aarch64-unknown-linux-gnu
PKGS_CROSS := gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static libssl-dev:arm64 \
              libgstreamer1.0-dev:arm64 libgstreamer-plugins-base1.0-0:arm64 \
              gstreamer1.0-plugins-base:arm64 gstreamer1.0-plugins-good:arm64 \
              gstreamer1.0-plugins-ugly:arm64 gstreamer1.0-plugins-bad:arm64
# libgstreamer-plugins-base1.0-dev cannot be installed for amd64 and arm64
# at once (installing one removes the other and breaks the host build), so
# its arm64 files (gstreamer-app-1.0.pc, libgstapp-1.0.so) are unpacked here.
ARM64_DEV  := $(CURDIR)/target/arm64-dev
export PKG_CONFIG_PATH_aarch64_unknown_linux_gnu := $(ARM64_DEV)/usr/lib/aarch64-linux-gnu/pkgconfig
# Debian's docker images delete .debs after every dpkg run, which breaks
# multiarch installs (dpkg runs several times): keep the archives elsewhere.
APT_CROSS  := $(APT) -o Dir::Cache::archives=/var/cache/r58-apt
CROSS_BIN  := target/$(TARGET)/release/r58

.PHONY: fuzz run test interop deps-interop adapt bench deps-run deps-test deps-cross build release cross cross-test size install install-board crates-inc lint-layer boot-test layer-parse clean

# Install only what is missing, so a second run costs nothing.
define apt_install_with
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$(echo $$missing | tr '\n' ' ')"; \
	  $(2) update -q && $(2) install -y -q --no-install-recommends $$missing; \
	fi
endef
apt_install = $(call apt_install_with,$(1),$(APT))

deps-run:
	$(call apt_install,$(PKGS_RUN))
	@command -v $(firstword $(CARGO)) >/dev/null || { echo "error: cargo not found: install Rust from https://rustup.rs"; exit 1; }

deps-test:
	$(call apt_install,$(PKGS_TEST))
	@command -v node >/dev/null || { echo "error: node not found"; exit 1; }
	@$(MAKE) --no-print-directory tests/browser/node_modules/.r58-stamp

# playwright-core, installed again only when the lock file changes.
tests/browser/node_modules/.r58-stamp: tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: deps-run
	$(CARGO) build --locked

release: deps-run
	$(CARGO) build --locked --release

# Runs the daemon with the built-in defaults (cam0 = test pattern) unless
# CONFIG=path/to/r58.toml is given. The log prints the viewer URL. Built
# with the `fast` profile (no fat LTO): the shipped binary is `make cross`.
run: deps-run
	$(CARGO) build --locked --profile fast
	./target/fast/r58 run $(if $(CONFIG),--config $(CONFIG))

test: deps-test lint-layer boot-test
	$(CARGO) test --locked

# The interop matrix (tests/interop.rs): every WebRTC stack this machine
# can run, each role, over UDP and ICE-TCP, against the real binary; then
# the README's client table from the cells that passed (INTEROP_WRITE=1
# writes it into README.md). Firefox ESR, GStreamer's Python bindings and
# libnice from Debian; aiortc in a venv; pion is ../shared/tools/whepbench
# (WHEPBENCH=path), skipped where absent. Then forwarding (tests/forward.rs):
# a guest that only reaches the VPS views the box through an r58 relay and
# through aiortc as a WHIP server.
PKGS_INTEROP := firefox-esr gstreamer1.0-tools gstreamer1.0-nice gstreamer1.0-libav \
                python3-gi python3-gst-1.0 gir1.2-gst-plugins-bad-1.0
INTEROP_VENV := target/interop/venv
deps-interop: deps-test
	$(call apt_install,$(PKGS_INTEROP))
	@test -x $(INTEROP_VENV)/bin/python || python3 -m venv $(INTEROP_VENV)
	@$(INTEROP_VENV)/bin/python -c 'import aiortc' 2>/dev/null || \
	  $(INTEROP_VENV)/bin/pip install -q --disable-pip-version-check aiortc==1.16.0

interop: deps-interop
	rm -rf target/tmp/interop
	$(CARGO) test --locked --test interop -- --ignored --test-threads=2
	$(CARGO) test --locked --test forward -- --ignored --test-threads=1
	python3 tests/interop/table.py $(if $(INTEROP_WRITE),--write)

# Adaptive quality against Chromium on a tbf-shaped link (tests/adapt.rs):
# 700 kbit/s over UDP and over ICE-TCP, and a link that drops mid-view next
# to an unlimited viewer. Freeze counts are frame timing on whatever else
# this machine runs, so a failed run is tried once more, and said so.
adapt: deps-test
	$(CARGO) test --locked --test adapt -- --ignored --test-threads=1 || { \
	  echo "adapt: failed once; running the cells again (frame timing on a busy machine)"; \
	  $(CARGO) test --locked --test adapt -- --ignored --test-threads=1; }

# Prints figures (time to first frame, CPU and RSS per viewer count, tunnel
# throughput, WHIP relay latency); not a pass/fail test.
bench: deps-test
	$(CARGO) build --locked --release
	$(CARGO) bench --locked --bench whep
	$(CARGO) bench --locked --bench remote
	$(CARGO) bench --locked --bench tunnel
	$(CARGO) bench --locked --bench whip
	$(CARGO) bench --locked --bench viewers
	$(CARGO) bench --locked --bench adapt
	$(CARGO) bench --locked --bench forward

deps-cross: deps-run
	@dpkg --print-foreign-architectures | grep -qx arm64 || { $(SUDO) dpkg --add-architecture arm64 && $(APT) update -q; }
	@$(SUDO) mkdir -p /var/cache/r58-apt/partial
	$(call apt_install_with,$(PKGS_CROSS),$(APT_CROSS))
	@rustup target list --installed $(RUSTUP_TOOLCHAIN_ARG) 2>/dev/null | grep -qx $(TARGET) || rustup target add $(TARGET) $(RUSTUP_TOOLCHAIN_ARG)
	@test -f $(ARM64_DEV)/.done || { \
	  rm -rf $(ARM64_DEV) && mkdir -p $(ARM64_DEV)/deb && cd $(ARM64_DEV)/deb && \
	  apt-get download -q libgstreamer-plugins-base1.0-dev:arm64 2>/dev/null && \
	  dpkg-deb -x libgstreamer-plugins-base1.0-dev_*_arm64.deb $(ARM64_DEV) && \
	  sed -i 's|^prefix=.*|prefix=$(ARM64_DEV)/usr|' $(ARM64_DEV)/usr/lib/aarch64-linux-gnu/pkgconfig/*.pc && \
	  for l in $(ARM64_DEV)/usr/lib/aarch64-linux-gnu/*.so; do \
	    ln -sf /usr/lib/aarch64-linux-gnu/$$(readlink $$l) $$l; done && \
	  touch $(ARM64_DEV)/.done; }

# A stripped release binary for the R58 (linker and pkg-config: .cargo/config.toml).
cross: deps-cross
	$(CARGO) build --locked --release --target $(TARGET)
	@$(MAKE) --no-print-directory size

# The unit tests, compiled for aarch64 and run under qemu-aarch64-static;
# then the aarch64 release binary, under qemu, faces the host-built WHEP,
# CLI, tunnel and real-Chromium tests (the browser tests at 640x360 there:
# emulated x264 at 720p made 11-12 fps, and the frame counts measured qemu).
cross-test: cross deps-test
	$(CARGO) test --locked --target $(TARGET) --lib --bins
	R58_TEST_BIN=$(CURDIR)/$(CROSS_BIN) R58_TEST_RUNNER=qemu-aarch64-static \
	  $(CARGO) test --locked --test whep --test cli --test browser --test tunnel --test whip \
	  -- --skip faults:: --skip losses_on_both_legs
# (The tunnel's fault tests and the WHIP loss test start r58 inside network
# namespaces, without the qemu runner; they run natively in `make test`.
# tests/sound.rs is not run here: lip sync is timing, which emulation
# distorts, so it is measured natively only.)

# The binary and board/ files at their usual paths, for a package or a
# vendor Debian image without Yocto. The Yocto recipe runs install-board
# with its own directory variables, so both install the same files.
# BIN=target/aarch64-unknown-linux-gnu/release/r58 installs the R58 build.
DESTDIR    ?=
BIN        ?= target/release/r58
UNITDIR    ?= /usr/lib/systemd/system
UDEVDIR    ?= /usr/lib/udev/rules.d
DATADIR    ?= /usr/share
SYSCONFDIR ?= /etc
install: install-board
	@test -f $(BIN) || { echo "no $(BIN): run make release (or make cross and BIN=$(CROSS_BIN))"; exit 1; }
	install -D -m 0755 $(BIN) $(DESTDIR)/usr/bin/r58

install-board:
	install -D -m 0644 -t $(DESTDIR)$(UNITDIR) board/systemd/r58.service board/systemd/r58-boot-check.service
	install -D -m 0644 "board/systemd/serial-getty@ttyFIQ0.service.d/r58-baud.conf" \
	  "$(DESTDIR)$(UNITDIR)/serial-getty@ttyFIQ0.service.d/r58-baud.conf"
	install -D -m 0644 board/udev/90-r58-hdmirx.rules $(DESTDIR)$(UDEVDIR)/90-r58-hdmirx.rules
	install -D -m 0644 board/edid/r58-1080p60.bin $(DESTDIR)$(DATADIR)/r58/edid/r58-1080p60.bin
	@# Never overwrite a technician's config on a live system.
	@if [ -n "$(DESTDIR)" ] || [ ! -e $(SYSCONFDIR)/r58/r58.toml ]; then \
	  install -D -m 0644 board/r58.toml $(DESTDIR)$(SYSCONFDIR)/r58/r58.toml; \
	else echo "keeping existing $(SYSCONFDIR)/r58/r58.toml (new default: board/r58.toml)"; fi

# meta-r58's r58-crates.inc from Cargo.lock (tests fail while it is stale).
crates-inc:
	meta-r58/scripts/crates-inc

# The Yocto layer, linted the way the Yocto project's own layers are
# (oelint-adv from PyPI), its A/B files checked against each other, and its
# kas file against kas's own schema (both tools in venvs under target/).
OELINT := target/oelint/bin/oelint-adv
KASPY  := target/kas/bin/python
$(OELINT):
	python3 -m venv target/oelint
	target/oelint/bin/pip install -q oelint-adv==9.11.2
$(KASPY):
	python3 -m venv target/kas
	target/kas/bin/pip install -q kas==5.5
lint-layer: $(OELINT) $(KASPY)
	meta-r58/scripts/crates-inc --check
	meta-r58/scripts/ablayout.py
	$(KASPY) meta-r58/scripts/kas-check $(if $(wildcard $(YOCTO)/README.md),--stack $(YOCTO)/README.md)
	meta-r58/scripts/lint

# Every fuzz target (fuzz/fuzz_targets, entry points in src/fuzz.rs) for
# FUZZ_SECS each on nightly with cargo-fuzz, from the committed seeds in
# fuzz/corpus (new inputs go to target/fuzz-corpus, not the repository).
# Fails on any crash; prints runs and coverage per target. `cargo test`
# replays the committed corpus on stable.
FUZZ_SECS ?= 45
FUZZ_TARGETS = $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs)))
fuzz: deps-run
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd fuzz && cargo +nightly fuzz build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p target/fuzz-corpus/$$t; \
	  (cd fuzz && cargo +nightly fuzz run $$t ../target/fuzz-corpus/$$t corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECS) -print_final_stats=1 2>&1) > target/fuzz-$$t.log \
	    || { tail -40 target/fuzz-$$t.log; echo "fuzz: $$t FAILED (input in fuzz/artifacts/$$t)"; exit 1; }; \
	  printf '%-14s %s\n' $$t "$$(grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' target/fuzz-$$t.log | tail -1) \
	    $$(grep -oE 'cov: [0-9]+ ft: [0-9]+' target/fuzz-$$t.log | tail -1)"; \
	done

# The image's A/B boot script, run in Debian's QEMU U-Boot (about 30 s).
boot-test:
	meta-r58/scripts/boot-test

# meta-r58 parsed with bitbake against the real upstream layers, offline
# (snapshots in ../shared/yocto; a user's clone has none, so this says so
# and stops). Needs root: bitbake runs as nobody. About 3-4 min cold.
YOCTO ?= ../shared/yocto
layer-parse:
	@if [ -f $(YOCTO)/layers.sh ]; then meta-r58/scripts/parse-check $(YOCTO); \
	else echo "layer-parse: skipped, no $(YOCTO)/layers.sh (the upstream layer snapshots)"; fi

size:
	@test -f $(CROSS_BIN) || { echo "no $(CROSS_BIN): run make cross"; exit 1; }
	@echo "$(CROSS_BIN): $$(stat -c %s $(CROSS_BIN)) bytes stripped ($$(file -b $(CROSS_BIN) | cut -d, -f1,2))"

clean:
	$(CARGO) clean
	rm -rf tests/browser/node_modules
