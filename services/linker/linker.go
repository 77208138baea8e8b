// Package linker joins every request observed on EVENTS to what answered it
// and publishes one Outcome per request chain to OUTCOMES.
//
// The join itself (package join) is pure and deterministic: event time
// decides, versions count re-decisions, so replaying a partition gives the
// same outcomes, which JetStream (Nats-Msg-Id) and the ReplacingMergeTree
// downstream deduplicate. The Linker around it owns the bus: replicas share
// the partitions through leases (lease.go); the owner of a partition
// restores its last checkpoint, replays EVENTS from the sequence after it,
// checkpoints periodically, and records every idle-rule decision (the one
// input that is not in EVENTS) so that any replay makes it again.
package linker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/linker/join"
)

// Stage names the linker in DLQ messages.
const Stage = "linker"

// OverflowReason is the reason code of a chain closed because its partition
// reached its cap of pending chains (Config.MaxPending).
const OverflowReason = join.OverflowReason

// CheckpointVersion is the schema version written in every checkpoint.
const CheckpointVersion = join.CheckpointVersion

// ErrBadCheckpoint reports a checkpoint that cannot be restored;
// ErrBadMark an idle-rule record that cannot be decoded.
var (
	ErrBadCheckpoint = join.ErrBadCheckpoint
	ErrBadMark       = join.ErrBadMark
)

// Linker is the service component: it consumes the partitions of EVENTS it
// holds the lease of and publishes Outcomes.
type Linker struct {
	cfg   Config
	rules join.Rules
	js    jetstream.JetStream
	log   zerolog.Logger
	clock service.Clock
	m     *metrics

	mu       sync.Mutex
	started  bool
	stopped  bool
	drain    chan struct{} // closed by Shutdown: finish what the streams hold, checkpoint, release
	cancel   context.CancelFunc
	done     chan struct{} // closed when the balancer and every partition have stopped
	owned    map[uint32]*runner
	balanced bool // a first lease round has run
}

// New validates the configuration and registers the metrics; nothing runs
// before Start. A nil registerer or clock gets a private registry and the
// wall clock.
func New(cfg Config, js jetstream.JetStream, log zerolog.Logger, reg prometheus.Registerer, clock service.Clock) (*Linker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("linker.New: %w", err)
	}
	if js == nil {
		return nil, errors.New("linker.New: nil JetStream")
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if clock == nil {
		clock = service.SystemClock{}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("linker.New: %w", err)
	}
	return &Linker{cfg: cfg, rules: joinRules(newRules(cfg)), js: js, log: log, clock: clock, m: m,
		drain: make(chan struct{}), owned: map[uint32]*runner{}}, nil
}

// joinRules are the rules of the configuration as the join takes them.
func joinRules(r rules) join.Rules {
	return join.Rules{Limits: r.limits, Calendar: r.calendar, Window: r.window, SideWait: r.sideWait, Lateness: r.lateness, Idle: r.idle, Retention: r.retention, MaxPending: r.maxPending}
}

// Start launches the lease balancer, which claims partitions and starts
// their consumers; it returns at once.
func (l *Linker) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.stopped {
		return nil
	}
	l.started = true
	// The run outlives Start's ctx (SIGTERM cancels it before Shutdown):
	// Shutdown decides when consuming and publishing stop.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	l.done = make(chan struct{})
	go l.balance(runCtx)
	mode := "shared"
	if !l.cfg.dynamic() {
		mode = "static"
	}
	l.log.Info().Str("replica", l.cfg.ReplicaID).Str("assignment", mode).Uints32("partitions", l.cfg.partitions()).
		Int("partition_count", l.cfg.PartitionCount).Dur("lateness", l.cfg.Lateness).Dur("idle", l.cfg.Idle).
		Dur("lease_ttl", l.cfg.LeaseTTL).Str("sla_zone", l.cfg.SLAZone).Dur("window", l.cfg.Window).Msg("linker started")
	return nil
}

// Shutdown lets every partition finish the events its stream already holds,
// waits for the acknowledgement of every outcome they produced, writes a
// last checkpoint per partition and releases the leases, so that another
// replica takes over at once. When ctx ends first it abandons them (the next
// owner resumes from the previous checkpoint and republishes).
func (l *Linker) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return nil
	}
	l.stopped = true
	started := l.started
	l.mu.Unlock()
	close(l.drain)
	if !started {
		return nil
	}
	defer l.cancel()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		l.cancel()
		<-l.done
		return fmt.Errorf("linker.Shutdown: %w", ctx.Err())
	}
}

// kill stops everything at once, as a crash would: no flush, no checkpoint,
// no lease released. Tests close the NATS connection first, so that nothing
// in flight completes either.
func (l *Linker) kill() {
	l.mu.Lock()
	l.stopped = true
	started := l.started
	l.mu.Unlock()
	if started {
		l.cancel()
		<-l.done
	}
}

// Ready reports whether the replica has taken its partitions and every one
// of them is consuming.
func (l *Linker) Ready(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.stopped:
		return errors.New("linker: shutting down")
	case !l.started:
		return errors.New("linker: not started")
	case !l.balanced:
		return errors.New("linker: partition leases not taken yet")
	}
	consuming := 0
	for _, r := range l.owned {
		if r.consuming.Load() {
			consuming++
		}
	}
	if consuming < len(l.owned) {
		return fmt.Errorf("linker: %d of %d partitions consuming", consuming, len(l.owned))
	}
	if !l.cfg.dynamic() && len(l.owned) < len(l.cfg.Partitions) {
		return fmt.Errorf("linker: %d of %d partitions leased", len(l.owned), len(l.cfg.Partitions))
	}
	return nil
}
