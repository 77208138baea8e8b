package api

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/bus"
	"github.com/hinscore/hinscore/services/bus/bustest"
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
	event := func(network, id, raw string) []byte {
		b, err := proto.Marshal(&hinscorev1.ExchangeEvent{EventId: id, Network: network, Raw: []byte(raw)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	subj := bus.EventSubject(1, "neta")
	a := publish(subj, event("neta", "ev-a", "MSH|A"), nil)
	b := publish(subj, event("neta", "ev-b", "MSH|B"), nil)
	other := publish(bus.EventSubject(1, "netb"), event("netb", "ev-x", "MSH|X"), nil)
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
	}
	got, err := rawMessages(ctx, js, "neta", steps)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ status, data, format string }{
		{"ok", "MSH|A", "hl7v2"}, {"mismatch", "", ""}, {"mismatch", "", ""}, {"mismatch", "", ""}, {"mismatch", "", ""},
		{"expired", "", ""}, {"expired", "", ""}, {"ok", `{"resourceType":"Task"}`, "fhir"}, {"mismatch", "", ""},
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
