package chwriter

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/bus"
)

const (
	insertDeadLetters = `INSERT INTO dead_letters (stage, network, format, remote, reason, received_at, received_ms,
 stream, dlq_subject, dlq_seq, size)`
	tableDeadLetters = "dead_letters"
)

// deadLetterRows is a batch of dead_letters rows: where each DLQ message is
// (stream and sequence), why it is there and its size, never its bytes,
// which may hold patient identifiers and stay in the stream with its
// retention limit: the DLQ consumer is headers only (consumerConfig), and
// JetStream gives the size in the Nats-Msg-Size header.
type deadLetterRows struct {
	stage, network, format, remote, reason []string
	receivedAt                             []time.Time
	receivedMs                             []int64
	stream, subject                        []string
	seq                                    []uint64
	size                                   []uint32
}

func (r *deadLetterRows) len() int { return len(r.seq) }
func (r *deadLetterRows) reset()   { *r = deadLetterRows{} }

// add is unused: a dead letter is described by its headers and stream
// position, which addMsg reads.
func (r *deadLetterRows) add([]byte) error {
	return fmt.Errorf("%w: dead letters need the message, not its bytes", ErrUndecodable)
}

func (r *deadLetterRows) addMsg(msg jetstream.Msg) error {
	md, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("%w: DLQ message without metadata: %v", ErrUndecodable, err)
	}
	h := msg.Headers()
	stage := h.Get(bus.HeaderStage)
	if stage == "" {
		// A stage that forgot the header still said where it published.
		stage = msg.Subject()[len("dlq."):]
	}
	ts := md.Timestamp.UTC()
	if err := checkTime("timestamp", ts.UnixMilli()); err != nil {
		return err
	}
	r.stage = append(r.stage, stage)
	r.network = append(r.network, h.Get(bus.HeaderNetwork))
	r.format = append(r.format, h.Get(bus.HeaderFormat))
	r.remote = append(r.remote, h.Get(bus.HeaderRemote))
	r.reason = append(r.reason, h.Get(bus.HeaderReason))
	r.receivedAt = append(r.receivedAt, ts.Truncate(time.Second))
	r.receivedMs = append(r.receivedMs, ts.UnixMilli())
	r.stream = append(r.stream, md.Stream)
	r.subject = append(r.subject, msg.Subject())
	r.seq = append(r.seq, md.Sequence.Stream)
	r.size = append(r.size, deadLetterSize(msg))
	return nil
}

// deadLetterSize is the size of a dead letter's bytes: the Nats-Msg-Size
// header of a headers-only delivery, else (a consumer created otherwise)
// the bytes delivered.
func deadLetterSize(msg jetstream.Msg) uint32 {
	if n, err := strconv.ParseUint(msg.Headers().Get(nats.MsgSize), 10, 32); err == nil {
		return uint32(n)
	}
	return uint32(min(len(msg.Data()), 1<<32-1))
}

func (r *deadLetterRows) insert(ctx context.Context, conn driver.Conn, observe insertObserver) error {
	if r.len() == 0 {
		return nil
	}
	start := time.Now()
	err := sendColumns(ctx, conn, insertDeadLetters, tableDeadLetters, []columnValues{
		{"stage", r.stage}, {"network", r.network}, {"format", r.format}, {"remote", r.remote},
		{"reason", r.reason}, {"received_at", r.receivedAt}, {"received_ms", r.receivedMs},
		{"stream", r.stream}, {"dlq_subject", r.subject}, {"dlq_seq", r.seq}, {"size", r.size},
	})
	if err != nil {
		return err
	}
	observe(tableDeadLetters, r.len(), time.Since(start))
	return nil
}
