package api

import (
	"context"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
)

// TestRawMessagesBothStores: a step's original bytes are read from RAW or
// from its own EVENTS message, as its raw_subject says, and a sequence
// that holds another network's message, or in EVENTS another event, or
// nothing, is never shown.
func TestRawMessagesBothStores(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := bustest.Streams(t)
	// publish stores data on subject and returns its sequence.
	publish := func(subject string, data []byte, hdr nats.Header) uint64 {
		t.Helper()
		ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data, Header: hdr})
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	keys := seal.MustParseRawKeys("new:1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100,old:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	oldKey := seal.MustParseRawKeys("old:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	notHeld := seal.MustParseRawKeys("gone:2f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100")
	// event is an event whose bytes raw travel sealed with k (nil: in the
	// clear, as events stored before sealing).
	event := func(network, id, raw string, k ...*seal.RawKeys) []byte {
		ev := &hinscorev1.ExchangeEvent{EventId: id, Network: network}
		switch {
		case raw == "":
		case len(k) == 0:
			ev.Raw = []byte(raw)
		default:
			ev.RawSealed = k[0].Seal(id, []byte(raw))
		}
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	subj := bus.EventSubject(1, "neta")
	a := publish(subj, event("neta", "ev-a", "MSH|A", keys), nil)
	b := publish(subj, event("neta", "ev-b", "MSH|B", keys), nil)
	other := publish(bus.EventSubject(1, "netb"), event("netb", "ev-x", "MSH|X", keys), nil)
	clear := publish(subj, event("neta", "ev-c", "MSH|C"), nil)
	older := publish(subj, event("neta", "ev-o", "MSH|O", oldKey), nil)
	gone := publish(subj, event("neta", "ev-g", "MSH|G", notHeld), nil)
	// Sealed for ev-s, stored as ev-t: moved bytes do not open.
	moved := &hinscorev1.ExchangeEvent{EventId: "ev-t", Network: "neta", RawSealed: keys.Seal("ev-s", []byte("MSH|S"))}
	movedData, _ := proto.Marshal(moved)
	movedSeq := publish(subj, movedData, nil)
	noRaw := publish(subj, event("neta", "ev-n", ""), nil)
	fhir := publish(bus.RawSubject("neta", "fhir"), []byte(`{"resourceType":"Task"}`), nats.Header{bus.HeaderFormat: {"fhir"}})
	fhirB := publish(bus.RawSubject("netb", "fhir"), []byte(`{"resourceType":"Task","id":"b"}`), nil)

	steps := []Step{
		{EventID: "ev-a", RawSubject: subj, RawSeq: a, Format: "hl7v2"},
		{EventID: "ev-a", RawSubject: subj, RawSeq: b},                            // another event of the network
		{EventID: "ev-x", RawSubject: subj, RawSeq: other},                        // another network's, subject as claimed
		{EventID: "ev-x", RawSubject: bus.EventSubject(1, "netb"), RawSeq: other}, // another network's, its own subject
		{EventID: "ev-n", RawSubject: subj, RawSeq: noRaw},                        // an event with its bytes in RAW
		{EventID: "ev-a", RawSubject: subj, RawSeq: 999},                          // expired
		{EventID: "ev-a", RawSubject: subj},                                       // never stored
		{EventID: "ev-f", RawSubject: bus.RawSubject("neta", "fhir"), RawSeq: fhir},
		{EventID: "ev-f", RawSubject: bus.RawSubject("neta", "fhir"), RawSeq: fhirB},
		{EventID: "ev-c", RawSubject: subj, RawSeq: clear},    // stored before sealing
		{EventID: "ev-o", RawSubject: subj, RawSeq: older},    // sealed before a rotation
		{EventID: "ev-g", RawSubject: subj, RawSeq: gone},     // sealed with a key not given to the api
		{EventID: "ev-t", RawSubject: subj, RawSeq: movedSeq}, // another event's sealed bytes
	}
	got, err := rawMessages(ctx, js, keys, "neta", steps)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ status, data, format string }{
		{"ok", "MSH|A", "hl7v2"}, {"mismatch", "", ""}, {"mismatch", "", ""}, {"mismatch", "", ""}, {"mismatch", "", ""},
		{"expired", "", ""}, {"expired", "", ""}, {"ok", `{"resourceType":"Task"}`, "fhir"}, {"mismatch", "", ""},
		{"ok", "MSH|C", ""}, {"ok", "MSH|O", ""}, {"key_unknown", "", ""}, {"mismatch", "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i, w := range want {
		if g := got[i]; g.Status != w.status || g.Data != w.data || g.Format != w.format {
			t.Errorf("step %d: %s %q %q, want %s %q %q", i, g.Status, g.Data, g.Format, w.status, w.data, w.format)
		}
	}
}
