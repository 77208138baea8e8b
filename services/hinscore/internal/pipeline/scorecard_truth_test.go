package pipeline

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/hinscore/internal/truthref"
	"github.com/hinscore/hinscore/services/scorecard"
)

// TestScorecardsMatchTruthReference sends six days of the simulator's
// behaviour networks (per network: clean responders, a repeat offender,
// an exception over-user, a slow but compliant one, a small one) through
// the pipeline, checks every outcome against the truth field by field,
// builds the day scorecards from ClickHouse, and compares every figure of
// every network and responder on their JSON with truthref's independent
// computation from the truth files: class rates and the suspect rate with
// their Wilson intervals, time to fulfil and to acknowledge, refusals by
// code, peer median, excess, flags over the last four days, priority and
// rank.
func TestScorecardsMatchTruthReference(t *testing.T) {
	plan, err := simulator.Generate(simulator.Config{Requests: 12000, Seed: 24, Networks: simulator.BehaviourNetworks(),
		Start: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Span: 6 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, want := runSimulated(ctx, t, plan)
	assertMatchesTruth(t, ctx, p, plan, want)
	assertFieldsMatchTruth(t, ctx, p, plan)

	ref := referenceFigures(t, plan)
	conn, _ := p.ClickHouse()
	cards, err := scorecard.Build(ctx, conn, scorecard.Query{Granularity: "day"}, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	var seen []truthref.Key
	bad := 0
	for _, c := range cards {
		b, err := scorecard.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		diffs, keys, err := truthref.CompareCard(b, ref, truthref.DefaultParams())
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, keys...)
		for _, d := range diffs {
			if bad++; bad <= 40 {
				t.Error(d)
			}
		}
	}
	for k := range ref {
		if !slices.Contains(seen, k) {
			t.Errorf("%v: in the truth, on no card", k)
		}
	}
	logReference(t, ref)
	if bad > 0 {
		t.Errorf("%d figures of %d cards differ from the reference", bad, len(cards))
	}
}

func referenceFigures(t *testing.T, plan *simulator.Plan) map[truthref.Key]*truthref.Figures {
	t.Helper()
	dir := t.TempDir()
	if err := plan.WriteTruth(dir); err != nil {
		t.Fatal(err)
	}
	truth := readTruth(t, plan)
	sla, err := truthref.ReadSLAs(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := truthref.Compute(truth.Requests, sla, truthref.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// logReference logs what the comparison covered, and fails a run whose
// plan gives the flags nothing to show: a repeat offender, a flagged
// entity that is not one, a small sample.
func logReference(t *testing.T, ref map[truthref.Key]*truthref.Figures) {
	t.Helper()
	var entities, flagged, repeat, small int
	for _, f := range ref {
		entities++
		if f.Ranking.Flagged {
			flagged++
		}
		if f.Ranking.RepeatOffender {
			repeat++
		}
		if !f.Ranking.Peer {
			small++
		}
	}
	t.Logf("compared %d entity-days with the reference: %d flagged, %d repeat offenders, %d small samples", entities, flagged, repeat, small)
	if repeat == 0 || flagged == repeat || small == 0 {
		t.Errorf("the plan does not exercise the flags: %d flagged, %d repeat offenders, %d small", flagged, repeat, small)
	}
}
