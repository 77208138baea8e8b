package pipeline

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/hinscore/internal/truthcheck"
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
	ctx, p, plan, _ := simulateChecked(t, simulator.Config{Requests: 12000, Seed: 24, Networks: simulator.BehaviourNetworks(),
		Start: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Span: 6 * 24 * time.Hour})
	dir := t.TempDir()
	if err := plan.WriteTruth(dir); err != nil {
		t.Fatal(err)
	}
	ref := referenceFigures(t, dir)
	logReference(t, ref)
	compareScorecards(ctx, t, p, ref)
}

// TestXCAScorecardsMatchTruthReference does the same for the simulator's
// cross-community networks (ATNA audits over syslog-TLS, SOAP copies):
// every transaction against the truth field by field with truthcheck, then
// every figure of the day scorecards of every network and responding
// community (untimed audit-only transactions have no time to fulfil)
// against truthref.
func TestXCAScorecardsMatchTruthReference(t *testing.T) {
	plan, err := simulator.GenerateXCA(simulator.XCAConfig{Journeys: 300, Seed: 24,
		Start: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), Span: xcaSpan, LateMax: xcaLateMax})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, targets := startXCAPipeline(ctx, t, plan)
	if _, err := plan.Send(ctx, targets); err != nil {
		t.Fatal(err)
	}
	waitXCAOutcomes(ctx, t, p, len(plan.Requests()))
	dir := t.TempDir()
	if err := plan.WriteTruth(dir); err != nil {
		t.Fatal(err)
	}
	checkTruthDir(ctx, t, p, dir)
	compareScorecards(ctx, t, p, referenceFigures(t, dir))
}

// TestPatternScorecardsMatchTruthReference sends three months of every
// pattern the simulator speaks — HL7 v2 over MLLP (patient and legacy
// queries, a continued query, referrals with commit acks, orders with
// their acceptance, results and cancels) and FHIR over HTTP (Task
// workflows, messaging Bundles, batches, transactions, AuditEvents) —
// through the composed pipeline (embedded NATS, the local ClickHouse),
// checks every request against the truth field by field with truthcheck
// (and that every pattern, kind and class occurred), then compares the day scorecards of every pattern the simulator speaks (HL7 v2 and FHIR:
// queries, referrals, orders, record requests, each kind with its SLA;
// interim acknowledgements, cancels, partial answers) with truthref.
func TestPatternScorecardsMatchTruthReference(t *testing.T) {
	plan, err := simulator.Generate(simulator.Config{
		Requests: 1600, Seed: 25, Start: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Span: 90 * 24 * time.Hour,
		Networks: simulator.PatternNetworks(), FHIRToken: patternsToken,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p, targets := startPatternsPipeline(ctx, t, plan)
	if _, err := plan.Send(ctx, targets); err != nil {
		t.Fatal(err)
	}
	waitSettled(ctx, t, p)
	dir := t.TempDir()
	if err := plan.WriteTruth(dir); err != nil {
		t.Fatal(err)
	}
	checkTruthDir(ctx, t, p, dir)
	checkPatternCoverage(t, plan.Requests())
	compareScorecards(ctx, t, p, referenceFigures(t, dir))
}

// checkTruthDir compares every stored outcome with a truth directory, as
// `hinscore verify` does, and fails on any difference.
func checkTruthDir(ctx context.Context, t *testing.T, p *Pipeline, dir string) []truthcheck.Outcome {
	t.Helper()
	truth, err := truthcheck.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := p.ClickHouse()
	stored, err := truthcheck.ReadOutcomes(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	rep := truthcheck.Compare(truth, stored, testPatientKey)
	var out strings.Builder
	_ = rep.PrintConfusion(&out)
	_ = rep.PrintDifferences(&out)
	t.Logf("field by field against the truth:\n%s", out.String())
	if !rep.OK() {
		t.Errorf("%d differences between the stored outcomes and the truth", len(rep.Differences))
	}
	return stored
}

// compareScorecards builds the day scorecards of every network from
// ClickHouse and compares the figures on each card's JSON with the
// reference; every entity of the reference must be on a card.
func compareScorecards(ctx context.Context, t *testing.T, p *Pipeline, ref map[truthref.Key]*truthref.Figures) {
	t.Helper()
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
	t.Logf("%d cards, %d entity-days compared with the reference", len(cards), len(seen))
	if bad > 0 {
		t.Errorf("%d figures of %d cards differ from the reference", bad, len(cards))
	}
}

// referenceFigures computes truthref's figures from a truth directory.
func referenceFigures(t *testing.T, dir string) map[truthref.Key]*truthref.Figures {
	t.Helper()
	truth, err := truthcheck.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
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
// entity that is not one, a small sample, an exception overused.
func logReference(t *testing.T, ref map[truthref.Key]*truthref.Figures) {
	t.Helper()
	var entities, flagged, repeat, small, overuse int
	for _, f := range ref {
		for _, r := range f.Refusals {
			if r.Overuse {
				overuse++
			}
		}
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
	t.Logf("reference: %d entity-days, %d flagged, %d repeat offenders, %d small samples, %d exceptions overused",
		entities, flagged, repeat, small, overuse)
	if repeat == 0 || flagged == repeat || small == 0 || overuse == 0 {
		t.Errorf("the plan does not exercise the flags: %d flagged, %d repeat offenders, %d small, %d overused", flagged, repeat, small, overuse)
	}
}
