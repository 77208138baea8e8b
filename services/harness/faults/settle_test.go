package faults

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
)

// fakeLinker serves a linker's /metrics with the marks the test sets.
type fakeLinker struct {
	mu                       sync.Mutex
	owned, caught, pending   int
	published, scrapes, bump int // bump: outcomes_total grows by this per scrape
}

func (f *fakeLinker) set(owned, caught, pending, published int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.owned, f.caught, f.pending, f.published, f.bump = owned, caught, pending, published, 0
}

func (f *fakeLinker) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scrapes++
	f.published += f.bump
	fmt.Fprintf(w, "# TYPE hinscore_linker_owned_partitions gauge\nhinscore_linker_owned_partitions %d\n", f.owned)
	for p := range f.owned {
		caught := 0
		if p < f.caught {
			caught = 1
		}
		pending := 0
		if p == 0 {
			pending = f.pending
		}
		fmt.Fprintf(w, "hinscore_linker_caught_up{partition=\"%d\"} %d\nhinscore_linker_pending_chains{partition=\"%d\"} %d\n", p, caught, p, pending)
	}
	fmt.Fprintf(w, "hinscore_linker_outcomes_total{class=\"fulfilled\",network=\"n\"} %d\n", f.published)
}

// TestPipelineSettled: each mark in turn holds the wait back — a
// partition not caught up, a chain pending, an outcome the writer has not
// acknowledged (stored in OUTCOMES, delivered or not), the linker
// publishing meanwhile — and the wait ends once all of them hold.
func TestPipelineSettled(t *testing.T) {
	opts := bus.DefaultStreamOptions()
	_, js := bustest.Start(t, &opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	consumers := map[string]jetstream.Consumer{}
	for _, c := range []struct{ stream, name string }{{bus.StreamEvents, "chwriter_events"}, {bus.StreamOutcomes, "chwriter_outcomes"}} {
		cons, err := js.CreateOrUpdateConsumer(ctx, c.stream, jetstream.ConsumerConfig{Durable: c.name, AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		consumers[c.stream] = cons
	}
	f := &fakeLinker{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	marks := ScrapeLinker(strings.TrimPrefix(srv.URL, "http://"))
	settled := func(want bool, what string) {
		t.Helper()
		if ok, state := PipelineSettled(ctx, marks, js); ok != want {
			t.Errorf("%s: settled %t (%s), want %t", what, ok, state, want)
		}
	}

	f.set(4, 4, 0, 10)
	settled(true, "every partition caught up, nothing pending, nothing unacknowledged")
	f.set(0, 0, 0, 0)
	settled(false, "no partition owned (the linker not started, or between leases)")
	f.set(4, 3, 0, 10)
	settled(false, "a partition not caught up")
	f.set(4, 4, 1, 10)
	settled(false, "a chain pending")
	f.set(4, 4, 0, 10)
	f.mu.Lock()
	f.bump = 1
	f.mu.Unlock()
	settled(false, "the linker publishing while the writer was looked at")
	f.set(4, 4, 0, 11)

	if _, err := js.Publish(ctx, bus.OutcomeSubject("n"), []byte("outcome")); err != nil {
		t.Fatal(err)
	}
	settled(false, "an outcome in OUTCOMES not delivered to the writer")
	batch, err := consumers[bus.StreamOutcomes].Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 1 {
		t.Fatalf("fetched %d messages, want 1", len(msgs))
	}
	settled(false, "an outcome delivered to the writer, not acknowledged (not yet INSERTed)")
	done := make(chan error, 1)
	go func() {
		done <- WaitPipelineSettled(ctx, marks, js, 10*time.Second)
	}()
	if err := msgs[0].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("once acknowledged: %v", err)
	}
	f.set(4, 4, 2, 11)
	err = WaitPipelineSettled(ctx, marks, js, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "2 chains pending") {
		t.Errorf("wait with a chain pending: %v, want a timeout saying where the linker stands", err)
	}
}
