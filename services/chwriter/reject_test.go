package chwriter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hinscore/hinscore/services/lib/bus"
)

// TestRejectedRowsIsolated makes ClickHouse refuse three rows of a batch for
// their content (message_type becomes an Enum that does not list their
// value): the writer must split the batch, write the 297 good rows, send the
// three to the DLQ, record them in dead_letters, and ack everything.
func TestRejectedRowsIsolated(t *testing.T) {
	h := newHarness(t)
	if err := h.conn.Exec(h.ctx, "ALTER TABLE exchange_events MODIFY COLUMN message_type Enum8('QBP^Q22^QBP_Q21' = 1)"); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := testConfig()
	cfg.BatchRows = 300
	cfg.FlushInterval = 500 * time.Millisecond
	h.startWriter(cfg, reg)
	msgs := eventMsgs(t, 0, 300)
	for _, i := range []int{17, 150, 299} {
		ev := genEvent(i)
		ev.MessageType = "POISON^X"
		msgs[i] = eventMsg(t, ev)
	}
	h.publish(msgs...)
	h.waitCount("SELECT count() FROM events", 297, waitRows)
	h.waitAcked(bus.StreamEvents, "chwriter_events")
	h.waitCount("SELECT count() FROM dead_letters FINAL WHERE stage = 'chwriter' AND network != '' AND size > 0", 3, waitRows)
	h.waitAcked(bus.StreamDLQ, "chwriter_dlq")
	if got := h.count("SELECT count() FROM events WHERE message_id IN ('M000017', 'M000150', 'M000299')"); got != 0 {
		t.Errorf("%d rejected rows are in events", got)
	}
	var reason string
	if err := h.conn.QueryRow(h.ctx, "SELECT any(reason) FROM dead_letters").Scan(&reason); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, "message_type") {
		t.Errorf("dead letter reason %q does not name the column", reason)
	}
	if got := metricSum(t, reg, "hinscore_chwriter_dlq_total"); got != 3 {
		t.Errorf("dlq_total = %v, want 3", got)
	}
	// Bisecting 300 messages to 3 bad ones costs a few dozen inserts, not 300.
	if got := metricSum(t, reg, "hinscore_chwriter_insert_retries_total"); got > 60 {
		t.Errorf("insert_retries_total = %v, want a bisection's worth", got)
	}
}
