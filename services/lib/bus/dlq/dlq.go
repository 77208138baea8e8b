// Package dlq stores what a stage could not process, with why: the bytes
// go to dlq.<stage> on the DLQ stream, never dropped silently.
package dlq

import (
	"context"
	"fmt"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/domain/ids"
	"github.com/hinscore/hinscore/services/lib/domain/text"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is what a stage could not process, with why.
type DeadLetter struct {
	Stage   string
	Network string
	Format  string
	Remote  string
	Reason  string
	Data    []byte
}

// Publish stores a dead letter and waits for JetStream's acknowledgement.
// The Msg-Id derives from the stage and the bytes, so a retried rejection is
// stored once; a dead letter without bytes (an oversized frame the reader
// discarded) has no Msg-Id, so that distinct ones are never merged.
func Publish(ctx context.Context, js jetstream.JetStream, d DeadLetter) error {
	msg := nats.NewMsg(bus.DLQSubject(d.Stage))
	msg.Data = d.Data
	msg.Header.Set(bus.HeaderStage, d.Stage)
	msg.Header.Set(bus.HeaderReason, text.Truncate(d.Reason, 1024))
	if d.Network != "" {
		msg.Header.Set(bus.HeaderNetwork, d.Network)
	}
	if d.Format != "" {
		msg.Header.Set(bus.HeaderFormat, d.Format)
	}
	if d.Remote != "" {
		msg.Header.Set(bus.HeaderRemote, d.Remote)
	}
	var opts []jetstream.PublishOpt
	if len(d.Data) > 0 {
		opts = append(opts, jetstream.WithMsgID("dlq:"+ids.Event(d.Stage+"/"+d.Network, d.Data).String()))
	}
	if _, err := bus.PublishSettled(ctx, js, msg, opts...); err != nil {
		return fmt.Errorf("dlq.Publish: %w", err)
	}
	return nil
}
