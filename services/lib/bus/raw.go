package bus

import (
	"strings"

	"github.com/hinscore/hinscore/services/lib/domain/partition"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// LocateRaw is what every consumer of EVENTS does with an event first: an
// event whose original bytes travel with it (mllp-ingest and, for a body
// of one event, fhir-ingest store both in one EVENTS message, the bytes
// sealed: package seal) gets, as the place of those bytes, the subject and
// stream sequence of that message, and its bytes are dropped, so that
// nothing the consumer keeps or forwards of it holds them, even sealed.
// An event whose bytes are in RAW is left as it is.
func LocateRaw(ev *hinscorev1.ExchangeEvent, subject string, seq uint64) {
	if len(ev.GetRaw()) == 0 && len(ev.GetRawSealed()) == 0 {
		return
	}
	ev.RawSubject, ev.RawSeq, ev.Raw, ev.RawSealed = subject, seq, nil, nil
}

// Route sets the event's partition of EVENTS: that of its correlation key
// (its event id when it has none), so that a request and its answers meet
// in one linker.
func Route(ev *hinscorev1.ExchangeEvent, partitions int) {
	ev.Partition = partition.Of(partition.Key(ev.CorrelationKey, ev.EventId), partitions)
}

// RawInEvents reports whether an event's raw_subject is an EVENTS subject
// (its bytes are the raw_sealed field of the event stored there) rather than a
// RAW one.
func RawInEvents(rawSubject string) bool { return strings.HasPrefix(rawSubject, "events.") }
