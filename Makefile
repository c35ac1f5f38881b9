# Thin wrappers over the commands the README shows. Nothing here does more than the README.
GOLANGCI_LINT_VERSION := v2.15.0
# The OpenAPI linter's version is pinned in .ci/redocly/package.json and package-lock.json.
REDOCLY_DIR := .ci/redocly
TEST_MYSQL_DSN ?=
export TEST_MYSQL_DSN

.PHONY: run test test-storage lint lint-api generate check-generated bench tools

## run: serve on :8080 with the embedded SQLite file under ./data
run:
	go run ./cmd/server

## test: every test, race detector on, in random order. The MySQL and Redis suites run against the
## servers TEST_MYSQL_DSN and TEST_REDIS_URL name; without them, on testcontainers when a Docker
## engine answers, and otherwise they skip (fail with CI=true).
## -timeout: the end-to-end package (real servers on both databases, under the race detector,
## beside the other packages on 2 cores) takes longer than go test's default of 10 minutes.
test:
	go test -race -shuffle=on -count=1 -timeout 25m ./...

## test-storage: the object storage suites, the S3 one against versitygw, built once (5 to 10
## minutes) into $(VERSITYGW_DIR); the tests start it on a free port with a temporary folder
VERSITYGW_VERSION := v1.8.0
VERSITYGW_DIR := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/postsvc-tools/versitygw-$(VERSITYGW_VERSION)
test-storage:
	@test -x "$(VERSITYGW_DIR)/versitygw" || GOBIN="$(VERSITYGW_DIR)" go install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)
	go test -race -count=1 ./adapters/storage/... ./test/contract/storage/...

## lint: gofmt, go vet and golangci-lint with the checked-in configuration
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above need formatting"; exit 1; }
	go vet ./...
	golangci-lint run ./...

## lint-api: redocly lint of the OpenAPI document (Redocly's recommended rules, strict), with the
## pinned @redocly/cli installed from the lock file (needs Node.js 20.19+ and npm; telemetry off)
lint-api:
	cd $(REDOCLY_DIR) && npm ci --no-audit --no-fund --loglevel=error
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		$(REDOCLY_DIR)/node_modules/.bin/redocly lint --config $(REDOCLY_DIR)/redocly.yaml adapters/httpapi/openapi.yaml

## generate: regenerate wire_gen.go (and every other go:generate output)
generate:
	go generate ./...

## check-generated: fail when generated files differ from what the generators produce
check-generated: generate
	@git diff --exit-code -- '*wire_gen.go' || { echo "generated code is stale: run make generate and commit"; exit 1; }

## bench: every Go benchmark of the module (200 ms each), then the load run against the MySQL server of
## TEST_MYSQL_DSN, which writes bench/REPORT.md and bench/ratios.png (LOAD_FLAGS: go run ./test/load -h)
bench:
	go test -run '^$$' -bench . -benchmem -benchtime=200ms ./...
	go run ./test/load $(LOAD_FLAGS)

## fuzz: every fuzz target (found by .ci/fuzz in the *_test.go files), one after another, for
## FUZZTIME each (make fuzz FUZZTIME=5m; CI runs them for 10s); fails on any finding
FUZZTIME ?= 60s
.PHONY: fuzz
fuzz:
	FUZZTIME=$(FUZZTIME) .ci/fuzz

## tools: install the pinned linter
tools:
	go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
