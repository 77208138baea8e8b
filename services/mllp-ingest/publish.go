package mllpingest

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/bus"
)

// The two publishes of an accepted message, shared by the listener and the
// file import so that both store a message identically: RAW first (with a
// Msg-Id from the event id), then the event carrying the RAW sequence.

// route sets the event's partition and RAW subject.
func route(ev *hinscorev1.ExchangeEvent, network string, partitions int) {
	key := ev.CorrelationKey
	if key == "" {
		key = ev.EventId
	}
	ev.Partition = bus.Partition(key, partitions)
	ev.RawSubject = bus.RawSubject(network, formatHL7v2)
}

func publishRaw(js jetstream.JetStream, ev *hinscorev1.ExchangeEvent, data []byte, remote string, stall time.Duration) (jetstream.PubAckFuture, error) {
	raw := &nats.Msg{Subject: ev.RawSubject, Data: data, Header: nats.Header{
		bus.HeaderNetwork: {ev.Network},
		bus.HeaderFormat:  {formatHL7v2},
		bus.HeaderRemote:  {remote},
	}}
	fut, err := js.PublishMsgAsync(raw, jetstream.WithMsgID("raw:"+ev.EventId), jetstream.WithStallWait(stall))
	if err != nil {
		return nil, fmt.Errorf("RAW: %w", err)
	}
	return fut, nil
}

func publishEvent(js jetstream.JetStream, ev *hinscorev1.ExchangeEvent, stall time.Duration) (jetstream.PubAckFuture, error) {
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("EVENTS: %w", err)
	}
	msg := nats.NewMsg(bus.EventSubject(ev.Partition, ev.Network))
	msg.Data = data
	fut, err := js.PublishMsgAsync(msg, jetstream.WithMsgID("event:"+ev.EventId), jetstream.WithStallWait(stall))
	if err != nil {
		return nil, fmt.Errorf("EVENTS: %w", err)
	}
	return fut, nil
}
