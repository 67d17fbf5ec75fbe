# hotplug-agent: `make demo` and `make test` install what is missing, build, and run.
SWIFT ?= swift
BUILD := .build/debug
BIN := $(BUILD)/hotplug-agent
DRIVERCTL := .build/driverctl/usr/sbin/driverctl
# Debian packages: libudev for the agent; umockdev, its headers, a C compiler and
# pkg-config for the integration test's harness; GNU time for the hostile-file test's bounds;
# QEMU, a static busybox, udev, kmod, btrfs-progs, socat and xz for the real-kernel test;
# curl for the metrics scrape (the node exporter itself is unpacked, never installed);
# python3-yaml to read the Kubernetes manifests; python3-jsonschema for the CDI schema,
# podman and crun to run a container in the real-kernel guest; e2fsprogs for the systemd guest's disk;
# dpkg-dev (dpkg-shlibdeps) and lintian for the package; libstdc++'s archive for release links.
APT_PACKAGES := libudev-dev pkg-config umockdev libumockdev-dev gcc libstdc++-12-dev time \
	qemu-system-x86 busybox-static udev kmod btrfs-progs socat xz-utils curl python3-yaml \
	e2fsprogs dpkg-dev lintian podman crun python3-jsonschema strace
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build lint format test unit-test fuzz-test integration-test cdi-test install-test metrics-test deploy-test kernel-test package-test systemd-test test-kernel bench bench-kernel link-order print-release-flags fuzz demo clean install uninstall deb

# Installation layout (GNU style; packagers set PREFIX=/usr and DESTDIR).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec
UNITDIR ?= $(PREFIX)/lib/systemd/system
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/hotplug-agent
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
SYSCONFDIR ?= /etc
# The systemd the unit is for: the one running here for `make install` (no systemd: 252,
# Debian 12's); `make deb` sets its release's own, whatever the build host runs.
SYSTEMD_TARGET ?= $(or $(shell systemctl --version 2>/dev/null | awk 'NR == 1 { print $$2 }'),252)
DEB_SYSTEMD := 252
CONFIG ?= release
# The Swift runtime's 25 C++ library functions come from libstdc++.a, linked in (90 KB),
# instead of mapping all of libstdc++.so (2 MB, some 900 KiB of it resident): a directory
# holding only the archive, searched first, turns the runtime's -lstdc++ into it.
STATIC_CXX := $(CURDIR)/.build/static-libstdc++
# Release builds link the Swift runtime statically: the binary needs no Swift toolchain on
# the host, and the daemon maps only the parts it uses. Full RELRO (-z now): a root
# daemon's symbol table is read-only once it runs. lld packs the relative relocations
# (DT_RELR, glibc 2.36): 8 KB for the loader to read at start instead of 950 KB of RELA.
# The functions the daemon runs come first in .text, side by side (packaging/link-order.txt,
# written by `make link-order`): the kernel maps code 64 KiB around each page touched. Each
# function gets its own section (-function-sections), or the linker could only move a whole
# file's code, cold functions with the hot.
RELEASE_FLAGS := -c release --static-swift-stdlib -Xswiftc -use-ld=lld \
	-Xswiftc -Xfrontend -Xswiftc -function-sections \
	-Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now -Xlinker -z -Xlinker pack-relative-relocs \
	-Xlinker --symbol-ordering-file=$(CURDIR)/packaging/link-order.txt -Xlinker --no-warn-symbol-ordering \
	-Xlinker -L$(STATIC_CXX)
SWIFT_BUILD_FLAGS := $(if $(filter release,$(CONFIG)),$(RELEASE_FLAGS),-c $(CONFIG))
LAB := $(LIBEXECDIR)/hotplug-agent/hotplug-agent-lab
INSTALLED := $(BINDIR)/hotplug-agent $(LAB) $(UNITDIR)/hotplug-agent.service $(TMPFILESDIR)/hotplug-agent.conf \
	$(MANDIR)/man8/hotplug-agent.8 $(BASHCOMPDIR)/hotplug-agent $(ZSHCOMPDIR)/_hotplug-agent \
	$(FISHCOMPDIR)/hotplug-agent.fish

all: build

deps:
	@command -v $(SWIFT) >/dev/null || { echo "error: a Swift 6 toolchain ('swift') is needed on PATH"; exit 1; }
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	@mkdir -p $(STATIC_CXX) && ln -sf "$$(gcc -print-file-name=libstdc++.a)" $(STATIC_CXX)/libstdc++.a

build: deps
	$(SWIFT) build

# Swift lines stay within 120 columns; `make format FILES=...` lays files out as
# .swift-format says (swift-format comes with the toolchain).
lint:
	@long=$$(awk 'length > 120 { print FILENAME ":" FNR }' $$(find Sources Tests -name '*.swift')); \
	if [ -n "$$long" ]; then echo "Swift lines over 120 columns:"; echo "$$long"; exit 1; fi

format:
	swift-format format --configuration .swift-format -i $(or $(FILES),$$(find Sources Tests -name '*.swift'))

unit-test: build lint
	HOTPLUG_AGENT_BIN=$(CURDIR)/$(BIN) $(SWIFT) test
	$(BUILD)/PolicyFuzzer Tests/Fuzz/seeds/*

integration-test: build
	Tests/Integration/run-umockdev.sh $(CURDIR)/$(BIN)

# The CDI specs against CDI's JSON schema and naming rules.
cdi-test: build
	Tests/CDI/run.sh $(CURDIR)/$(BIN)

install-test: build
	Tests/Install/run.sh

# The real-kernel test: Debian's 6.12 kernel under QEMU runs the agent for real (about
# 75 s under TCG on 2 cores). `make test-kernel` runs it on 6.1 and 6.12.
kernel-test: build
	Tests/Kernel/run.sh 6.12 $(CURDIR)/$(BIN)

test-kernel: build
	Tests/Kernel/run.sh 6.1 $(CURDIR)/$(BIN)
	Tests/Kernel/run.sh 6.12 $(CURDIR)/$(BIN)

# The daemon's metrics scraped by Debian's prometheus-node-exporter on 127.0.0.1.
metrics-test: build
	Tests/Metrics/run.sh $(CURDIR)/$(BIN)

# The Kubernetes manifests parse and ask for no more than the unit has.
deploy-test: build
	Tests/Deploy/run.sh $(CURDIR)/$(BIN)

# The package: its file list, a binary that needs no toolchain (lintian ran in make deb).
package-test: deb
	Tests/Package/run.sh $(DEB)

# The unit under a real systemd: systemd as PID 1 in the real-kernel test's guest installs
# the package, runs the unit in its sandbox, reboots, removes and purges (about 3 min).
systemd-test: deb
	Tests/Kernel/systemd.sh 6.12 $(DEB)

test: unit-test fuzz-test integration-test cdi-test install-test metrics-test deploy-test package-test kernel-test systemd-test

# Performance figures (release build): the simulated host's coldplug, CPU per reconcile,
# events per second, kernel operations and growth; the real daemon's memory with 4096
# devices known (a sysfs tree in a temporary directory); the real daemon idling a minute;
# start-up of plan and run --once on seed 000 laid out as a tree; the installed binary's size.
# The simulated host's figures run with a tmpfs on /tmp in a private mount namespace (as
# root; elsewhere on /tmp as it is): origin records live in /run, a tmpfs on systemd hosts.
bench: deps $(DRIVERCTL)
	$(SWIFT) build $(RELEASE_FLAGS)
	bin=$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/hotplug-agent; \
	{ unshare --mount sh -c "mount -t tmpfs -o size=256m tmpfs /tmp && exec $$bin-lab bench --driverctl $(CURDIR)/$(DRIVERCTL)" 2>/dev/null || \
		$$bin-lab bench --driverctl $(CURDIR)/$(DRIVERCTL); } && \
	Tests/Bench/daemon-memory.sh $$bin && Tests/Bench/idle.sh $$bin && Tests/Bench/startup.sh $$bin && \
	strip -o .build/hotplug-agent.stripped $$bin && \
	printf "%-42s%10.1f MB  (stripped, as the package installs it; goal <= 20 MB)\n" "installed binary" \
		"$$(stat -c %s .build/hotplug-agent.stripped | awk '{ print $$1 / 1000000 }')"

# The agent against the bare writes on a real kernel (Debian's, under QEMU): claims, hot-add
# and 64 VFs, medians and ratios, and system calls per claim (Tests/Kernel/bench.sh).
bench-kernel: deps
	$(SWIFT) build $(RELEASE_FLAGS)
	Tests/Kernel/bench.sh 6.12 $$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/hotplug-agent

# Debian's driverctl for the bench's reference: unpacked, never installed (its udev rules
# and unit stay out of this machine).
$(DRIVERCTL):
	mkdir -p .build/driverctl
	cd .build/driverctl && { apt-get download driverctl >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && apt-get download driverctl >/dev/null; }; } && dpkg -x driverctl_*.deb .

# packaging/link-order.txt again from callgrind runs of the daemon and the lab (valgrind).
link-order: deps
	Tests/Bench/link-order.sh

print-release-flags:
	@echo $(RELEASE_FLAGS)

# libFuzzer on the policy layer that sees a file's raw bytes first (limits, the TOML parser,
# value parsers, escaping): FUZZ_RUNS inputs from the seeds in Tests/Fuzz/seeds (long names
# among them), with findings left in .build-fuzz/. Memory counts as a finding: no input
# (at most FUZZ_MAX_LEN bytes) may take more than FUZZ_RSS_MB resident or allocate over
# FUZZ_MALLOC_MB at once, the parser's bound of a small multiple of the input's size with
# the fuzzer's own footprint above it. lld links it (gold fails on libFuzzer's objects here).
# `make test` runs a short round (fuzz-test); `make fuzz` the full 300,000 inputs.
FUZZ_RUNS ?= 300000
FUZZ_MAX_LEN ?= 131072
FUZZ_RSS_MB ?= 256
FUZZ_MALLOC_MB ?= 16
fuzz: deps
	$(SWIFT) build -c release --scratch-path .build-fuzz --product PolicyFuzzer \
		-Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING -Xswiftc -use-ld=lld
	mkdir -p .build-fuzz/corpus
	cd .build-fuzz && ./release/PolicyFuzzer -runs=$(FUZZ_RUNS) -max_len=$(FUZZ_MAX_LEN) -seed=1 \
		-rss_limit_mb=$(FUZZ_RSS_MB) -malloc_limit_mb=$(FUZZ_MALLOC_MB) corpus ../Tests/Fuzz/seeds

fuzz-test:
	$(MAKE) --no-print-directory fuzz FUZZ_RUNS=20000

# The agent on the simulated seed-000 host with the example policy: what it finds,
# decides and does, device by device, and the end state.
demo: build
	$(BIN) simulate --host hosts/seed-000-mi300x.json --policy-dir rules/examples/seed-000

# The binary, the lab beside it in libexec (simulate, bench and --host hand over to it:
# hotplug-agent finds it as ../libexec/hotplug-agent/hotplug-agent-lab from its own
# directory), the systemd unit, the man page, shell completions, and the example policies
# under the doc directory (not enabled: copy one to policies.d to use it).
install: deps
	# The manual first: its plugin builds the tool again without --static-swift-stdlib.
	$(SWIFT) package generate-manual --section 8 --configuration $(CONFIG) --authors "hotplug-agent developers" >/dev/null
	# Linked again with the release flags: the package manager may keep the plugin's build
	# plan (and its link, which needs the toolchain at run time); its manifest goes first.
	rm -f .build/$(CONFIG).yaml
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)
	bin=$$($(SWIFT) build $(SWIFT_BUILD_FLAGS) --show-bin-path)/hotplug-agent; \
	install -Dm755 $$bin $(DESTDIR)$(BINDIR)/hotplug-agent && \
	install -Dm755 $$bin-lab $(DESTDIR)$(LAB) && \
	packaging/unit.sh $(SYSTEMD_TARGET) $(BINDIR) < rules/hotplug-agent.service > .build/hotplug-agent.service && \
	install -Dm644 .build/hotplug-agent.service $(DESTDIR)$(UNITDIR)/hotplug-agent.service && \
	install -Dm644 rules/hotplug-agent.tmpfiles $(DESTDIR)$(TMPFILESDIR)/hotplug-agent.conf && \
	install -Dm644 .build/plugins/GenerateManual/outputs/HotplugAgentMain/hotplug-agent.8 $(DESTDIR)$(MANDIR)/man8/hotplug-agent.8 && \
	$$bin --generate-completion-script bash > .build/completion.bash && \
	$$bin --generate-completion-script zsh > .build/completion.zsh && \
	$$bin --generate-completion-script fish > .build/completion.fish && \
	install -Dm644 .build/completion.bash $(DESTDIR)$(BASHCOMPDIR)/hotplug-agent && \
	install -Dm644 .build/completion.zsh $(DESTDIR)$(ZSHCOMPDIR)/_hotplug-agent && \
	install -Dm644 .build/completion.fish $(DESTDIR)$(FISHCOMPDIR)/hotplug-agent.fish
	for dir in rules/examples/*/; do \
		for file in $$dir*.toml; do install -Dm644 $$file $(DESTDIR)$(DOCDIR)/examples/$$(basename $$dir)/$$(basename $$file); done; \
	done
	install -Dm644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -Dm644 -t $(DESTDIR)$(DOCDIR)/docs docs/*.md docs/list-seed-004.png
	install -d -m755 $(DESTDIR)$(SYSCONFDIR)/hotplug-agent/policies.d
	# Where packages drop policies of their own (an /etc file of the same name masks one).
	install -d -m755 $(DESTDIR)$(PREFIX)/lib/hotplug-agent/policies.d
	# On this host itself: /run/cdi now, not only from the next boot.
	if [ -z "$(DESTDIR)" ] && command -v systemd-tmpfiles >/dev/null; then \
		systemd-tmpfiles --create $(TMPFILESDIR)/hotplug-agent.conf; fi

# The Debian package: what `make install` lays out (PREFIX=/usr, the unit in /lib/systemd/system
# as Debian 12 has it, and for Debian 12's systemd 252 whatever systemd the build host runs), made into .build/deb/hotplug-agent_VERSION_ARCH.deb by
# packaging/deb/build.sh, and checked by lintian (any error or warning fails).
VERSION := $(shell sed -n 's/^let hotplugAgentVersion = "\(.*\)"/\1/p' Sources/AgentCommands/Commands/HotplugAgentCommand.swift)
DEB := .build/deb/hotplug-agent_$(VERSION)_$(shell dpkg --print-architecture).deb
deb: deps
	rm -rf .build/deb
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/.build/deb/stage PREFIX=/usr UNITDIR=/lib/systemd/system \
		ZSHCOMPDIR=/usr/share/zsh/vendor-completions SYSTEMD_TARGET=$(DEB_SYSTEMD)
	packaging/deb/build.sh .build/deb/stage $(VERSION) .build/deb
	lintian --fail-on error,warning $(DEB)

# Removes what install laid out; policies an admin wrote in $(SYSCONFDIR) stay.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	rm -rf $(DESTDIR)$(DOCDIR)
	-rmdir $(DESTDIR)$(LIBEXECDIR)/hotplug-agent 2>/dev/null
	-rmdir $(DESTDIR)$(SYSCONFDIR)/hotplug-agent/policies.d $(DESTDIR)$(SYSCONFDIR)/hotplug-agent 2>/dev/null
	-rmdir $(DESTDIR)$(PREFIX)/lib/hotplug-agent/policies.d $(DESTDIR)$(PREFIX)/lib/hotplug-agent 2>/dev/null

clean:
	rm -rf .build
