package mllpingest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
)

// TestSequenceNumberRecorded: MSH-13 (the HL7 sequence-number protocol) is
// recorded on each event with its counter's owner, and every event names
// its feed connection (channel and peer host); a gap in the numbers is
// stored and acknowledged like any message (an observer never refuses for
// it); a message without MSH-13 records no number.
func TestSequenceNumberRecorded(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t)
	numbered := func(id, n string) string {
		return strings.Replace(qbp(id), "|P|2.5.1\r", "|P|2.5.1|"+n+"\r", 1)
	}
	c.send(numbered("S1", "100"), numbered("S2", "101"), numbered("S3", "105"), qbp("S4"))
	for range 4 {
		if r := c.recv(); r.Get("MSA-1") != "AA" {
			t.Fatalf("reply %s", r.Get("MSA-1"))
		}
	}
	var numbers []string
	for _, m := range streamMsgs(t, h.js, bus.StreamEvents) {
		ev := decodeEvent(t, m)
		if ev.GetFeed() != "mllp:127.0.0.1" {
			t.Errorf("%s: feed %q, want mllp:127.0.0.1", ev.GetMessageId(), ev.GetFeed())
		}
		if ev.GetSequenceSource() == "" {
			continue
		}
		if ev.GetSequenceSource() != "hl7|EHR^HOSP_A>HIE^NETB" {
			t.Errorf("%s: source %q", ev.GetMessageId(), ev.GetSequenceSource())
		}
		numbers = append(numbers, fmt.Sprintf("%s=%d", ev.GetMessageId(), ev.GetSequenceNumber()))
	}
	slices.Sort(numbers)
	if got := strings.Join(numbers, " "); got != "S1=100 S2=101 S3=105" {
		t.Errorf("numbers recorded %q, want S1=100 S2=101 S3=105", got)
	}
	// The feed sends S2 again: stored once, counted against the feed.
	c.send(numbered("S2", "101"))
	if r := c.recv(); r.Get("MSA-1") != "AA" {
		t.Fatalf("reply %s", r.Get("MSA-1"))
	}
	wantHolds(t, h.js, bus.StreamEvents, 4)
	// Counted once the reply is written: wait for it.
	ingesttest.WaitFor(t, "the duplicate counted for the feed", func() bool {
		return testutil.ToFloat64(h.srv.m.duplicates.WithLabelValues("neta", "mllp:127.0.0.1")) == 1
	})
}
