# cdc2s3: the two commands that matter are `make demo` (see it work in about
# a minute) and `make test` (everything CI runs). Both install what they
# need: PostgreSQL 15 through scripts/ensure-postgres.sh, versitygw through
# scripts/tools.sh, DuckDB for the test oracle through npm ci (the tests).

SHELL   := bash
GO      ?= go
BIN     ?= bin/cdc2s3
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build demo test test-unit tools fmt clean soak

all: build

## build: compile the binary into bin/cdc2s3
# A release build: no faultpoints tag, so internal/faultpoint compiles out.
build:
	$(GO) build -trimpath -ldflags '-X main.version=$(VERSION)' -o $(BIN) ./cmd/cdc2s3

## demo: throwaway PostgreSQL + generate + run for ~30s, then inspect ./demo-output
demo:
	bash scripts/demo.sh

## tools: build the external programs the integration tests run (versitygw)
tools:
	bash scripts/tools.sh

## test: install PostgreSQL 15 if needed, pre-build versitygw, check formatting, vet, run every test
test: tools
	bash scripts/ensure-postgres.sh
	@unformatted=$$("$$($(GO) env GOROOT)/bin/gofmt" -l .); if [ -n "$$unformatted" ]; then echo "not gofmt-ed (run make fmt): $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags faultpoints ./...
	$(GO) test -count=1 -tags faultpoints ./internal/faultpoint
	$(GO) test -count=1 -timeout 40m ./...

## test-unit: the tests that need no server (go test -short), in under a minute; the integration tests skip
test-unit:
	$(GO) test -short -count=1 ./...

## fmt: format the Go code
fmt:
	$(GO) fmt ./...

## clean: remove the binary and the demo output
clean:
	rm -rf bin demo-output

## soak: the crash, fault and restart mix for SOAK (default 5m), then the source/bucket comparison
SOAK ?= 5m
soak: tools
	bash scripts/ensure-postgres.sh
	set -o pipefail; CDC2S3_SOAK_DURATION=$(SOAK) $(GO) test -tags soak -count=1 -timeout 0 -run TestSoak -v ./internal/e2e 2>&1 | grep -Ev '^=== |rows match'

## bench: throwaway PostgreSQL + versitygw; full load vs COPY, drain vs pg_recvlogical, latency; writes docs/benchmarks.md
.PHONY: bench
bench:
	bash scripts/bench.sh
