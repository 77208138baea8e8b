package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus"
)

// BenchmarkStoragePerMillion runs simulated traffic through the pipeline on
// a 3-node cluster with R3 streams and reports what one million exchanges
// (requests with all their messages) take: in each JetStream stream (bytes
// per replica; the cluster holds 3 copies) and in ClickHouse (compressed
// bytes on disk of the database's parts, after merging, per replica).
// Run once: go test -run '^$' -bench StoragePerMillion -benchtime 1x
func BenchmarkStoragePerMillion(b *testing.B) {
	const requests = 20000 // large enough that parts' fixed overhead does not dominate
	plan := generate(b, requests, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := startStage(b, ctx, plan.Networks(), topology{linkers: 1, writers: 1, partitions: 4, idle: 3 * time.Second})
	b.ResetTimer()
	for range b.N {
		stats, err := plan.Send(ctx, s.ingest.Addrs())
		if err != nil {
			b.Fatal(err)
		}
		if stats.Failed != 0 {
			b.Fatalf("simulator: %s", stats)
		}
	}
	s.waitStored(ctx, counts{events: uint64(plan.ValidMessages()), outcomes: uint64(len(plan.Requests()))})
	b.StopTimer()

	perMillion := 1e6 / float64(len(plan.Requests()))
	var total uint64
	for _, name := range []string{bus.StreamRaw, bus.StreamEvents, bus.StreamOutcomes, bus.StreamDLQ} {
		st, err := s.admin.Stream(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		total += info.State.Bytes
		b.ReportMetric(float64(info.State.Bytes)*perMillion/(1<<20), "MiB-"+name+"/M-exchanges")
	}
	b.ReportMetric(float64(total)*perMillion/(1<<20), "MiB-jetstream/M-exchanges")

	tables, err := s.ch.Query(ctx, `SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree'`)
	if err != nil {
		b.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var name string
		if err := tables.Scan(&name); err != nil {
			b.Fatal(err)
		}
		names = append(names, name)
	}
	tables.Close()
	for _, table := range names {
		if err := s.ch.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			b.Fatal(err)
		}
	}
	var parts, rows uint64
	if err := s.ch.QueryRow(ctx, `SELECT sum(bytes_on_disk), sum(rows) FROM system.parts
		WHERE database = currentDatabase() AND active`).Scan(&parts, &rows); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(parts)*perMillion/(1<<20), "MiB-clickhouse/M-exchanges")
	b.ReportMetric(float64(plan.ValidMessages())/float64(len(plan.Requests())), "messages/exchange")
	var core uint64
	if err := s.ch.QueryRow(ctx, `SELECT sum(bytes_on_disk) FROM system.parts WHERE database = currentDatabase() AND active
		AND table IN ('exchange_events', 'exchange_outcomes', 'outcome_steps')`).Scan(&core); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(core)*perMillion/(1<<20), "MiB-clickhouse-core/M-exchanges")
	b.Logf("%d exchanges, %d valid messages; ClickHouse %d rows in %d bytes on disk", len(plan.Requests()), plan.ValidMessages(), rows, parts)
}
