package bus

import (
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// LocateRaw is what every consumer of EVENTS does with an event first: an
// event whose original bytes travel with it (mllp-ingest stores both in
// one EVENTS message) gets, as the place of those bytes, the subject and
// stream sequence of that message, and its bytes are dropped, so that
// nothing the consumer keeps or forwards of it holds a raw patient
// identifier. (fhir-ingest stores a body of one event the same way.) An event whose bytes are in RAW is left as it is.
func LocateRaw(ev *hinscorev1.ExchangeEvent, subject string, seq uint64) {
	if len(ev.GetRaw()) == 0 {
		return
	}
	ev.RawSubject, ev.RawSeq, ev.Raw = subject, seq, nil
}

// RawInEvents reports whether an event's raw_subject is an EVENTS subject
// (its bytes are the raw field of the event stored there) rather than a
// RAW one.
func RawInEvents(rawSubject string) bool { return strings.HasPrefix(rawSubject, "events.") }
