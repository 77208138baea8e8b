#!/usr/bin/env bash
# Benchmarks: first the physical limits of this machine (raw JetStream
# publish/consume on an embedded server, raw clickhouse-client native insert),
# then every module's benchmarks, then the end-to-end run (services/harness/faults
# cmd/e2ebench: each service of bin/ as its own process, steady simulated
# traffic at doubling rates until the pipeline falls behind, answer-to-row
# latency at half the sustained load, peak RSS of each service), so that each
# figure can be read next to the limit measured in the same run. Output: a
# table on stdout, out/bench.txt (raw lines) and out/bench.json (every figure
# with its unit and the limit it is compared to).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
report=out/bench.txt
: >"$report"

dsn=$(scripts/clickhouse.sh start)
port=$(echo "$dsn" | sed -E 's#clickhouse://[^:]+:([0-9]+)/.*#\1#')
export HINSCORE_TEST_CLICKHOUSE_DSN=$dsn

echo "== limits (load average $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$report"
(cd services/lib/bus && go test -run '^$' -bench Limit -benchtime 300000x .) | grep -E '^Benchmark' | tee -a "$report"

rows=2000000
tsv=$(mktemp)
trap 'rm -f "$tsv"' EXIT
awk -v n=$rows 'BEGIN { for (i = 0; i < n; i++) printf "%d\tnet%d\t%d\n", i, i % 3, i * 7 }' >"$tsv"
ch() { clickhouse-client --host 127.0.0.1 --port "$port" "$@"; }
ch --query "CREATE DATABASE IF NOT EXISTS hinscore_bench"
ch --query "DROP TABLE IF EXISTS hinscore_bench.raw_insert"
ch --query "CREATE TABLE hinscore_bench.raw_insert (id UInt64, network String, v UInt64) ENGINE = MergeTree ORDER BY id"
start=$(date +%s.%N)
ch --query "INSERT INTO hinscore_bench.raw_insert (id, network, v) FORMAT TabSeparated" <"$tsv"
end=$(date +%s.%N)
rate=$(awk -v n=$rows -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", n / (e - s) }')
ns=$(awk -v n=$rows -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", (e - s) * 1e9 / n }')
# In the format of a Go benchmark line, so the report reads it like the others.
echo "BenchmarkLimitClickHouseClientInsert  $rows  $ns ns/op  $rate rows/s" | tee -a "$report"
ch --query "DROP DATABASE hinscore_bench"

echo "== module benchmarks" | tee -a "$report"
for m in "$@"; do
	# The load average beside each module's figures: another process on the
	# machine's two cores shows up in them.
	echo "# $m, load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$report"
	# The limits ran above, with a fixed count.
	(cd "$m" && go test -run '^$' -bench . -skip Limit -benchtime 2s ./... 2>&1) | grep -E '^Benchmark' | tee -a "$report" || true
done

echo "== end to end (services as processes, doubling steady rates)" | tee -a "$report"
go build -C services/harness/faults -o "$PWD/bin/e2ebench" ./cmd/e2ebench
bin/e2ebench --bin bin --clickhouse "$dsn" --clickhouse-pid "$(scripts/clickhouse.sh pid)" --bench-txt "$report" --out out/bench.json
echo "bench: raw lines in $report, figures in out/bench.json"
