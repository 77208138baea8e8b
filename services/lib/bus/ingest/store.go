package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/dlq"
	"github.com/hinscore/hinscore/services/lib/bus/seal"
)

// Store starts the one publish of an accepted message: its event with the
// message's original bytes data sealed with keys (only the ingests and the
// api can read them), to EVENTS on the event's partition, under a Msg-Id
// from the event id (a re-sent copy is stored once). The Msg-Id is the
// message's only header: the network is in the event and the subject, and
// the peer's address, which nothing downstream reads, is kept only with
// what is rejected (DLQ). One JetStream store per message, not a RAW store
// and then an event carrying its RAW sequence, is what lets a listener
// answer at the bus's own publish rate (see bus.LocateRaw).
func Store(js jetstream.JetStream, keys *seal.RawKeys, ev *hinscorev1.ExchangeEvent, data []byte, stall time.Duration) (jetstream.PubAckFuture, error) {
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

// DeadLetter stores d and waits for its PubAck at most timeout, or until
// force is closed (a shutdown's deadline passed).
func DeadLetter(js jetstream.JetStream, d dlq.DeadLetter, timeout time.Duration, force <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case <-force:
			cancel()
		case <-ctx.Done():
		}
	}()
	return dlq.Publish(ctx, js, d)
}

// DeadLetterWorkers bounds the dead-letter publishes of an ingest's
// connections at once. A flood of rejected messages waits for a worker,
// which stops its connection reading, rather than starting a goroutine
// and a publish each.
const DeadLetterWorkers = 32

// DeadLetters stores dead letters in the background, at most workers at
// once (DeadLetter each, cut short when force is closed).
type DeadLetters struct {
	js    jetstream.JetStream
	force <-chan struct{}
	sem   chan struct{}
}

// NewDeadLetters is a pool of workers storing dead letters through js.
func NewDeadLetters(js jetstream.JetStream, workers int, force <-chan struct{}) *DeadLetters {
	return &DeadLetters{js: js, force: force, sem: make(chan struct{}, max(workers, 1))}
}

// Go waits for a free worker, then stores d on it, waiting for the PubAck
// at most timeout, and calls done with the outcome there.
func (p *DeadLetters) Go(d dlq.DeadLetter, timeout time.Duration, done func(error)) {
	p.sem <- struct{}{}
	go func() {
		defer func() { <-p.sem }()
		done(DeadLetter(p.js, d, timeout, p.force))
	}()
}

// Await waits for an asynchronous publish's PubAck until deadline (wall
// clock; timeout is what the deadline allowed, for the error) or until
// force is closed. A publish refused because the same Msg-Id is in process
// (a re-sent copy while the first is being replicated) is sent again on js
// until the stream settles it (bus.DuplicateInProcess).
func Await(js jetstream.JetStream, f jetstream.PubAckFuture, deadline time.Time, timeout time.Duration, force <-chan struct{}) (*jetstream.PubAck, error) {
	for {
		ack, err := awaitOnce(f, deadline, timeout, force)
		wait, again := bus.RepublishAfter(err, deadline)
		if !again {
			return ack, err
		}
		select {
		case <-time.After(wait):
		case <-force:
			return nil, errors.New("shutdown deadline")
		}
		if f, err = js.PublishMsgAsync(f.Msg()); err != nil {
			return nil, err
		}
	}
}

// awaitOnce waits for f's PubAck or error, until deadline or force.
func awaitOnce(f jetstream.PubAckFuture, deadline time.Time, timeout time.Duration, force <-chan struct{}) (*jetstream.PubAck, error) {
	// Pipelined, the PubAck is usually in before it is awaited: no timer
	// then. Each of Ok and Err takes the publisher's lock: called once.
	ok, failed := f.Ok(), f.Err()
	select {
	case ack := <-ok:
		return ack, nil
	case err := <-failed:
		return nil, err
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case ack := <-ok:
		return ack, nil
	case err := <-failed:
		return nil, err
	case <-t.C:
		return nil, fmt.Errorf("no PubAck within %s", timeout)
	case <-force:
		return nil, errors.New("shutdown deadline")
	}
}
