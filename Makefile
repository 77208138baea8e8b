# hinscore — run `make help` for the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

MODULES := proto schemas services/lib/domain services/lib/service services/lib/bus services/lib/hl7v2 services/lib/syslog services/lib/atna services/lib/soap services/lib/chstore \
           services/mllp-ingest services/atna-ingest services/fhir-ingest services/linker services/chwriter \
           services/scorecard services/api services/harness/simulator services/harness/faults services/harness/cluster services/hinscore
# Modules that build a binary of their own (<module>/cmd/<name>): the
# deployable services, then the traffic generator of the harnesses.
BINARIES := services/hinscore services/mllp-ingest services/atna-ingest services/fhir-ingest services/linker \
            services/chwriter services/scorecard services/api services/harness/simulator

TOOLS := $(CURDIR)/.tools/bin
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
GO_TEST_FLAGS ?= -count=1 -timeout 15m

.PHONY: help build generate checkgenerate lint test gotest demo bench faults cluster-test clean tools

help: ## List the targets.
	@grep -hE '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## Build every binary into bin/.
	@mkdir -p bin
	@for b in $(BINARIES); do \
	  name=$$(basename $$b); \
	  echo "build bin/$$name"; \
	  (cd $$b && go build -trimpath -o $(CURDIR)/bin/$$name ./cmd/$$name); \
	done

tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go ## Install the pinned code generators into .tools/bin.

$(TOOLS)/buf:
	GOBIN=$(TOOLS) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

# The READMEs whose configuration table is generated from the services'
# configuration structs (services/hinscore/cmd/configdoc).
CONFIG_READMES := $(foreach s,mllp-ingest atna-ingest fhir-ingest linker chwriter scorecard api,services/$(s)/README.md)

generate: tools ## Regenerate Go code from proto/ (buf) and the READMEs' configuration tables.
	cd proto && PATH=$(TOOLS):$$PATH buf lint && PATH=$(TOOLS):$$PATH buf generate
	cd services/hinscore && go run ./cmd/configdoc

checkgenerate: generate ## Fail when the committed generated code or a README's configuration table is stale.
	@if [ -n "$$(git status --porcelain -- proto/gen $(CONFIG_READMES))" ]; then \
	  git status --porcelain -- proto/gen $(CONFIG_READMES); echo "checkgenerate: generated files are stale, run make generate and commit"; exit 1; \
	fi
	@echo "checkgenerate: proto/gen and the configuration tables are up to date"

lint: ## gofmt and go vet over every module.
	@bad=$$(gofmt -l $(MODULES)); if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi
	@for m in $(MODULES); do echo "vet $$m"; (cd $$m && go vet ./...); done

test: lint checkgenerate build ## Lint, check generated code, build, then every module's tests (the short fault suite included) against a local ClickHouse and embedded NATS.
	@HINSCORE_FAULTS_BIN=$(CURDIR)/bin scripts/test.sh $(MODULES)

gotest: ## Only the Go tests (local ClickHouse started when needed).
	@scripts/test.sh $(MODULES)

demo: build ## Simulated traffic through the whole pipeline; prints the scorecards, checks every outcome against the simulator's truth (fails on a difference).
	HINSCORE_CHROMIUM=$$(scripts/chromium.sh) bin/hinscore demo

faults: build ## Fault-injection suite, full size: services as processes, kill -9 of each, NATS restart, ClickHouse down 60 s, malformed flood, idle connections.
	@scripts/faults.sh

cluster-test: ## The pipeline on a live ClickHouse cluster (scripts/chcluster.sh: ZooKeeper, 2 shards x 2 replicas of 18.16, TLS): start, services/harness/cluster's TestCluster* tests, stop.
	@scripts/chcluster.sh start >/dev/null
	@trap 'scripts/chcluster.sh stop' EXIT; start=$$(date +%s); \
	  export $$(scripts/chcluster.sh env) HINSCORE_TEST_CHCLUSTER_REQUIRED=1; \
	  rc=0; (cd services/harness/cluster && go test -count=1 -timeout 40m -v -run '^TestCluster' .) || rc=$$?; \
	  echo "cluster-test: $$(( $$(date +%s) - start )) s"; exit $$rc

bench: build ## Benchmarks with the physical limits measured in the same run.
	@scripts/bench.sh $(MODULES)

clean: ## Remove build outputs and demo output.
	rm -rf bin out .data
