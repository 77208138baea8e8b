package linker

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/linker/join"
)

// flushAt bounds the outcome publishes in flight before the linker waits for
// their acknowledgements (well under nats.go's async limit of 4000).
const flushAt = 512

// publisher pipelines outcome publishes and, on flush, waits for each
// acknowledgement, republishing what failed until it is stored or ctx ends.
// The join appends outcomes to batch; send publishes the new ones. The
// batch's bytes are kept until flush has them all stored.
type publisher struct {
	js       jetstream.JetStream
	log      zerolog.Logger
	m        *metrics
	batch    join.Outcomes
	inflight []inflight
}

type inflight struct {
	subject string
	msgID   string
	data    []byte
	network string
	class   hinscorev1.OutcomeClass
	fut     jetstream.PubAckFuture // nil when the async publish was refused
}

// send publishes the outcomes the join appended to the batch since the last
// send.
func (p *publisher) send() {
	for i := len(p.inflight); i < p.batch.Len(); i++ {
		w := p.batch.Entry(i)
		f := inflight{
			subject: bus.OutcomeSubject(w.Network),
			msgID:   bus.OutcomeMsgID(string(w.ID[:]), w.Version),
			data:    p.batch.Data(i),
			network: w.Network,
			class:   w.Class,
		}
		f.fut, _ = p.js.PublishMsgAsync(&nats.Msg{Subject: f.subject, Data: f.data}, jetstream.WithMsgID(f.msgID))
		p.inflight = append(p.inflight, f)
	}
}

func (p *publisher) flush(ctx context.Context) error {
	for i := range p.inflight {
		f := &p.inflight[i]
		ok := false
		if f.fut != nil {
			select {
			case <-f.fut.Ok():
				ok = true
			case err := <-f.fut.Err():
				p.log.Warn().Err(err).Str("msg_id", f.msgID).Msg("outcome publish failed; retrying")
			case <-ctx.Done():
				return fmt.Errorf("linker.flush: %w", ctx.Err())
			}
		}
		if !ok {
			if err := p.retry(ctx, f); err != nil {
				return err
			}
		}
		p.m.published(f.network, f.class)
	}
	clear(p.inflight)
	p.inflight = p.inflight[:0]
	p.batch.Reset()
	return nil
}

func (p *publisher) retry(ctx context.Context, f *inflight) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 50 * time.Millisecond
	bo.MaxInterval = 2 * time.Second
	bo.MaxElapsedTime = 0
	op := func() error {
		_, err := p.js.PublishMsg(ctx, &nats.Msg{Subject: f.subject, Data: f.data}, jetstream.WithMsgID(f.msgID))
		return err
	}
	if err := backoff.Retry(op, backoff.WithContext(bo, ctx)); err != nil {
		return fmt.Errorf("linker.flush %s: %w", f.msgID, err)
	}
	return nil
}
