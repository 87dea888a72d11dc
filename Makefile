# Two commands matter: `make run` and `make test` (see README.md).
# Both find a PostgreSQL or start one (cmd/devdb): the one at DATABASE_URL,
# else docker compose where a Docker engine runs, else a private cluster
# from locally installed PostgreSQL server binaries under .pgdata/.

DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/flashsale?sslmode=disable
# Tests create and drop their own databases on this server.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: run build test test-failover fuzz vet fmt-check sqlc-check layout-check example-tools compose-check browser pgbouncer openapi-lint generate bench db-stop clean psql migrate-status

run: build
	@url="$$(go run ./cmd/devdb ensure -url '$(DATABASE_URL)')" && DATABASE_URL="$$url" exec ./bin/server

build:
	go build -ldflags "-X main.version=$(VERSION)" -o bin/server ./cmd/server

test: vet fmt-check sqlc-check layout-check compose-check openapi-lint browser pgbouncer example-tools
	@url="$$(go run ./cmd/devdb ensure -url '$(TEST_DATABASE_URL)')" && \
		TEST_DATABASE_URL="$$url" go test -race -count=1 -timeout 20m ./... && \
		$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME) TEST_DATABASE_URL="$$url"

# Fuzz targets (package and name); `make test` runs each for TEST_FUZZTIME,
# `make fuzz` for FUZZTIME. An input that fails is written under the
# package's testdata/fuzz/ and replayed by every later `go test`: commit it
# with the fix.
FUZZ_TARGETS = ./internal/httpapi:FuzzCheckout ./internal/httpapi:FuzzPurchase \
	./internal/httpapi:FuzzPaths ./internal/httpapi:FuzzErrorMapping
TEST_FUZZTIME ?= 3s
FUZZTIME ?= 1m
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} for $(FUZZTIME)"; \
		out="$$(go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}" 2>&1)" || \
			{ echo "$$out" | tail -40; exit 1; }; \
	done

vet:
	go vet ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
		if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# Fails when db/ does not match what sqlc generates from migrations/ and queries/.
sqlc-check:
	go tool sqlc diff

# The sale page's test (internal/httpapi/page_test.go) drives a headless
# Chromium; it fails, never skips, without one. Names as that test looks
# them up.
BROWSERS = chromium chromium-browser google-chrome google-chrome-stable
browser:
	@for b in $(BROWSERS); do command -v $$b >/dev/null 2>&1 && exit 0; done; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "browser: no Chromium found, installing Debian's chromium package"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else echo "make test needs a Chromium or Chrome browser for the sale page test: install Debian's chromium package (apt-get install chromium) or Google Chrome."; exit 1; fi

# The tests behind a transaction pooler (internal/pooltest, and
# internal/pgbouncer's own) run Debian's pgbouncer; they fail, never skip,
# without it. Looked up as internal/pgbouncer does.
pgbouncer:
	@command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "pgbouncer: not found, installing Debian's pgbouncer package"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y pgbouncer; \
	else echo "make test needs PgBouncer for the tests behind a transaction pooler: install Debian's pgbouncer package (apt-get install pgbouncer)."; exit 1; fi

# The documents' examples (docs/examples_test.go) run the commands a
# reader types; it fails, never skips, without them. Debian's packages.
EXAMPLE_TOOLS = curl jq openssl psql python3
example-tools:
	@missing=""; for c in $(EXAMPLE_TOOLS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "example-tools: missing$$missing, installing Debian's curl jq openssl postgresql-client python3"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y curl jq openssl postgresql-client python3; \
	else echo "make test needs$$missing for the documents' examples: install Debian's curl jq openssl postgresql-client python3."; exit 1; fi

generate:
	go tool sqlc generate

# Fails when a package other than internal/sale/store, or its tests,
# imports the generated code (db/): the store is its one door.
layout-check:
	@out="$$(go list -f '{{.ImportPath}}: {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... | \
		grep -E ' github.com/flashsale/flashsale/db( |$$)' | cut -d: -f1 | grep -vx 'github.com/flashsale/flashsale/internal/sale/store')"; \
		if [ -n "$$out" ]; then echo "only internal/sale/store may import github.com/flashsale/flashsale/db; these do too:"; echo "$$out"; exit 1; fi

# Fails on an invalid compose file. First compose-go, the library Compose v2
# loads files with, pinned in go.mod (cmd/composecheck): it needs nothing
# but Go, so a fresh machine checks the file too; then the Compose that is
# installed, if any (the docker compose plugin or standalone docker-compose).
COMPOSE_CHECK_FILE ?= docker-compose.yml
compose-check:
	@go run ./cmd/composecheck '$(COMPOSE_CHECK_FILE)'
	@if docker compose version >/dev/null 2>&1; then \
		docker compose -f '$(COMPOSE_CHECK_FILE)' config -q && echo "$(COMPOSE_CHECK_FILE): valid (docker compose)"; \
	elif command -v docker-compose >/dev/null 2>&1; then \
		docker-compose -f '$(COMPOSE_CHECK_FILE)' config -q && echo "$(COMPOSE_CHECK_FILE): valid (docker-compose)"; fi

# The OpenAPI document (internal/httpapi/openapi.yaml) against Redocly's
# recommended rules, warnings as errors (redocly.yaml says which rule is off
# and why). Redocly CLI comes from npm at the version
# tools/redocly/package-lock.json pins, installed there by npm ci (again
# whenever the lock file changes); its 1.x line, because 2.x needs a
# Node.js newer than Debian's. Node.js and npm are Debian's nodejs and npm
# packages, installed when missing, as the browser target does Chromium.
REDOCLY = tools/redocly/node_modules/.bin/redocly
openapi-lint:
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "openapi-lint: no Node.js and npm found, installing Debian's nodejs and npm packages"; \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm || exit 1; \
		else echo "make test needs Node.js and npm for the OpenAPI lint: install Debian's nodejs and npm packages (apt-get install nodejs npm)."; exit 1; fi; \
	fi
	@[ tools/redocly/node_modules/.package-lock.json -nt tools/redocly/package-lock.json ] || \
		npm ci --prefix tools/redocly --no-audit --no-fund --loglevel=error
	@REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(REDOCLY) lint --format=stylish internal/httpapi/openapi.yaml

# Operator commands on the database `make run` uses (DATABASE_URL above),
# from any shell: `make psql`, `make psql SQL='table sale_summary'`,
# `make migrate-status` (the server's own goose provider; see docs/operating.md).
psql:
	@DATABASE_URL='$(DATABASE_URL)'; psql "$$DATABASE_URL" $${SQL:+-c "$$SQL"}

migrate-status: build
	@DATABASE_URL='$(DATABASE_URL)' ./bin/server migrate status

# The full benchmark (about four minutes; never part of `make test`), as
# deployed: the HTTP ceiling (cmd/httpceiling, the server's Echo stack
# answering sold_out without a database), then per configuration (the
# default sale of 10,000 single-unit items, and 10,000 units over 100
# items) a fresh database and freshly started bin/server, herd from the
# moment /readyz answers, storm (first 10 s against the rest), the storm
# beside readers (first configuration), and the PostgreSQL baseline (the
# database ceiling). No ANALYZE, CHECKPOINT or warm-up. Prints ceilings,
# ratios, targets and invariants in one table, writes
# bench/results/latest.json, exits 1 when an invariant fails.
# `make bench SERVERS=4 POOLER=pgbouncer` runs four servers behind a
# PgBouncer; other flags go through BENCH_FLAGS, e.g.
# make bench BENCH_FLAGS='-storm 5s -configs 10000x100 -out /tmp/r.json'.
BENCH_DATABASE_URL ?= $(TEST_DATABASE_URL)
BENCH_FLAGS ?=
SERVERS ?= 1
POOLER ?= none
bench: build
	go build -o bin/loadgen ./cmd/loadgen
	go build -o bin/httpceiling ./cmd/httpceiling
	@url="$$(go run ./cmd/devdb ensure -url '$(BENCH_DATABASE_URL)')" && \
		./bin/loadgen -admin-db "$$url" -server-bin bin/server -ceiling-bin bin/httpceiling \
			-servers '$(SERVERS)' -pooler '$(POOLER)' $(BENCH_FLAGS)

db-stop:
	go run ./cmd/devdb stop

clean:
	rm -rf bin

# Failover under pg_auto_failover, end to end (about a minute, so not part of
# `make test`; internal/failover/autofailover_test.go): a monitor and two
# nodes with the tuned timeouts of docs/operating.md (Failover), a herd
# through the server, the primary's node lost. Prints acknowledged writes
# missing, the 503 window, time to first 201, oversold and cap breaches.
# It fails, never skips, without Debian's postgresql-15-auto-failover.
test-failover:
	@command -v pg_autoctl >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "test-failover: pg_autoctl not found, installing Debian's postgresql-15-auto-failover package"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-15-auto-failover; \
	else echo "make test-failover needs pg_auto_failover: install Debian's postgresql-15-auto-failover package (apt-get install postgresql-15-auto-failover)."; exit 1; fi
	go test -C internal/failover -tags autofailover -count=1 -timeout 10m -run '^TestAutoFailover$$'
