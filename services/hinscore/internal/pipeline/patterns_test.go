package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/hinscore/internal/truthcheck"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
)

// patternsToken is the FHIR network's bearer token in the test.
const patternsToken = "lakeshore test token"

// startPatternsPipeline starts the pipeline with an MLLP listener for
// every HL7 v2 network of the plan and the FHIR ingest for its FHIR
// networks, and returns where the simulator sends each.
func startPatternsPipeline(ctx context.Context, t *testing.T, plan *simulator.Plan) (*Pipeline, map[string]string) {
	t.Helper()
	fhirNets := plan.FHIRNetworks()
	var hl7 []string
	for _, name := range plan.Networks() {
		if !slices.Contains(fhirNets, name) {
			hl7 = append(hl7, name)
		}
	}
	opts := testOptions(t, hl7)
	fhir := fhiringest.DefaultConfig()
	fhir.Addr = "127.0.0.1:0"
	for _, name := range fhirNets {
		fhir.Tokens[name] = []string{fhiringest.HashToken(patternsToken)}
	}
	opts.FHIR = &fhir
	// Late answers come up to 15 SLAs after their request (a referral's:
	// weeks). The linker forgets a chain Retention (default 24h) after its
	// deadline, and an answer to a forgotten chain is lost (see the
	// simulator's README, "late answers and the linker's retention"): the
	// test keeps chains for as long as the plan's answers can come.
	opts.Linker.Retention = 60 * 24 * time.Hour
	p := startForTest(ctx, t, opts)
	targets := p.MLLPAddrs()
	for _, name := range fhirNets {
		targets[name] = "http://" + p.FHIRAddr() + "/fhir/" + name + "/"
	}
	return p, targets
}

// checkPatternCoverage fails a run whose plan misses a pattern, a request
// kind, or a class the patterns can say.
func checkPatternCoverage(t *testing.T, truth []simulator.TruthRow) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range truth {
		seen["pattern "+r.Pattern]++
		seen["kind "+r.Kind]++
		seen["class "+r.Outcome]++
		if r.Acknowledged() && (!r.Answered() || r.AcknowledgedAt.Before(r.AnsweredAt)) {
			seen["interim"]++
		}
	}
	var want []string
	for _, p := range simulator.Patterns() {
		want = append(want, "pattern "+p)
	}
	for _, k := range []string{"patient_query", "document_query", "referral", "order", "record_request"} {
		want = append(want, "kind "+k)
	}
	for _, c := range simulator.Classes() {
		want = append(want, "class "+c)
	}
	for _, w := range append(want, "interim") {
		if seen[w] == 0 {
			t.Errorf("the plan has no request of %q", w)
		}
	}
	t.Logf("cases: %v", strings.ReplaceAll(fmt.Sprint(seen), "map", ""))
}

// TestPatternCheckCatchesAlteredRows runs the comparison of `hinscore
// verify` (truthcheck) against the outcomes a faithful pipeline would
// store for a plan of every pattern (no difference) and against the same
// rows with one class swapped, one responder renamed, one ttf off by a
// second, one exception dropped and one outcome missing: each is reported,
// and nothing else.
func TestPatternCheckCatchesAlteredRows(t *testing.T) {
	plan, err := simulator.Generate(simulator.Config{Requests: 400, Seed: 3, Start: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Span: 30 * 24 * time.Hour, Networks: simulator.PatternNetworks()})
	if err != nil {
		t.Fatal(err)
	}
	truth := plan.Requests()
	faithful := func() []truthcheck.Outcome {
		out := make([]truthcheck.Outcome, 0, len(truth))
		for _, r := range truth {
			out = append(out, faithfulOutcome(r))
		}
		return out
	}
	ref := readTruth(t, plan)
	if rep := truthcheck.Compare(ref, faithful(), testPatientKey); !rep.OK() {
		t.Fatalf("faithful outcomes: %d differences, first %s", len(rep.Differences), rep.Differences[0])
	}
	altered := faithful()
	find := func(ok func(simulator.TruthRow) bool) int {
		for i, r := range truth {
			if ok(r) {
				return i
			}
		}
		t.Fatal("no row to alter")
		return -1
	}
	a := find(func(r simulator.TruthRow) bool {
		return r.Pattern == simulator.PatternREF && r.Outcome == simulator.Fulfilled
	})
	altered[a].Class = simulator.RefusedUnjustified
	b := find(func(r simulator.TruthRow) bool { return r.Pattern == simulator.PatternTask && r.Responder != "" })
	altered[b].Responder = "SOMEONE_ELSE"
	c := find(func(r simulator.TruthRow) bool { return r.Pattern == simulator.PatternMessage && r.Answered() })
	*altered[c].TTFMs += 1000
	d := find(func(r simulator.TruthRow) bool { return r.Outcome == simulator.RefusedException })
	altered[d].ExceptionCode = ""
	e := find(func(r simulator.TruthRow) bool { return r.Pattern == simulator.PatternAudit })
	altered = slices.Delete(altered, e, e+1)
	rep := truthcheck.Compare(ref, altered, testPatientKey)
	var got []string
	for _, diff := range rep.Differences {
		got = append(got, diff.Network+" "+diff.ID+" "+diff.Field)
	}
	want := []string{
		truth[a].Network + " " + truth[a].ControlID + " class",
		truth[b].Network + " " + truth[b].ControlID + " responder",
		truth[c].Network + " " + truth[c].ControlID + " ttf",
		truth[d].Network + " " + truth[d].ControlID + " exception",
		truth[e].Network + " " + truth[e].ControlID + " outcome",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("reported\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// faithfulOutcome is the outcome a pipeline that agrees with the truth row
// would store.
func faithfulOutcome(r simulator.TruthRow) truthcheck.Outcome {
	id, authority, _ := patient.SplitCX(r.Patient)
	o := truthcheck.Outcome{
		Network: r.Network, Kind: r.Kind, Requester: r.Requester, Responder: r.Responder, Class: r.Outcome,
		ExceptionCode: r.ExceptionCode, PatientToken: patient.Token(testPatientKey, authority, id), RequestID: r.ControlID,
		RequestedAtMs: r.RequestedAt.UnixMilli(), Records: uint32(r.RecordCount),
	}
	if r.Acknowledged() {
		tta := uint64(r.AcknowledgedAt.Sub(r.RequestedAt).Milliseconds())
		o.TTAMs = &tta
	}
	if r.Answered() {
		ttf := uint64(r.LatencyMs)
		o.TTFMs = &ttf
	}
	return o
}
