package bus

import (
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

func TestLocateRaw(t *testing.T) {
	with := &hinscorev1.ExchangeEvent{EventId: "a", Raw: []byte("MSH|x")}
	LocateRaw(with, EventSubject(3, "north"), 42)
	if with.RawSubject != "events.3.north" || with.RawSeq != 42 || with.Raw != nil || !RawInEvents(with.RawSubject) {
		t.Errorf("bytes with the event: placed at %s/%d, raw %q", with.RawSubject, with.RawSeq, with.Raw)
	}
	sealed := &hinscorev1.ExchangeEvent{EventId: "c", RawSealed: []byte{1, 1, 'k', 0}, Raw: []byte("MSH|old")}
	LocateRaw(sealed, EventSubject(1, "north"), 43)
	if sealed.RawSubject != "events.1.north" || sealed.RawSeq != 43 || sealed.Raw != nil || sealed.RawSealed != nil {
		t.Errorf("sealed bytes with the event: placed at %s/%d, raw %q, sealed %q", sealed.RawSubject, sealed.RawSeq, sealed.Raw, sealed.RawSealed)
	}
	apart := &hinscorev1.ExchangeEvent{EventId: "b", RawSubject: RawSubject("north", "fhir"), RawSeq: 7}
	LocateRaw(apart, EventSubject(3, "north"), 42)
	if apart.RawSubject != "raw.north.fhir" || apart.RawSeq != 7 || RawInEvents(apart.RawSubject) {
		t.Errorf("bytes in RAW: moved to %s/%d", apart.RawSubject, apart.RawSeq)
	}
	if RawInEvents("") || RawInEvents("events") || RawInEvents("raw.events.x") {
		t.Error("RawInEvents of a subject that is no EVENTS subject")
	}
}
