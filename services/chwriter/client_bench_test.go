package chwriter_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/lib/domain/testenv"
)

// BenchmarkWriterVsClickHouseClient inserts the same 200,000 events twice,
// into two fresh databases with the full schema (materialized views
// included): once as TSV on the stdin of clickhouse-client (the native
// insert that is the physical limit), once through the writer from a full
// EVENTS stream (pull, decode, batch, insert, ack). It reports both rates
// and the writer's share of the limit (target: at least 70%), and beside
// them the rate at which the stream can be read at all (no ack, no work),
// the bus's own ceiling for any writer.
func BenchmarkWriterVsClickHouseClient(b *testing.B) {
	if _, err := exec.LookPath("clickhouse-client"); err != nil {
		testenv.Missing(b, "clickhouse-client is not installed (scripts/clickhouse.sh installs it): %v", err)
	}
	const n = 200_000
	events := make([]*hinscorev1.ExchangeEvent, n)
	for i := range events {
		events[i] = genEvent(i)
	}
	tsv := eventsTSV(events)
	var clientRate, writerRate, busRate float64
	for range b.N {
		// clickhouse-client, into a database of its own.
		_, cd := chtest.Database(b)
		cmd := exec.Command("clickhouse-client", "--host", cd.Host, "--port", strconv.Itoa(cd.Port),
			"--user", cd.User, "--database", cd.Database,
			"--query", "INSERT INTO exchange_events ("+eventColumns+") FORMAT TabSeparated")
		if cd.Password != "" {
			cmd.Args = append(cmd.Args, "--password", cd.Password)
		}
		cmd.Stdin = bytes.NewReader(tsv)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("clickhouse-client: %v\n%s", err, out)
		}
		clientRate = n / time.Since(start).Seconds()

		// The writer, from JetStream.
		h := newHarness(b)
		msgs := make([]*nats.Msg, 0, n)
		for _, ev := range events {
			msgs = append(msgs, eventMsg(b, ev))
		}
		h.publish(msgs...)
		// The ceiling of any reader of the stream: no ack, no work.
		busRate = consumeRate(b, h, n, jetstream.AckNonePolicy)
		cfg := chwriter.DefaultConfig()
		cfg.FlushInterval, cfg.RollupEvery = 200*time.Millisecond, 0
		reg := prometheus.NewRegistry()
		start = time.Now()
		h.startWriter(cfg, reg)
		for metricSum(b, reg, "hinscore_chwriter_rows_inserted_total") < n {
			if time.Since(start) > 2*time.Minute {
				b.Fatal("the writer did not write every event within 2 minutes")
			}
			time.Sleep(2 * time.Millisecond)
		}
		h.waitAcked(bus.StreamEvents, "chwriter_events")
		writerRate = n / time.Since(start).Seconds()
		if got := h.count("SELECT count() FROM events"); got != n {
			b.Errorf("writer database holds %d events, want %d", got, n)
		}
	}
	b.ReportMetric(writerRate, "writer_rows/s")
	b.ReportMetric(clientRate, "clickhouse_client_rows/s")
	b.ReportMetric(100*writerRate/clientRate, "writer_pct_of_client")
	b.ReportMetric(70, "target_pct")
	// Where the bus alone already stands against the same target: a
	// writer cannot read the stream faster than a reader that does nothing.
	b.ReportMetric(busRate, "bus_noack_limit_rows/s")
	b.ReportMetric(100*busRate/clientRate, "bus_noack_pct_of_client")
	b.Logf("writer %.0f rows/s = %.1f%% of clickhouse-client's %.0f (target 70%%); reading the stream alone, no ack and no work, %.0f msgs/s = %.1f%% of it",
		writerRate, 100*writerRate/clientRate, clientRate, busRate, 100*busRate/clientRate)
}

const eventColumns = `event_id, network, format, message_id, message_type, role, request_kind, correlation_key,
 in_reply_to, requester_org, responder_org, event_time, event_time_ms, ingest_time, status, ack_code, reason_codes,
 exception_code, patient_token, patient_key_id, record_count, raw_subject, raw_seq, partition, mapping_version`

// eventsTSV renders events as the writer would store them, in TabSeparated.
func eventsTSV(events []*hinscorev1.ExchangeEvent) []byte {
	esc := strings.NewReplacer("\\", "\\\\", "\t", "\\t", "\n", "\\n")
	arr := strings.NewReplacer("\\", "\\\\", "'", "\\'", "\t", "\\t", "\n", "\\n")
	dt := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05") }
	lower := func(s, prefix string) string {
		if s == prefix+"UNSPECIFIED" {
			return ""
		}
		return strings.ToLower(strings.TrimPrefix(s, prefix))
	}
	var buf bytes.Buffer
	for _, e := range events {
		codes := make([]string, len(e.GetReasonCodes()))
		for i, c := range e.GetReasonCodes() {
			codes[i] = "'" + arr.Replace(c) + "'"
		}
		fields := []string{e.GetEventId(), e.GetNetwork(), lower(e.GetFormat().String(), "FORMAT_"), e.GetMessageId(),
			e.GetMessageType(), lower(e.GetRole().String(), "ROLE_"), e.GetRequestKind(), e.GetCorrelationKey(),
			e.GetInReplyTo(), e.GetRequesterOrg(), e.GetResponderOrg(), dt(e.GetEventTimeMs()),
			strconv.FormatInt(e.GetEventTimeMs(), 10), dt(e.GetIngestTimeMs()), lower(e.GetStatus().String(), "STATUS_"),
			e.GetAckCode(), "[" + strings.Join(codes, ",") + "]", e.GetExceptionCode(),
			e.GetPatientToken(), e.GetPatientKeyId(), fmt.Sprint(e.GetRecordCount()), e.GetRawSubject(),
			fmt.Sprint(e.GetRawSeq()), fmt.Sprint(e.GetPartition()), e.GetMappingVersion()}
		for i, f := range fields {
			if i > 0 {
				buf.WriteByte('\t')
			}
			if !strings.HasPrefix(f, "[") {
				f = esc.Replace(f)
			}
			buf.WriteString(f)
		}
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}
