#!/usr/bin/env bash
# Runs every module's Go tests against a local ClickHouse (started with
# scripts/clickhouse.sh when HINSCORE_TEST_CLICKHOUSE_DSN is not set) and
# embedded NATS servers that the tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

# A test that needs something this machine lacks (ClickHouse, Chromium,
# clickhouse-server) fails rather than skips: a passing run means every
# test ran (lib/domain/testenv).
export HINSCORE_TEST_REQUIRE=1

started=""
if [ -z "${HINSCORE_TEST_CLICKHOUSE_DSN:-}" ]; then
	was_running=$(scripts/clickhouse.sh status 2>/dev/null || true)
	HINSCORE_TEST_CLICKHOUSE_DSN=$(scripts/clickhouse.sh start)
	[ -n "$was_running" ] || started=yes
fi
export HINSCORE_TEST_CLICKHOUSE_DSN
[ -z "$started" ] || trap 'scripts/clickhouse.sh stop' EXIT
echo "test: ClickHouse at $HINSCORE_TEST_CLICKHOUSE_DSN"
# The browser tests (scorecard pages, investigator views) use headless Chromium.
if [ -z "${HINSCORE_TEST_CHROMIUM:-}" ]; then
	HINSCORE_TEST_CHROMIUM=$(scripts/chromium.sh)
fi
export HINSCORE_TEST_CHROMIUM
echo "test: Chromium at $HINSCORE_TEST_CHROMIUM"

failed=()
for m in "$@"; do
	echo "=== test $m"
	if ! (cd "$m" && go test ${GO_TEST_FLAGS:--count=1 -timeout 15m} ./...); then
		failed+=("$m")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "test: FAILED in ${failed[*]}"
	exit 1
fi
echo "test: every module passed"
