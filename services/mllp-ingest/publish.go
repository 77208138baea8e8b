package mllpingest

import (
	"fmt"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
)

// The one publish of an accepted message, shared by the listener and the
// file import so that both store a message identically: the event and the
// message's original bytes together, in one EVENTS message (see
// bus.LocateRaw). One JetStream store per message, not a RAW store and
// then an event carrying its RAW sequence, is what lets the listener
// answer at the bus's own publish rate.

// store starts the publish of an event with its original bytes data,
// sealed with keys (only the ingests and the api can read them),
// under a Msg-Id from the event id (a re-sent copy is stored once). The
// Msg-Id is the message's only header: the network is in the event and
// the subject, and the peer's address, which nothing downstream reads, is
// kept only with what is rejected (DLQ).
func store(js jetstream.JetStream, keys *seal.RawKeys, ev *hinscorev1.ExchangeEvent, data []byte, stall time.Duration) (jetstream.PubAckFuture, error) {
	b, err := seal.MarshalEvent(ev, keys, data)
	if err != nil {
		return nil, fmt.Errorf("EVENTS: %w", err)
	}
	msg := &nats.Msg{Subject: bus.EventSubject(ev.Partition, ev.Network), Data: b,
		Header: nats.Header{jetstream.MsgIDHeader: {"event:" + ev.EventId}}} // as WithMsgID sets it
	fut, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(stall))
	if err != nil {
		return nil, fmt.Errorf("EVENTS: %w", err)
	}
	return fut, nil
}
