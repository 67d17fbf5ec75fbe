# hotplug-agent: `make demo` and `make test` install what is missing, build, and run.
SWIFT ?= swift
BUILD := .build/debug
BIN := $(BUILD)/hotplug-agent
# Debian packages: libudev for the agent; umockdev, its headers, a C compiler and
# pkg-config for the integration test's harness.
APT_PACKAGES := libudev-dev pkg-config umockdev libumockdev-dev gcc
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build test unit-test integration-test demo clean

all: build

deps:
	@command -v $(SWIFT) >/dev/null || { echo "error: a Swift 6 toolchain ('swift') is needed on PATH"; exit 1; }
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

unit-test: build
	HOTPLUG_AGENT_BIN=$(CURDIR)/$(BIN) $(SWIFT) test

integration-test: build
	Tests/Integration/run-umockdev.sh $(CURDIR)/$(BIN)

test: unit-test integration-test

# The agent on the simulated seed-000 host with the example policy: what it finds,
# decides and does, device by device, and the end state.
demo: build
	$(BIN) simulate --host hosts/seed-000-mi300x.json --policy-dir rules/examples/seed-000

clean:
	rm -rf .build
