# stratbox: build, test, run and benchmark.
#
# A fresh machine needs only `make run` and `make test`; every target installs
# what it needs (the wasm32 target) and builds plugins before anything uses them.

CARGO       ?= cargo
WASM_TARGET := wasm32-unknown-unknown
WASM_OUT    := target/$(WASM_TARGET)/release
PLUGIN_DIR  := target/plugins
FIXTURE_DIR := target/fixtures
DEMO_DIR    := target/demo
BIN         := target/debug/stratbox
RELEASE_BIN := target/release/stratbox
VENV        := target/venv
SCHEMATHESIS_VERSION := 4.32.5

PLUGINS  := ema-cross rsi-reversion breakout rules
FIXTURES := looper memory-grower recursion panicker remote-ref wasi-importer wrong-exports costly-schema

# Tests find the binary and the built plugins through these.
export STRATBOX_BIN         := $(CURDIR)/$(BIN)
export STRATBOX_PLUGIN_DIR  := $(CURDIR)/$(PLUGIN_DIR)
export STRATBOX_FIXTURE_DIR := $(CURDIR)/$(FIXTURE_DIR)
export STRATBOX_SCHEMATHESIS := $(CURDIR)/$(VENV)/bin/st

.PHONY: all setup plugins fixtures build release run demo test venv bench wrk lint fmt clean

all: build plugins

## setup: install the WebAssembly target the plugins are built for.
setup:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

## plugins: build the example strategies into target/plugins/NAME.wasm.
plugins: setup
	$(CARGO) build --release --target $(WASM_TARGET) $(addprefix -p ,$(PLUGINS))
	@mkdir -p $(PLUGIN_DIR)
	@for p in $(PLUGINS); do cp $(WASM_OUT)/$$(echo $$p | tr - _).wasm $(PLUGIN_DIR)/$$p.wasm; done

## fixtures: build the hostile test plugins into target/fixtures/NAME.wasm.
fixtures: setup
	$(CARGO) build --release --target $(WASM_TARGET) $(addprefix -p fixture-,$(FIXTURES))
	@mkdir -p $(FIXTURE_DIR)
	@for f in $(FIXTURES); do cp $(WASM_OUT)/fixture_$$(echo $$f | tr - _).wasm $(FIXTURE_DIR)/$$f.wasm; done

## build: the stratbox binary (debug: what the tests drive).
build:
	$(CARGO) build -p stratbox-host --bin stratbox

## release: the stratbox binary users run (optimised; overflow still checked).
release:
	$(CARGO) build --release -p stratbox-host --bin stratbox

## run: the host and its control API (config/stratbox.yaml) with the demo
## bots of config/bots as paper bots on accelerated synthetic feeds (no
## network needed), from the release build. Prints the URL and, on the
## first start at a terminal, an admin token.
run: release plugins
	$(RELEASE_BIN) serve --config config/stratbox.yaml

## demo: on demo candles, dry-run every example strategy, then backtest the
## 1m demo bots.
demo: build plugins
	@mkdir -p $(DEMO_DIR)
	$(BIN) data synth --symbol BTCUSDT --timeframe 1m --count 100000 --seed 42 --out $(DEMO_DIR)/candles.csv
	@for p in $(PLUGINS); do \
		echo "== dry run: $$p"; \
		$(BIN) plugin run $(PLUGIN_DIR)/$$p.wasm --candles $(DEMO_DIR)/candles.csv | tail -1; \
	done
	@for bot in ema-cross-btc rules-btc; do \
		echo "== backtest: config/bots/$$bot.yaml"; \
		$(BIN) backtest --bot config/bots/$$bot.yaml --candles $(DEMO_DIR)/candles.csv \
			--plugins-dir $(PLUGIN_DIR) --json $(DEMO_DIR)/$$bot.json || exit 1; \
	done

## test: every test, with plugins, fixtures and the API fuzzer set up first.
test: build plugins fixtures venv
	$(CARGO) test --workspace

## venv: schemathesis (from PyPI) for the OpenAPI fuzz test.
venv:
	@test -x $(VENV)/bin/st || { python3 -m venv $(VENV) && \
		$(VENV)/bin/pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION); }

## bench: throughput and latency benchmarks (release build); figures in README.
## The API benchmark loads the server with wrk, installed here if missing.
bench: plugins wrk
	$(CARGO) bench -p stratbox-host --bench plugin_runtime --bench backtest --bench store --bench live --bench api

## wrk: the HTTP load generator of the API benchmark (Debian package).
wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; } \
		|| { sudo apt-get update -qq && sudo apt-get install -y -qq wrk; }

## lint: formatting and clippy with warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
