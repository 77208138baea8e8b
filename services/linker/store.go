package linker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/linker/join"
)

// mark is an idle-rule record of a partition and its sequence in the
// records' stream.
type mark struct {
	seq uint64
	join.Mark
}

// stores are what the linker keeps on JetStream besides OUTCOMES: the
// checkpoints (an object store: a partition's state can be far larger than a
// message), the partition leases (a KV bucket whose TTL expires the leases of
// a replica that stopped renewing them) and the idle-rule records (a stream).
// They take the replication of EVENTS.
type stores struct {
	js          jetstream.JetStream
	checkpoints jetstream.ObjectStore
	leases      jetstream.KeyValue
	marksStream string
	marksPrefix string
}

// Names of the linker's JetStream resources, from Config.Consumer.
func checkpointBucket(consumer string) string { return consumer + "_checkpoints" }
func leaseBucket(consumer string) string      { return consumer + "_leases" }
func marksStream(consumer string) string      { return strings.ToUpper(consumer) + "_WATERMARKS" }

func checkpointName(p uint32) string { return "partition-" + strconv.FormatUint(uint64(p), 10) }
func leaseKey(p uint32) string       { return "partition." + strconv.FormatUint(uint64(p), 10) }

const replicaPrefix = "replica."

func openStores(ctx context.Context, js jetstream.JetStream, cfg Config) (*stores, error) {
	events, err := bus.WaitStream(ctx, js, bus.StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("linker.openStores: %w", err)
	}
	replicas := max(events.CachedInfo().Config.Replicas, 1)
	st := &stores{js: js, marksStream: marksStream(cfg.Consumer), marksPrefix: cfg.Consumer + ".watermarks."}
	st.checkpoints, err = bus.EnsureObjectStore(ctx, js, jetstream.ObjectStoreConfig{
		Bucket:      checkpointBucket(cfg.Consumer),
		Description: "hinscore linker: one checkpoint per EVENTS partition",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("linker.openStores checkpoints: %w", err)
	}
	st.leases, err = bus.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      leaseBucket(cfg.Consumer),
		Description: "hinscore linker: partition leases and live replicas",
		History:     1,
		TTL:         cfg.LeaseTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("linker.openStores leases: %w", err)
	}
	_, err = bus.EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:        st.marksStream,
		Description: "hinscore linker: idle-rule watermark moves, replayed with EVENTS",
		Subjects:    []string{st.marksPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Retention:   jetstream.LimitsPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("linker.openStores marks: %w", err)
	}
	return st, nil
}

func (st *stores) marksSubject(p uint32) string {
	return st.marksPrefix + strconv.FormatUint(uint64(p), 10)
}

// loadCheckpoint returns a partition's checkpoint, nil when it has none.
func (st *stores) loadCheckpoint(ctx context.Context, p uint32) ([]byte, error) {
	data, err := st.checkpoints.GetBytes(ctx, checkpointName(p))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("linker.loadCheckpoint %d: %w", p, err)
	}
	return data, nil
}

func (st *stores) saveCheckpoint(ctx context.Context, p uint32, data []byte) error {
	if _, err := st.checkpoints.PutBytes(ctx, checkpointName(p), data); err != nil {
		return fmt.Errorf("linker.saveCheckpoint %d: %w", p, err)
	}
	return nil
}

// loadMarks reads a partition's idle-rule records after stream sequence
// after, and returns them with the sequence of the last record of the
// partition (the expected last sequence of the next one).
func (st *stores) loadMarks(ctx context.Context, p uint32, after uint64) ([]mark, uint64, error) {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{st.marksSubject(p)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	cons, err := st.js.OrderedConsumer(ctx, st.marksStream, cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("linker.loadMarks %d: %w", p, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("linker.loadMarks %d: %w", p, err)
	}
	last := after
	var marks []mark
	for remaining := info.NumPending; remaining > 0; {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return nil, 0, fmt.Errorf("linker.loadMarks %d: %w", p, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return nil, 0, fmt.Errorf("linker.loadMarks %d: %w", p, err)
		}
		jm, err := join.DecodeMark(msg.Data())
		if err != nil {
			// A record the linker cannot read would make every replay
			// differ from the run that wrote it: refuse to go on.
			return nil, 0, fmt.Errorf("linker.loadMarks %d seq %d: %w", p, md.Sequence.Stream, err)
		}
		m := mark{seq: md.Sequence.Stream, Mark: jm}
		marks = append(marks, m)
		last = m.seq
		remaining = md.NumPending
	}
	return marks, last, nil
}

// errFenced reports that another replica wrote to a partition this one
// thought it owned.
var errFenced = errors.New("linker: partition written by another replica")

// publishMark stores an idle-rule record, only if the partition's last
// record is still expectLast: a replica that lost its lease cannot slip a
// record in behind its successor.
func (st *stores) publishMark(ctx context.Context, p uint32, data []byte, expectLast uint64) (uint64, error) {
	ack, err := st.js.PublishMsg(ctx, &nats.Msg{Subject: st.marksSubject(p), Data: data},
		jetstream.WithExpectLastSequencePerSubject(expectLast))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return 0, fmt.Errorf("linker.publishMark %d: %w", p, errFenced)
	}
	if err != nil {
		return 0, fmt.Errorf("linker.publishMark %d: %w", p, err)
	}
	return ack.Sequence, nil
}
