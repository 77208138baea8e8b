package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/harness/simulator"
)

// Traffic is the simulated load of a scenario.
type Traffic struct {
	Requests int
	Seed     int64
	// Rate is frames/s in total (steady), 0 = as fast as acknowledged.
	Rate float64
	// Progress receives the simulator's progress line (nil = none).
	Progress io.Writer
	// Span is how much event time the requests cover (default 30m, from
	// 10:00 UTC yesterday). Time compression sets how much event time a
	// frame stands for; a rejected frame re-sent behind the frames in
	// flight must stay within the linker's lateness, so fault runs keep
	// Window × (Span / frames) to a few seconds.
	Span time.Duration
	// Window is the frames in flight per connection (default 16).
	Window int
	// Acked, when set, is also called for every acknowledgement.
	Acked func(network string, m simulator.Message, accepted bool, at time.Time)
}

// Run is one drive of traffic through a cluster.
type Run struct {
	Plan *simulator.Plan
	// FHIR, when it has pairs, is posted beside the plan by Drive.
	FHIR FHIRLoad
	// fhirRetried counts the FHIR load's posts sent again (no connection,
	// 5xx).
	fhirRetried atomic.Int64
	acked       atomic.Int64
}

// NewRun generates the traffic's plan. Every scenario with the same
// Requests and Seed gets the same plan, hence the same truth.
func NewRun(t Traffic) (*Run, error) {
	r := &Run{}
	if t.Span == 0 {
		t.Span = 30 * time.Minute
	}
	if t.Window == 0 {
		t.Window = 16
	}
	cfg := simulator.Config{
		Requests: t.Requests, Seed: t.Seed, Rate: t.Rate, Window: t.Window,
		Start: time.Now().UTC().Truncate(24 * time.Hour).Add(-14 * time.Hour), Span: t.Span,
		Progress: t.Progress, ProgressEvery: 2 * time.Second,
		// Outages in the scenarios last seconds; the linker idles at 6 s.
		ReconnectWithin: 90 * time.Second,
		// A NATS restart can make the ingest answer AE for a while.
		MaxRetries: 20,
		Acked: func(network string, m simulator.Message, accepted bool, at time.Time) {
			r.acked.Add(1)
			if t.Acked != nil {
				t.Acked(network, m, accepted, at)
			}
		},
	}
	p, err := simulator.Generate(cfg)
	if err != nil {
		return nil, fmt.Errorf("faults.NewRun: %w", err)
	}
	r.Plan = p
	return r, nil
}

// Events is the number of distinct events the run stores: the plan's
// valid messages and the FHIR load's.
func (r *Run) Events() int { return r.Plan.ValidMessages() + r.FHIR.Events() }

// Outcomes is the number of outcomes the run makes: one per request.
func (r *Run) Outcomes() int { return len(r.Plan.Requests()) + r.FHIR.Pairs }

// Truth is network → outcome class → count: the plan's, and every FHIR
// pair fulfilled.
func (r *Run) Truth() map[string]map[string]int {
	t := r.Plan.Truth()
	if r.FHIR.Pairs > 0 {
		t[r.FHIR.Network] = map[string]int{"fulfilled": r.FHIR.Pairs}
	}
	return t
}

// FHIRRetried is how many of the FHIR load's posts were sent again.
func (r *Run) FHIRRetried() int64 { return r.fhirRetried.Load() }

// Acked is the number of acknowledgements read so far.
func (r *Run) Acked() int64 { return r.acked.Load() }

// AfterShare waits until share (0…1) of the plan's frames are acknowledged.
func (r *Run) AfterShare(ctx context.Context, share float64) error {
	n := int64(share * float64(r.Plan.Frames()))
	return waitFor(ctx, 10*time.Minute, fmt.Sprintf("%d frames acknowledged", n), func() bool { return r.Acked() >= n })
}

// Fault is injected while the traffic flows; it returns when the fault is
// over (services restarted).
type Fault func(ctx context.Context, r *Run) error

// Drive sends the plan to the cluster (and the FHIR load) while fault
// runs beside it, and returns the simulator's stats once all are done.
func (r *Run) Drive(ctx context.Context, targets map[string]string, fault Fault) (simulator.Stats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var faultErr, fhirErr error
	var wg sync.WaitGroup
	if r.FHIR.Pairs > 0 {
		wg.Go(func() {
			if fhirErr = r.FHIR.drive(ctx, r); fhirErr != nil {
				cancel()
			}
		})
	}
	if fault != nil {
		wg.Go(func() {
			if faultErr = fault(ctx, r); faultErr != nil {
				cancel()
			}
		})
	}
	st, err := r.Plan.Send(ctx, targets)
	if err != nil {
		cancel()
	}
	wg.Wait()
	if faultErr != nil {
		return st, fmt.Errorf("faults.Drive: fault: %w", faultErr)
	}
	if fhirErr != nil {
		return st, fmt.Errorf("faults.Drive: %w", fhirErr)
	}
	if err != nil {
		return st, fmt.Errorf("faults.Drive: %w", err)
	}
	if st.Failed != 0 || st.Unexpected != 0 {
		return st, fmt.Errorf("faults.Drive: %d valid messages never accepted, %d malformed accepted (%s)", st.Failed, st.Unexpected, st)
	}
	return st, nil
}

// Snapshot is what a run left in ClickHouse (the deduplicated views).
type Snapshot struct {
	Events, Outcomes uint64
	// Classes is network → outcome class → count.
	Classes map[string]map[string]uint64
	// OutcomeSet is outcome_id → "network/class".
	OutcomeSet map[string]string
}

// Counts reads the number of distinct events and outcomes.
func Counts(ctx context.Context, d DSN) (events, outcomes uint64, err error) {
	conn, err := Connect(ctx, d, d.Database)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	if err := conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&events); err != nil {
		return 0, 0, fmt.Errorf("faults.Counts: events: %w", err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM outcomes").Scan(&outcomes); err != nil {
		return 0, 0, fmt.Errorf("faults.Counts: outcomes: %w", err)
	}
	return events, outcomes, nil
}

// ReadSnapshot reads the counts, the class counts and the outcome set.
func ReadSnapshot(ctx context.Context, d DSN) (Snapshot, error) {
	s := Snapshot{Classes: map[string]map[string]uint64{}, OutcomeSet: map[string]string{}}
	var err error
	if s.Events, s.Outcomes, err = Counts(ctx, d); err != nil {
		return s, err
	}
	conn, err := Connect(ctx, d, d.Database)
	if err != nil {
		return s, err
	}
	defer conn.Close()
	rows, err := conn.Query(ctx, "SELECT toString(outcome_id), network, outcome FROM outcomes")
	if err != nil {
		return s, fmt.Errorf("faults.ReadSnapshot: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, network, class string
		if err := rows.Scan(&id, &network, &class); err != nil {
			return s, fmt.Errorf("faults.ReadSnapshot: %w", err)
		}
		if s.Classes[network] == nil {
			s.Classes[network] = map[string]uint64{}
		}
		s.Classes[network][class]++
		s.OutcomeSet[id] = network + "/" + class
	}
	return s, rows.Err()
}

// WaitStored waits until ClickHouse holds every distinct message and an
// outcome for every request of the run, lets stragglers (a duplicate, an
// orphan) show up for settle, and reads the snapshot.
func WaitStored(ctx context.Context, d DSN, r *Run, timeout, settle time.Duration) (Snapshot, error) {
	wantEvents, wantOutcomes := uint64(r.Events()), uint64(r.Outcomes())
	var events, outcomes uint64
	err := waitFor(ctx, timeout, "events and outcomes stored", func() bool {
		var err error
		events, outcomes, err = Counts(ctx, d)
		return err == nil && events >= wantEvents && outcomes >= wantOutcomes
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("%w: %d of %d events, %d of %d outcomes", err, events, wantEvents, outcomes, wantOutcomes)
	}
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return Snapshot{}, ctx.Err()
	}
	return ReadSnapshot(ctx, d)
}

// CheckTruth lists every way the snapshot differs from the run: events in
// ≠ events stored, an outcome count, or a class count of a network.
func (s Snapshot) CheckTruth(r *Run) []string {
	var out []string
	if s.Events != uint64(r.Events()) {
		out = append(out, fmt.Sprintf("events: %d stored, %d sent", s.Events, r.Events()))
	}
	if s.Outcomes != uint64(r.Outcomes()) {
		out = append(out, fmt.Sprintf("outcomes: %d stored, %d requests", s.Outcomes, r.Outcomes()))
	}
	truth := r.Truth()
	for _, n := range slices.Sorted(maps.Keys(truth)) {
		classes := map[string]bool{}
		for c := range truth[n] {
			classes[c] = true
		}
		for c := range s.Classes[n] {
			classes[c] = true
		}
		for _, c := range slices.Sorted(maps.Keys(classes)) {
			if got, want := s.Classes[n][c], uint64(truth[n][c]); got != want {
				out = append(out, fmt.Sprintf("%s %s: %d stored, truth %d", n, c, got, want))
			}
		}
	}
	for n := range s.Classes {
		if _, ok := truth[n]; !ok {
			out = append(out, fmt.Sprintf("outcomes of network %q the simulator never used", n))
		}
	}
	return out
}

// DiffOutcomes lists (at most 10) outcome ids whose presence or class
// differs between two snapshots.
func DiffOutcomes(want, got map[string]string) []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if got[id] != want[id] {
			out = append(out, fmt.Sprintf("%s: %q, no-fault run %q", id, got[id], want[id]))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[id]; !ok {
			out = append(out, fmt.Sprintf("%s: %q, absent from the no-fault run", id, got[id]))
		}
	}
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("… and %d more", len(out)-10))
	}
	return out
}

// DLQCount is the number of dead letters on a subject (e.g. dlq.mllp-ingest).
func DLQCount(ctx context.Context, natsURL, subject string) (uint64, error) {
	nc, err := nats.Connect(natsURL, nats.Name("faults"))
	if err != nil {
		return 0, fmt.Errorf("faults.DLQCount: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, fmt.Errorf("faults.DLQCount: %w", err)
	}
	st, err := js.Stream(ctx, "DLQ")
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return 0, nil
		}
		return 0, fmt.Errorf("faults.DLQCount: %w", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, fmt.Errorf("faults.DLQCount: %w", err)
	}
	return info.State.Subjects[subject], nil
}
