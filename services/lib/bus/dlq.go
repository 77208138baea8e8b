package bus

import (
	"context"
	"fmt"

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

// PublishDLQ stores a dead letter and waits for JetStream's acknowledgement.
// The Msg-Id derives from the stage and the bytes, so a retried rejection is
// stored once; a dead letter without bytes (an oversized frame the reader
// discarded) has no Msg-Id, so that distinct ones are never merged.
func PublishDLQ(ctx context.Context, js jetstream.JetStream, d DeadLetter) error {
	msg := nats.NewMsg(DLQSubject(d.Stage))
	msg.Data = d.Data
	msg.Header.Set(HeaderStage, d.Stage)
	msg.Header.Set(HeaderReason, truncate(d.Reason, 1024))
	if d.Network != "" {
		msg.Header.Set(HeaderNetwork, d.Network)
	}
	if d.Format != "" {
		msg.Header.Set(HeaderFormat, d.Format)
	}
	if d.Remote != "" {
		msg.Header.Set(HeaderRemote, d.Remote)
	}
	var opts []jetstream.PublishOpt
	if len(d.Data) > 0 {
		opts = append(opts, jetstream.WithMsgID("dlq:"+EventID(d.Stage+"/"+d.Network, d.Data).String()))
	}
	if _, err := js.PublishMsg(ctx, msg, opts...); err != nil {
		return fmt.Errorf("bus.PublishDLQ: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
