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
UI          := ui
UI_DEPS     := $(UI)/node_modules/.installed
CHROMIUM    ?= /usr/bin/chromium

PLUGINS  := ema-cross rsi-reversion breakout rules
FIXTURES := looper memory-grower recursion panicker remote-ref wasi-importer wrong-exports costly-schema slow-warmup stretch-skipper

# Tests find the binary and the built plugins through these.
export STRATBOX_BIN         := $(CURDIR)/$(BIN)
export STRATBOX_PLUGIN_DIR  := $(CURDIR)/$(PLUGIN_DIR)
export STRATBOX_FIXTURE_DIR := $(CURDIR)/$(FIXTURE_DIR)
export STRATBOX_SCHEMATHESIS := $(CURDIR)/$(VENV)/bin/st
# The UI's end-to-end tests drive this browser (Debian's chromium).
export STRATBOX_CHROMIUM    := $(CHROMIUM)

.PHONY: all setup plugins fixtures build release run demo-data demo test test-rust venv bench wrk lint fmt clean \
	ui ui-deps ui-api ui-dev ui-test ui-bench chromium schemas screenshots

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

## run: the host, its control API and the dashboard (config/stratbox.yaml)
## with the demo bots of config/bots as paper bots on accelerated synthetic
## feeds (no network needed), from the release build. Prints the dashboard's
## address and, on the first start at a terminal, an admin token.
run: release plugins ui demo-data
	$(RELEASE_BIN) serve --config config/stratbox.yaml

## demo-data: the data set BTCUSDT/1m (500,000 synthetic candles) in the
## data directory `make run` serves, made once.
demo-data: release
	@test -f data/datasets/BTCUSDT_1m.arrow || { mkdir -p $(DEMO_DIR) && \
		$(RELEASE_BIN) data synth --symbol BTCUSDT --timeframe 1m --count 500000 --seed 42 --out $(DEMO_DIR)/demo-1m.csv && \
		$(RELEASE_BIN) data import $(DEMO_DIR)/demo-1m.csv --symbol BTCUSDT --timeframe 1m --data-dir data; }

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

## test: every test: the Rust workspace (plugins, fixtures and the API
## fuzzer set up first), then the UI's.
test: test-rust ui-test

test-rust: build plugins fixtures venv
	$(CARGO) test --workspace

## venv: schemathesis (from PyPI) for the OpenAPI fuzz test.
venv:
	@test -x $(VENV)/bin/st || { python3 -m venv $(VENV) && \
		$(VENV)/bin/pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION); }

## bench: throughput and latency benchmarks (release build); figures in README.
## The API benchmark loads the server with wrk, installed here if missing.
bench: plugins wrk
	$(CARGO) bench -p stratbox-host --bench plugin_runtime --bench backtest --bench store --bench live --bench binance --bench api
	$(MAKE) ui-bench

## wrk: the HTTP load generator of the API benchmark (Debian package).
wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; } \
		|| { sudo apt-get update -qq && sudo apt-get install -y -qq wrk; }

## ui-deps: the UI's npm packages, exactly as the committed lock file says.
ui-deps: $(UI_DEPS)
$(UI_DEPS): $(UI)/package-lock.json
	cd $(UI) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## ui: the dashboard, built into ui/dist (served by `stratbox serve` at /).
ui: ui-deps
	cd $(UI) && npm run --silent build

## schemas: regenerate the committed JSON Schemas and OpenAPI document from
## the Rust types, and the UI's typed client from the document.
schemas: ui-deps
	STRATBOX_UPDATE_SCHEMAS=1 $(CARGO) test -p stratbox-host --test schemas
	cd $(UI) && npm run --silent api

## ui-api: the UI's typed client regenerated from schemas/openapi.json.
ui-api: ui-deps
	cd $(UI) && npm run --silent api

## ui-dev: the Vite dev server on http://localhost:5173, proxying the API
## to a host on 127.0.0.1:8080 (start one with `make run`).
ui-dev: ui-deps
	cd $(UI) && npm run dev

## chromium: Debian's browser for the UI's end-to-end tests.
chromium:
	@test -x $(CHROMIUM) || { apt-get update -qq && apt-get install -y -qq chromium; } \
		|| { sudo apt-get update -qq && sudo apt-get install -y -qq chromium; }

## ui-test: the typed client matches the API document, type checks,
## component tests (Vitest) and end-to-end tests (Playwright driving
## headless Chromium against a real `stratbox serve`).
ui-test: ui build plugins chromium
	cd $(UI) && npm run --silent api:check && npm test && npm run e2e

## screenshots: the README's screenshots (docs/screenshots), taken by the
## end-to-end run against a live host.
screenshots: ui build plugins chromium
	cd $(UI) && STRATBOX_UPDATE_SCREENSHOTS=1 npx playwright test screenshots

## ui-bench: the dashboard's bundle size, time to data, longest task and
## memory with 1,000 bots and 200 events/s.
ui-bench: ui release plugins chromium
	cd $(UI) && STRATBOX_BIN=$(CURDIR)/$(RELEASE_BIN) npm run bench

## lint: formatting and clippy with warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
