package linker

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/linker/join"
)

// checkpointer writes a partition's checkpoints in the background, one at a
// time, so that a large state does not hold the consumer up.
type checkpointer struct {
	l      *Linker
	st     *stores
	p      uint32
	pm     *partitionMetrics
	log    zerolog.Logger
	last   join.Position // what the last stored (or loaded) checkpoint covers
	at     time.Time     // when it was stored (loaded)
	events int           // events since
	// inflight receives the result of the write in progress; nil when none.
	inflight chan error
	writing  join.Position
	size     int
}

// due reports whether a new checkpoint should be written now. Checkpoint
// cadence is wall-clock I/O pacing, not a join decision: it reads the real
// time, not the injected clock.
func (c *checkpointer) due(at join.Position) bool {
	if !c.poll() || at == c.last {
		return false
	}
	return c.events >= c.l.cfg.CheckpointEvents || time.Since(c.at) >= c.l.cfg.CheckpointInterval
}

// poll collects a finished write; it reports whether none is in flight.
func (c *checkpointer) poll() bool {
	if c.inflight == nil {
		return true
	}
	select {
	case err := <-c.inflight:
		c.finish(err)
		return true
	default:
		return false
	}
}

func (c *checkpointer) finish(err error) {
	c.inflight = nil
	if err != nil {
		c.l.m.checkpoints.WithLabelValues("error").Inc()
		c.log.Warn().Err(err).Msg("checkpoint not stored; the previous one stays in force")
		return
	}
	c.l.m.checkpoints.WithLabelValues("ok").Inc()
	c.last, c.at = c.writing, time.Now()
	c.pm.cpBytes.Set(float64(c.size))
	c.pm.cpAge.Set(0)
}

func (c *checkpointer) start(ctx context.Context, j *join.Join, at join.Position) {
	data := j.Snapshot(make([]byte, 0, c.size+c.size/8+64), at)
	c.writing, c.size, c.events = at, len(data), 0
	ch := make(chan error, 1)
	c.inflight = ch
	go func() { ch <- c.st.saveCheckpoint(ctx, c.p, data) }()
}

// final waits for the write in flight and stores the last checkpoint.
func (c *checkpointer) final(ctx context.Context, j *join.Join, at join.Position) error {
	if c.inflight != nil {
		c.finish(<-c.inflight)
	}
	if at == c.last {
		return nil
	}
	c.start(ctx, j, at)
	err := <-c.inflight
	c.finish(err)
	if err != nil {
		return fmt.Errorf("linker.consume %d: final checkpoint: %w", c.p, err)
	}
	return nil
}

// abandon waits for a write in flight (its context ends with the run).
func (c *checkpointer) abandon() {
	if c.inflight != nil {
		c.finish(<-c.inflight)
	}
}
