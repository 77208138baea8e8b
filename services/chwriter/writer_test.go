package chwriter_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/ids"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const waitRows = 30 * time.Second

func sumVersions(from, to int) (versions, lastSteps uint64) {
	for j := from; j < to; j++ {
		last := versionsOf(j)
		versions += last
		lastSteps += last
	}
	return versions, lastSteps
}

func sumSteps(from, to int) uint64 {
	var n uint64
	for j := from; j < to; j++ {
		last := versionsOf(j)
		n += last * (last + 1) / 2 // version v carries v steps
	}
	return n
}

// checkTruth asserts the tables and views hold exactly events [0, n) and
// outcomes [0, m) with every version, once each.
func (h *harness) checkTruth(n, m int, exactRaw bool) {
	h.t.Helper()
	versions, lastSteps := sumVersions(0, m)
	h.waitCount("SELECT count() FROM events", uint64(n), waitRows)
	// Versions arrive one after another: wait for the last of each.
	h.waitCount("SELECT sum(version) FROM outcomes", versions, waitRows)
	if got := h.count("SELECT count() FROM outcomes"); got != uint64(m) {
		h.t.Errorf("outcomes view has %d rows, want one per outcome: %d", got, m)
	}
	if exactRaw {
		// Background merges may already have collapsed versions, so the raw
		// tables hold between one row per key and one per message.
		if got := h.count("SELECT count() FROM exchange_events"); got != uint64(n) {
			h.t.Errorf("exchange_events has %d rows, want %d", got, n)
		}
		if got := h.count("SELECT count() FROM exchange_outcomes"); got < uint64(m) || got > versions {
			h.t.Errorf("exchange_outcomes has %d rows, want %d-%d", got, m, versions)
		}
		if got := h.count("SELECT count() FROM outcome_steps"); got < lastSteps || got > sumSteps(0, m) {
			h.t.Errorf("outcome_steps has %d rows, want %d-%d", got, lastSteps, sumSteps(0, m))
		}
	}
	// The view shows the latest version of each outcome, which fulfils it.
	if got := h.count("SELECT count() FROM outcomes WHERE outcome = 'fulfilled' AND ttf_ms = version * 500 AND step_count = version"); got != uint64(m) {
		h.t.Errorf("%d outcomes show their final version, want %d", got, m)
	}
	if got := h.count("SELECT count() FROM outcome_steps FINAL"); got != lastSteps {
		h.t.Errorf("outcome_steps FINAL has %d rows, want %d", got, lastSteps)
	}
	if got := h.count("SELECT uniqExact(event_id) FROM events"); got != uint64(n) {
		h.t.Errorf("events holds %d distinct ids, want %d", got, n)
	}
}

// waitAcked waits until a consumer has nothing pending and nothing unacked.
func (h *harness) waitAcked(stream, consumer string) {
	h.t.Helper()
	deadline := time.Now().Add(waitRows)
	var info *jetstream.ConsumerInfo
	for time.Now().Before(deadline) {
		if info = h.consumerInfo(stream, consumer); info.NumAckPending == 0 && info.NumPending == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("consumer %s: %d unacked, %d undelivered", consumer, info.NumAckPending, info.NumPending)
}

func (h *harness) waitReady(w *chwriter.Writer) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.Ready(h.ctx) != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := w.Ready(h.ctx); err != nil {
		h.t.Fatalf("Ready after Start: %v", err)
	}
}

func TestWriteEventsAndOutcomes(t *testing.T) {
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	w := h.startWriter(testConfig(), reg)
	const n, m = 1000, 300
	h.publish(eventMsgs(t, 0, n)...)
	h.publish(allOutcomeMsgs(t, 0, m)...)
	h.checkTruth(n, m, true)
	h.waitAcked(bus.StreamEvents, "chwriter_events")
	h.waitAcked(bus.StreamOutcomes, "chwriter_outcomes")
	if err := w.Ready(h.ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}

	versions, _ := sumVersions(0, m)
	wantRows := float64(uint64(n) + versions + sumSteps(0, m))
	if got := metricSum(t, reg, "hinscore_chwriter_rows_inserted_total"); got != wantRows {
		t.Errorf("rows_inserted_total = %v, want %v", got, wantRows)
	}
	// 1000 events at 100 rows a batch: at least 10 batches.
	if got := metricSum(t, reg, "hinscore_chwriter_batch_messages"); got < 10 {
		t.Errorf("%v batches written, want at least 10 (batches are capped at 100 rows)", got)
	}
	if got := metricSum(t, reg, "hinscore_chwriter_insert_retries_total"); got != 0 {
		t.Errorf("insert_retries_total = %v, want 0", got)
	}
}

// TestRowMapping pins every column of hand-made messages against a golden
// file: enum names, NULL times, arrays, DateTime conversion.
func TestRowMapping(t *testing.T) {
	h := newHarness(t)
	h.startWriter(testConfig(), nil)
	ev := genEvent(1)
	ev.Format = hinscorev1.Format_FORMAT_FHIR
	ev.Role = hinscorev1.Role_ROLE_NOTIFICATION
	ev.Status = hinscorev1.Status_STATUS_ERROR_TRANSIENT
	ev.AckCode, ev.ReasonText, ev.ExceptionCode = "AE", "denied under 45 CFR 171.204", "171.204"
	ev.PatientToken, ev.PatientKeyId, ev.RecordCount, ev.MappingVersion = "ab12", "k1", 3, "hl7v2-1"
	ev.ReasonCodes = []string{"urn:hinscore:ib-exception|171.204", "hl70357|207", "dq|time-no-point"} // the flag also in dq_flags
	ev.InReplyTo = "M000000"
	ev.Purpose, ev.PurposeCode = "treatment", "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1|T-TRTMNT"
	ev.RequesterCommunity, ev.ResponderCommunity = "urn:oid:1.2.3.4", "urn:oid:1.2.3.5"
	ev.Side, ev.TransactionId, ev.Untimed = hinscorev1.Side_SIDE_RESPONDING, "q:9f86d081", true
	ev.Feed, ev.SequenceSource, ev.SequenceNumber = "mllp:10.1.2.3", "hl7|EHR^HOSP_A>HIE^NETB", 4711
	bare := &hinscorev1.ExchangeEvent{EventId: ids.Event("west", []byte("bare")).String(), Network: "west"}

	answered := genOutcome(7, 2, 2)
	answered.OutcomeClass = hinscorev1.OutcomeClass_OUTCOME_CLASS_REFUSED_EXCEPTION
	answered.ExceptionCode, answered.ReasonCodes = "171.204", []string{"171.204"}
	answered.AcknowledgedAtMs, answered.HasTta, answered.TtaMs = answered.RequestedAtMs+100, true, 100
	answered.Purpose, answered.PurposeCode = "individual_access", "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1|T-IAS"
	answered.RequesterCommunity, answered.ResponderCommunity = "urn:oid:1.2.3.4", "urn:oid:1.2.3.5"
	answered.Sides, answered.SlaBusinessDays, answered.Untimed = "both", 10, true
	answered.PatientToken = "tok7"
	answered.Steps[0].Side = hinscorev1.Side_SIDE_INITIATING
	unanswered := genOutcome(8, 1, 2)
	unanswered.Steps[0].Role, unanswered.Steps[0].Status = hinscorev1.Role_ROLE_CANCEL, hinscorev1.Status_STATUS_CANCELLED

	h.publish(eventMsg(t, ev), eventMsg(t, bare), outcomeMsg(t, answered), outcomeMsg(t, unanswered))
	h.waitCount("SELECT count() FROM events", 2, waitRows)
	h.waitCount("SELECT count() FROM outcomes", 2, waitRows)
	// A materialized view's rows become visible after its source table's.
	h.waitCount("SELECT count() FROM patient_journeys", 1, waitRows)

	var got strings.Builder
	for _, q := range []string{
		"SELECT * FROM events ORDER BY network, event_time_ms",
		"SELECT * FROM outcomes ORDER BY request_id",
		"SELECT * FROM outcome_steps ORDER BY message_id",
		// The journey table gets the new columns through its materialized view.
		"SELECT outcome_id, version, purpose, purpose_code, requester_community, responder_community, sides, sla_business_days, untimed FROM patient_journeys",
	} {
		fmt.Fprintf(&got, "== %s\n", q)
		dumpRows(t, h, &got, q)
	}
	golden := filepath.Join("testdata", "row_mapping.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestRowMapping -update to create it)", err)
	}
	if got.String() != string(want) {
		t.Errorf("rows differ from %s (rerun with -update after checking):\n%s", golden, got.String())
	}
}

// dumpRows writes each row as name=value lines, values printed by their Go
// type as the driver scans them.
func dumpRows(t *testing.T, h *harness, out *strings.Builder, query string) {
	rows, err := h.conn.Query(h.ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		for i, ct := range types {
			v := reflect.ValueOf(dest[i]).Elem()
			if v.Kind() == reflect.Pointer {
				if v.IsNil() {
					fmt.Fprintf(out, "%s=NULL\n", ct.Name())
					continue
				}
				v = v.Elem()
			}
			if tm, ok := v.Interface().(time.Time); ok {
				fmt.Fprintf(out, "%s=%s\n", ct.Name(), tm.UTC().Format(time.RFC3339))
				continue
			}
			fmt.Fprintf(out, "%s=%q\n", ct.Name(), fmt.Sprint(v.Interface()))
		}
		out.WriteString("--\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestDuplicatesStoredOnce(t *testing.T) {
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	h.startWriter(testConfig(), reg)
	ev := genEvent(5)
	// The same Msg-Id twice: JetStream keeps one.
	h.publish(eventMsg(t, ev), eventMsg(t, ev))
	// A copy re-sent after the dedup window reaches the table twice; the
	// view still shows it once.
	late := eventMsg(t, ev)
	late.Header.Set(jetstream.MsgIDHeader, "event:"+ev.GetEventId()+":after-window")
	o := genOutcome(3, 1, 1)
	h.publish(late, outcomeMsg(t, o), outcomeMsg(t, o))

	h.waitCount("SELECT count() FROM outcomes", 1, waitRows)
	// Both copies were inserted (a merge may already have collapsed them).
	deadline := time.Now().Add(waitRows)
	for metricSum(t, reg, "hinscore_chwriter_rows_inserted_total") < 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := metricSum(t, reg, "hinscore_chwriter_rows_inserted_total"); got != 4 {
		t.Errorf("rows_inserted_total = %v, want 4 (two event copies, one outcome, its step)", got)
	}
	info, err := h.js.Stream(h.ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 2 {
		t.Errorf("EVENTS holds %d messages, want 2 (one duplicate Msg-Id dropped)", n)
	}
	if got := h.count("SELECT count() FROM events"); got != 1 {
		t.Errorf("events view shows %d rows for one event, want 1", got)
	}
	if got := h.count("SELECT count() FROM exchange_outcomes"); got != 1 {
		t.Errorf("exchange_outcomes has %d rows for one Msg-Id published twice, want 1", got)
	}
	h.waitAcked(bus.StreamEvents, "chwriter_events")
}

func TestRestartMidStream(t *testing.T) {
	h := newHarness(t)
	const n, m = 1500, 300
	h.publish(eventMsgs(t, 0, n/2)...)
	h.publish(allOutcomeMsgs(t, 0, m/2)...)
	first, err := chwriter.New(testConfig(), service.Deps{JetStream: h.js, ClickHouse: h.conn, Log: testLogger(t), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(h.ctx); err != nil {
		t.Fatal(err)
	}
	// Stop the first writer while it is busy: some rows are in, more are
	// held or still in the stream.
	go h.publish(eventMsgs(t, n/2, n)...)
	deadline := time.Now().Add(waitRows)
	for h.count("SELECT count() FROM exchange_events") < 200 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// A stop after every row was stored would prove nothing about a restart.
	if atStop := h.count("SELECT count() FROM exchange_events"); atStop >= n {
		t.Fatalf("the first writer had stored all %d event rows when it was stopped: not mid-stream", atStop)
	}
	sctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	if err := first.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	stoppedAt := h.count("SELECT count() FROM exchange_events")
	t.Logf("first writer stopped after %d event rows", stoppedAt)

	h.startWriter(testConfig(), prometheus.NewRegistry())
	h.publish(allOutcomeMsgs(t, m/2, m)...)
	h.checkTruth(n, m, false)
	h.waitAcked(bus.StreamEvents, "chwriter_events")
	h.waitAcked(bus.StreamOutcomes, "chwriter_outcomes")
}

// TestClickHouseOutage takes exchange_events away (RENAME, so nothing
// written is lost and the shared server keeps running) and checks that the
// writer holds its batches unacked (the one it retries and the next), pulls
// no more, retries, and writes
// everything once the table is back.
func TestClickHouseOutage(t *testing.T) {
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	cfg := testConfig()
	w := h.startWriter(cfg, reg)
	h.publish(eventMsgs(t, 0, 200)...)
	h.waitCount("SELECT count() FROM events", 200, waitRows)
	h.waitAcked(bus.StreamEvents, "chwriter_events")

	if err := h.conn.Exec(h.ctx, "RENAME TABLE exchange_events TO exchange_events_parked"); err != nil {
		t.Fatal(err)
	}
	h.publish(eventMsgs(t, 200, 800)...)
	// Outcomes go to other tables and keep flowing during the outage.
	h.publish(allOutcomeMsgs(t, 0, 30)...)
	h.waitCount("SELECT count() FROM outcomes", 30, waitRows)

	deadline := time.Now().Add(waitRows)
	for metricSum(t, reg, "hinscore_chwriter_insert_retries_total") < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := metricSum(t, reg, "hinscore_chwriter_insert_retries_total"); got < 3 {
		t.Fatalf("insert_retries_total = %v during the outage, want at least 3", got)
	}
	if err := w.Ready(h.ctx); err == nil {
		t.Error("Ready = nil while inserts fail")
	}
	// The batch being retried and at most one more behind it.
	info := h.consumerInfo(bus.StreamEvents, "chwriter_events")
	if info.NumAckPending == 0 || info.NumAckPending > 2*cfg.BatchRows {
		t.Errorf("%d messages unacked during the outage, want the batch being retried and the one behind it (1-%d)", info.NumAckPending, 2*cfg.BatchRows)
	}
	if info.NumPending < uint64(600-2*cfg.BatchRows) {
		t.Errorf("%d messages left in the stream, want at least %d: the writer must not pull while it cannot write",
			info.NumPending, 600-2*cfg.BatchRows)
	}
	if got := h.count("SELECT count() FROM exchange_events_parked"); got != 200 {
		t.Errorf("parked table has %d rows, want the 200 written before the outage", got)
	}

	if err := h.conn.Exec(h.ctx, "RENAME TABLE exchange_events_parked TO exchange_events"); err != nil {
		t.Fatal(err)
	}
	h.waitCount("SELECT count() FROM events", 800, waitRows)
	h.waitAcked(bus.StreamEvents, "chwriter_events")
	if err := w.Ready(h.ctx); err != nil {
		t.Errorf("Ready after the outage: %v", err)
	}
	// Everything written and acked: nothing is held any more (the gauge
	// is set right after the acks go out).
	deadline = time.Now().Add(5 * time.Second)
	for metricSum(t, reg, "hinscore_chwriter_held_messages") != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if held := metricSum(t, reg, "hinscore_chwriter_held_messages"); held != 0 {
		t.Errorf("held_messages = %v once every batch is written and acked, want 0", held)
	}
}

func TestUndecodableGoesToDLQ(t *testing.T) {
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	h.startWriter(testConfig(), reg)

	garbage := nats.NewMsg(bus.EventSubject(0, "north"))
	garbage.Data = []byte{0xff, 0xff, 0xff, 0x01}
	badID := genEvent(1)
	badID.EventId = "not-a-uuid"
	badTime := genEvent(2)
	badTime.EventTimeMs = -5
	badStep := genOutcome(1, 2, 2)
	badStep.Steps[1].EventId = "nope"
	noClass := genOutcome(2, 1, 1)
	noClass.OutcomeClass = hinscorev1.OutcomeClass_OUTCOME_CLASS_UNSPECIFIED
	msgs := []*nats.Msg{garbage, eventMsg(t, badID), eventMsg(t, badTime), outcomeMsg(t, badStep), outcomeMsg(t, noClass)}
	msgs = append(msgs, eventMsgs(t, 10, 20)...)
	h.publish(msgs...)

	h.waitCount("SELECT count() FROM events", 10, waitRows)
	h.waitAcked(bus.StreamEvents, "chwriter_events")
	h.waitAcked(bus.StreamOutcomes, "chwriter_outcomes")
	if got := h.count("SELECT count() FROM exchange_outcomes"); got != 0 {
		t.Errorf("exchange_outcomes has %d rows, want none (both outcomes are bad)", got)
	}

	dlq, err := h.js.CreateOrUpdateConsumer(h.ctx, bus.StreamDLQ, jetstream.ConsumerConfig{FilterSubject: bus.DLQSubject(chwriter.Stage)})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := dlq.Fetch(10, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for msg := range batch.Messages() {
		if got := msg.Headers().Get(bus.HeaderStage); got != chwriter.Stage {
			t.Errorf("DLQ stage header %q, want %q", got, chwriter.Stage)
		}
		if msg.Headers().Get(bus.HeaderNetwork) == "" {
			t.Errorf("DLQ message without network header: %v", msg.Headers())
		}
		reasons[msg.Headers().Get(bus.HeaderReason)] = true
	}
	if len(reasons) != len(msgs)-10 {
		t.Fatalf("DLQ holds %d distinct reasons, want %d: %v", len(reasons), len(msgs)-10, reasons)
	}
	for _, want := range []string{"ExchangeEvent", `"not-a-uuid"`, "event_time_ms -5", `steps[1].event_id "nope"`, "outcome class"} {
		found := false
		for r := range reasons {
			found = found || strings.Contains(r, want)
		}
		if !found {
			t.Errorf("no DLQ reason mentions %q: %v", want, reasons)
		}
	}
	if got := metricSum(t, reg, "hinscore_chwriter_dlq_total"); got != float64(len(msgs)-10) {
		t.Errorf("dlq_total = %v, want %d", got, len(msgs)-10)
	}
}

// TestShutdownFlushesHeldBatch holds a batch that neither its size nor its
// age would write yet; Shutdown must write and ack it.
func TestShutdownFlushesHeldBatch(t *testing.T) {
	h := newHarness(t)
	cfg := testConfig()
	cfg.FlushInterval, cfg.AckWait = 20*time.Second, time.Minute
	w := h.startWriter(cfg, nil)
	h.waitReady(w)
	h.publish(eventMsgs(t, 0, 50)...)
	deadline := time.Now().Add(waitRows)
	for h.consumerInfo(bus.StreamEvents, "chwriter_events").NumAckPending < 50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := h.count("SELECT count() FROM exchange_events"); got != 0 {
		t.Fatalf("%d rows written before the flush interval, want 0", got)
	}
	start := time.Now()
	if err := w.Shutdown(h.ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Shutdown took %s, want well under the flush interval", took)
	}
	if got := h.count("SELECT count() FROM exchange_events"); got != 50 {
		t.Errorf("%d rows after Shutdown, want the 50 held", got)
	}
	h.waitAcked(bus.StreamEvents, "chwriter_events")
	if err := w.Ready(h.ctx); err == nil {
		t.Error("Ready = nil after Shutdown")
	}
}

func TestLifecycle(t *testing.T) {
	h := newHarness(t)
	w, err := chwriter.New(testConfig(), service.Deps{JetStream: h.js, ClickHouse: h.conn, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Ready(h.ctx); err == nil {
		t.Error("Ready = nil before Start")
	}
	if err := w.Shutdown(h.ctx); err != nil {
		t.Errorf("Shutdown before Start: %v", err)
	}
	if err := w.Shutdown(h.ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := w.Start(h.ctx); !errors.Is(err, chwriter.ErrStopped) {
		t.Errorf("Start after Shutdown = %v, want ErrStopped", err)
	}

	w2 := h.startWriter(testConfig(), nil)
	if err := w2.Start(h.ctx); err != nil {
		t.Errorf("second Start: %v", err)
	}
	h.waitReady(w2)
	info := h.consumerInfo(bus.StreamEvents, "chwriter_events")
	if info.Config.MaxAckPending <= testConfig().BatchRows || info.Config.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("consumer config %+v: want explicit acks and MaxAckPending above the batch size", info.Config)
	}
	for range 2 {
		if err := w2.Shutdown(h.ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
}

// TestWaitsForStreams starts the writer before the streams exist.
func TestWaitsForStreams(t *testing.T) {
	h := newHarness(t)
	for _, s := range []string{bus.StreamEvents, bus.StreamOutcomes} {
		if err := h.js.DeleteStream(h.ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	w := h.startWriter(testConfig(), nil)
	if err := w.Ready(h.ctx); err == nil || !strings.Contains(err.Error(), "waiting for stream") {
		t.Errorf("Ready = %v before the streams exist, want waiting for stream", err)
	}
	opts := bus.DefaultStreamOptions()
	opts.MemoryStorage = true
	if err := bus.EnsureStreams(h.ctx, h.js, opts); err != nil {
		t.Fatal(err)
	}
	h.publish(eventMsgs(t, 0, 10)...)
	h.waitCount("SELECT count() FROM events", 10, waitRows)
}

// TestRawPlacedNotStored: an event whose original bytes travel with it (as
// the ingests publish it) is written with raw_subject and raw_seq naming
// its own EVENTS message, where the api reads the bytes, and none of those
// bytes reaches ClickHouse.
func TestRawPlacedNotStored(t *testing.T) {
	h := newHarness(t)
	h.startWriter(testConfig(), nil)
	first, second := genEvent(1), genEvent(2)
	// The first sealed, as the ingests publish now (a marker stands for the
	// ciphertext), the second in the clear, as before sealing.
	first.RawSubject, first.RawSeq = "", 0
	first.RawSealed = []byte("\x01\x03dev SEALED-SECRET-" + first.GetEventId())
	second.RawSubject, second.RawSeq = "", 0
	second.Raw = []byte("MSH|^~\\&|RAW-SECRET|PID|1||MRN-SECRET-" + second.GetEventId())
	inRaw := genEvent(3) // its bytes in RAW: left as it is
	h.publish(eventMsg(t, first), eventMsg(t, second), eventMsg(t, inRaw))
	h.waitCount("SELECT count() FROM events", 3, waitRows)
	for i, tc := range []struct {
		ev      *hinscorev1.ExchangeEvent
		subject string
		seq     uint64
	}{
		{first, bus.EventSubject(first.GetPartition(), first.GetNetwork()), 1},
		{second, bus.EventSubject(second.GetPartition(), second.GetNetwork()), 2},
		{inRaw, inRaw.GetRawSubject(), inRaw.GetRawSeq()},
	} {
		var subject string
		var seq uint64
		if err := h.conn.QueryRow(h.ctx, "SELECT raw_subject, raw_seq FROM events WHERE event_id = toUUID(?)", tc.ev.GetEventId()).Scan(&subject, &seq); err != nil {
			t.Fatal(err)
		}
		if subject != tc.subject || seq != tc.seq {
			t.Errorf("event %d: raw at %s/%d, want %s/%d", i, subject, seq, tc.subject, tc.seq)
		}
	}
	var rows strings.Builder
	dumpRows(t, h, &rows, "SELECT * FROM events")
	if strings.Contains(rows.String(), "SECRET") {
		t.Errorf("original bytes reached ClickHouse:\n%s", rows.String())
	}
}
