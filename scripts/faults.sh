#!/usr/bin/env bash
# The fault-injection suite (services/harness/faults), full size: every service of
# bin/ as its own process, a private ClickHouse (started and stopped by the
# suite), steady simulated load, and per scenario a check from ClickHouse
# that events in = events stored and the outcome set equals the run
# without faults. `make test` runs the short version of the same suite.
#
#   scripts/faults.sh            full suite (kills one by one, NATS restart,
#                                ClickHouse down 60 s, malformed HL7 and
#                                FHIR flood, idle connections up to the limit)
#   FAULTS_RUN=nats scripts/faults.sh    only the scenarios matching a -run pattern
set -euo pipefail
cd "$(dirname "$0")/.."
for b in hinscore mllp-ingest fhir-ingest atna-ingest linker chwriter; do
	[ -x "bin/$b" ] || { echo "faults: bin/$b is missing: run make build" >&2; exit 1; }
done
export HINSCORE_FAULTS=full HINSCORE_FAULTS_BIN=$PWD/bin
run=TestFaults
[ -z "${FAULTS_RUN:-}" ] || run="TestFaults/.*${FAULTS_RUN}"
mkdir -p out
echo "faults: full suite, services from bin/, a private ClickHouse; log in out/faults.txt"
(cd services/harness/faults && go test -count=1 -timeout 30m -run "$run" -v .) 2>&1 | tee out/faults.txt | grep -E '^(=== RUN|\s*--- |PASS|FAIL|ok|simulator:|\s+faults_test)' 
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] && echo "faults: every scenario passed" || echo "faults: FAILED (out/faults.txt)"
exit "$status"
