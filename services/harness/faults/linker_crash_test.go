package faults

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"
)

// TestLinkerCrashes is issue 4's crash test, in the full suite (make
// faults) or alone with HINSCORE_FAULTS=linker: more than 200,000 events,
// the linker killed with SIGKILL (no flush, no checkpoint, no lease release)
// at five random points and restarted each time from its checkpoint; the
// outcome set in ClickHouse must equal an uninterrupted run's, with nothing
// missing and nothing counted twice.
func TestLinkerCrashes(t *testing.T) {
	mode := os.Getenv("HINSCORE_FAULTS")
	if mode != "full" && mode != "linker" {
		t.Skip("part of the full fault suite: make faults, or HINSCORE_FAULTS=linker")
	}
	s := newSuite(t)
	// 100,000 requests: their answers, notifications, duplicates and
	// malformed frames make some 205,000 frames. Two hours of event time
	// keep the frames in flight within a second of event time.
	s.traffic.Requests, s.traffic.Seed, s.traffic.Rate, s.traffic.Span = 100000, 23, 0, 2*time.Hour
	// Unpaced, a cross-community feed would run hours of event time
	// through in a second; the crash test is the linker's with HL7.
	s.traffic.XCAJourneys = 0
	s.baseline = nil
	var frames int
	t.Run("no-fault", func(t *testing.T) {
		run, err := NewRun(s.traffic)
		if err != nil {
			t.Fatal(err)
		}
		frames = run.Plan.Frames()
		if frames < 200000 {
			t.Fatalf("the plan has %d frames, the crash test needs 200,000 events", frames)
		}
		s.baseline = s.scenario(t, spec{}).Rows
	})
	if s.baseline == nil || t.Failed() {
		t.Fatal("the run without faults failed")
	}
	rng := rand.New(rand.NewPCG(4, 2026))
	shares := make([]float64, 5)
	for i := range shares {
		shares[i] = 0.05 + 0.9*rng.Float64()
	}
	slices.Sort(shares)
	t.Logf("%d frames; linker killed after %.3v of them", frames, shares)
	kills := &killInTurn{names: slices.Repeat([]string{Linker}, len(shares)), shares: shares}
	t.Run("linker-killed-5-times", func(t *testing.T) {
		s.scenario(t, spec{fault: kills.fault, check: func(ctx context.Context, c *Cluster, r *Run) { kills.check(ctx, t, c, r) }})
	})
}
