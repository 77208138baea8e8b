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
	// Start is the first request's event time (default 10:00 UTC
	// yesterday). A suite sets it once, so that its scenarios' plans are
	// the same even when the suite runs past midnight.
	Start time.Time
	// Span is how much event time the requests cover (default 30m). Time compression sets how much event time a
	// frame stands for; a rejected frame re-sent behind the frames in
	// flight must stay within the linker's lateness, so fault runs keep
	// Window × (Span / frames) to a few seconds.
	Span time.Duration
	// Window is the frames in flight per connection (default 16).
	Window int
	// Acked, when set, is also called for every acknowledgement.
	Acked func(network string, m simulator.Message, accepted bool, at time.Time)
	// XCAJourneys, when positive, adds the simulator's cross-community
	// traffic (newXCA): audits over syslog-TLS, SOAP copies over HTTP.
	XCAJourneys int
}

// Run is one drive of traffic through a cluster.
type Run struct {
	Plan *simulator.Plan
	// FHIR, when it has pairs, is posted beside the plan by Drive.
	FHIR FHIRLoad
	// XCA, when set, is sent beside the plan by Drive to XCATargets
	// (Cluster.XCATargets).
	XCA          *simulator.XCAPlan
	XCATargets   map[string]simulator.XCATarget
	xcaDelivered atomic.Int64
	xcaStats     simulator.XCAStats
	// fhirRetried counts the FHIR load's posts sent again (no connection,
	// 5xx).
	fhirRetried atomic.Int64
	acked       atomic.Int64
	span        time.Duration
}

// NewRun generates the traffic's plan. Every scenario with the same
// Requests and Seed gets the same plan, hence the same truth.
func NewRun(t Traffic) (*Run, error) {
	r := &Run{}
	if t.Span == 0 {
		t.Span = 30 * time.Minute
	}
	if t.Start.IsZero() {
		t.Start = DefaultStart(time.Now())
	}
	if t.Window == 0 {
		t.Window = 16
	}
	cfg := simulator.Config{
		Requests: t.Requests, Seed: t.Seed, Rate: t.Rate, Window: t.Window,
		Start: t.Start, Span: t.Span,
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
	r.Plan, r.span = p, t.Span
	if t.XCAJourneys > 0 {
		if r.XCA, err = newXCA(t, p.Frames()); err != nil {
			return nil, fmt.Errorf("faults.NewRun: %w", err)
		}
	}
	return r, nil
}

// DefaultStart is the default first request time: 10:00 UTC of the day
// before now.
func DefaultStart(now time.Time) time.Time {
	return now.UTC().Truncate(24 * time.Hour).Add(-14 * time.Hour)
}

// Span is how much event time the plan's requests cover.
func (r *Run) Span() time.Duration { return r.span }

// Events is the number of distinct events the run stores: the plan's
// valid messages, the FHIR load's and the cross-community feeds'.
func (r *Run) Events() int { return r.Plan.ValidMessages() + r.FHIR.Events() + r.xcaEvents() }

func (r *Run) xcaEvents() int {
	if r.XCA == nil {
		return 0
	}
	return XCAEvents(r.XCA)
}

// Outcomes is the number of outcomes the run makes: one per request (and
// per cross-community transaction).
func (r *Run) Outcomes() int {
	return len(r.Plan.Requests()) + r.FHIR.Pairs + r.XCATransactions()
}

// Truth is network → outcome class → count: the plan's, every FHIR pair
// fulfilled, and the cross-community plan's.
func (r *Run) Truth() map[string]map[string]int {
	t := r.Plan.Truth()
	if r.FHIR.Pairs > 0 {
		t[r.FHIR.Network] = map[string]int{"fulfilled": r.FHIR.Pairs}
	}
	if r.XCA != nil {
		maps.Copy(t, r.XCA.Truth())
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
	var faultErr, fhirErr, xcaErr error
	var wg sync.WaitGroup
	if r.FHIR.Pairs > 0 {
		wg.Go(func() {
			if fhirErr = r.FHIR.drive(ctx, r); fhirErr != nil {
				cancel()
			}
		})
	}
	if r.XCA != nil {
		wg.Go(func() {
			if xcaErr = r.driveXCA(ctx); xcaErr != nil {
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
	if err := errors.Join(fhirErr, xcaErr); err != nil {
		return st, fmt.Errorf("faults.Drive: %w", err)
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
	// Rows is outcome_id → the outcome's row, every column.
	Rows map[string]OutcomeRow
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

// CountEvents reads the number of distinct events of some networks.
func CountEvents(ctx context.Context, d DSN, networks []string) (uint64, error) {
	conn, err := Connect(ctx, d, d.Database)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM events WHERE has(?, network)", networks).Scan(&n); err != nil {
		return 0, fmt.Errorf("faults.CountEvents: %w", err)
	}
	return n, nil
}

// ReadSnapshot reads the counts, every outcome's row and the class counts.
func ReadSnapshot(ctx context.Context, d DSN) (Snapshot, error) {
	s := Snapshot{Classes: map[string]map[string]uint64{}}
	var err error
	if s.Events, s.Outcomes, err = Counts(ctx, d); err != nil {
		return s, err
	}
	conn, err := Connect(ctx, d, d.Database)
	if err != nil {
		return s, err
	}
	defer conn.Close()
	if s.Rows, err = ReadOutcomeRows(ctx, conn); err != nil {
		return s, err
	}
	for _, row := range s.Rows {
		network, class := row.Get("network"), row.Get("outcome")
		if s.Classes[network] == nil {
			s.Classes[network] = map[string]uint64{}
		}
		s.Classes[network][class]++
	}
	return s, nil
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
