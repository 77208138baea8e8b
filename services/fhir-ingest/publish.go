package fhiringest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/hinscore/hinscore/services/lib/domain/ids"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
)

// ErrNotStored wraps every failure to get a PubAck: the sender must re-send
// (the Msg-Ids make the retry safe).
var ErrNotStored = errors.New("fhiringest: not stored")

// HeaderLines names, on a RAW message holding NDJSON lines, the line
// numbers it holds ("first-last").
const HeaderLines = "Hin-Lines"

// defaultPublishTimeout bounds the wait for a PubAck.
const defaultPublishTimeout = 10 * time.Second

// publisher is the one publish path of the HTTP handler and the NDJSON
// import: a body of one event in its event (store), otherwise RAW first,
// then the events carrying the RAW sequence.
type publisher struct {
	js         jetstream.JetStream
	keys       *seal.RawKeys // seal the bodies that travel in their event
	partitions int
	timeout    time.Duration
}

// rawMsg builds the RAW message of body (format fhir or soap).
func rawMsg(network, remote, format string, body []byte) *nats.Msg {
	m := nats.NewMsg(bus.RawSubject(network, format))
	m.Data = body
	m.Header.Set(bus.HeaderNetwork, network)
	m.Header.Set(bus.HeaderFormat, format)
	if remote != "" {
		m.Header.Set(bus.HeaderRemote, remote)
	}
	return m
}

// rawMsgID is the Nats-Msg-Id of a resource in RAW, from its identity
// (id + version, else a hash of its bytes).
func rawMsgID(network, identity string) string {
	return "raw:" + ids.Event(network, []byte(identity)).String()
}

// publishRaw stores body in RAW and returns its sequence and whether
// JetStream already held it.
func (p *publisher) publishRaw(ctx context.Context, msg *nats.Msg, msgID string) (uint64, bool, error) {
	fut, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(msgID), jetstream.WithStallWait(p.timeout))
	if err != nil {
		return 0, false, fmt.Errorf("%w: RAW: %v", ErrNotStored, err)
	}
	ack, err := p.await(ctx, fut)
	if err != nil {
		return 0, false, fmt.Errorf("%w: RAW: %v", ErrNotStored, err)
	}
	return ack.Sequence, ack.Duplicate, nil
}

// publishEvent starts the EVENTS publish of ev, with the original bytes
// raw, sealed, when they travel in the event (rawSubject and rawSeq empty), else
// with where RAW holds them; the caller awaits the future. The Msg-Id is
// the message's only header, as mllp-ingest's.
func (p *publisher) publishEvent(ev *hinscorev1.ExchangeEvent, raw []byte, rawSubject string, rawSeq uint64) (jetstream.PubAckFuture, error) {
	bus.Route(ev, p.partitions)
	ev.RawSubject, ev.RawSeq = rawSubject, rawSeq
	data, err := seal.MarshalEvent(ev, p.keys, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: EVENTS: %v", ErrNotStored, err)
	}
	msg := nats.NewMsg(bus.EventSubject(ev.Partition, ev.Network))
	msg.Data = data
	fut, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID("event:"+ev.EventId), jetstream.WithStallWait(p.timeout))
	if err != nil {
		return nil, fmt.Errorf("%w: EVENTS: %v", ErrNotStored, err)
	}
	return fut, nil
}

// eventOverhead bounds what an event adds to the bytes it carries (its
// fields and the Msg-Id header): a body too large to travel with its event
// under the server's max_payload goes to RAW alone.
const eventOverhead = 16 << 10

// store publishes one resource (body, deduplicated by its identity) and
// its events, and waits for every PubAck; it reports whether JetStream
// already held it, and returns ErrConflict when it held the identity with
// other content (conflict.go). A resource that maps to one event (a Task
// version, an AuditEvent, an OperationOutcome, a MessageHeader, a one-entry
// Bundle) is stored as one EVENTS message, the event with the body sealed
// in it, as mllp-ingest stores an HL7 v2 message (bus.LocateRaw): one
// publish and one PubAck before the reply instead of two in sequence. A
// body of several events, or one too large, is kept once in RAW and each
// event carries its RAW sequence.
func (p *publisher) store(ctx context.Context, network, remote, format string, body []byte, identity string, events []*hinscorev1.ExchangeEvent) (bool, error) {
	for _, ev := range events {
		ev.Feed = feedOf(format, remote)
	}
	if len(events) == 1 && len(body)+eventOverhead <= int(p.js.Conn().MaxPayload()) {
		fut, err := p.publishEvent(events[0], body, "", 0)
		if err != nil {
			return false, err
		}
		ack, err := p.await(ctx, fut)
		if err != nil {
			return false, fmt.Errorf("%w: EVENTS: %v", ErrNotStored, err)
		}
		if !ack.Duplicate {
			return false, nil
		}
		return p.duplicate(ctx, bus.StreamEvents, ack.Sequence, events[0].EventId, body)
	}
	msg := rawMsg(network, remote, format, body)
	seq, dup, err := p.publishRaw(ctx, msg, rawMsgID(network, identity))
	if err != nil {
		return false, err
	}
	if dup {
		// Other content under it publishes nothing; a re-send publishes
		// its events again, which a first attempt may not have stored.
		if _, err := p.duplicate(ctx, bus.StreamRaw, seq, "", body); err != nil {
			return false, err
		}
	}
	futs := make([]jetstream.PubAckFuture, 0, len(events))
	for _, ev := range events {
		fut, err := p.publishEvent(ev, nil, msg.Subject, seq)
		if err != nil {
			return false, err
		}
		futs = append(futs, fut)
	}
	eventDup := false
	for _, f := range futs {
		ack, err := p.await(ctx, f)
		if err != nil {
			return false, fmt.Errorf("%w: EVENTS: %v", ErrNotStored, err)
		}
		eventDup = eventDup || ack.Duplicate
	}
	if eventDup && !dup {
		// New bytes in RAW under an identity whose events EVENTS already
		// held (stored before as one event, now as several): other content.
		return false, ErrConflict
	}
	return dup, nil
}

// duplicate decides a publish JetStream found a duplicate of: the same
// content re-sent (true), or ErrConflict.
func (p *publisher) duplicate(ctx context.Context, stream string, seq uint64, eventID string, body []byte) (bool, error) {
	same, err := p.sameStored(ctx, stream, seq, eventID, body)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrNotStored, err)
	}
	if !same {
		return false, ErrConflict
	}
	return true, nil
}

// await waits for one of the publisher's acknowledgements.
func (p *publisher) await(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	return bus.AwaitAck(ctx, f, p.timeout)
}

// feedOf names the feed connection of a body (ExchangeEvent.feed): the
// format as the channel and the client's host, or the import of that
// format when no client sent it (remote ""). FHIR has no client
// certificates here: the bearer token names only the network.
func feedOf(format, remote string) string {
	if remote == "" {
		return ingest.ChannelImport + ":" + format
	}
	return ingest.FeedOfAddr(format, remote)
}
