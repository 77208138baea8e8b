package faults

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Backlog watches how far each consuming stage of the pipeline is behind
// its stream: every consumer's undelivered plus unacknowledged messages,
// summed per stage ("EVENTS/linker", "EVENTS/chwriter",
// "OUTCOMES/chwriter"), sampled until Stop. A stage that cannot keep up
// shows as the one whose backlog grows; the peaks say which stage held the
// traffic back.
type Backlog struct {
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	peak map[string]uint64
	last map[string]uint64
	errs int
}

// backlogStreams are the streams whose consumers are stages of the pipeline.
var backlogStreams = [...]string{"EVENTS", "OUTCOMES"}

// WatchBacklog samples the consumers of EVENTS and OUTCOMES on the NATS
// server at natsURL every interval.
func WatchBacklog(ctx context.Context, natsURL string, every time.Duration) (*Backlog, error) {
	nc, err := nats.Connect(natsURL, nats.Name("faults-backlog"))
	if err != nil {
		return nil, fmt.Errorf("faults.WatchBacklog: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("faults.WatchBacklog: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	b := &Backlog{nc: nc, cancel: cancel, done: make(chan struct{}), peak: map[string]uint64{}, last: map[string]uint64{}}
	go func() {
		defer close(b.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			b.sample(ctx, js)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return b, nil
}

// stageOf names a consumer's stage: its stream and the service prefix of
// its name (linker-p3-…, chwriter_events).
func stageOf(stream, consumer string) string {
	name, _, _ := strings.Cut(consumer, "_")
	name, _, _ = strings.Cut(name, "-")
	return stream + "/" + name
}

func (b *Backlog) sample(ctx context.Context, js jetstream.JetStream) {
	now := map[string]uint64{}
	failed := false
	for _, name := range backlogStreams {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := js.Stream(sctx, name)
		if err != nil {
			cancel()
			failed = true
			continue
		}
		l := st.ListConsumers(sctx)
		for info := range l.Info() {
			now[stageOf(name, info.Name)] += info.NumPending + uint64(info.NumAckPending)
		}
		if l.Err() != nil {
			failed = true
		}
		cancel()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if failed {
		b.errs++
	}
	for stage, n := range now {
		b.peak[stage] = max(b.peak[stage], n)
	}
	b.last = now
}

// Stop ends the sampling and returns each stage's peak backlog and the
// number of samples that could not be read in full.
func (b *Backlog) Stop() (peak map[string]uint64, failedSamples int) {
	b.cancel()
	<-b.done
	b.nc.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak, b.errs
}
