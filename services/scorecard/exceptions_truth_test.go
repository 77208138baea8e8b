package scorecard

import (
	"context"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/domain/exceptionrule"
)

// TestPerformanceCitationsAgainstTruth is issue 25's "done when": over a
// simulated month, a responder of one network cites 171.205 for a tenth of
// its requests in half an hour while fulfilling 90% of the others, and a
// responder of another network is in a real outage for half an hour
// (fulfilling nothing, citing 171.205). Every request is stored as its
// outcome row; the scorecard's checks must flag every citation of the
// first (the truth's "flag") and none of the second (the truth's "clear"),
// in exception_checks and on the cards.
func TestPerformanceCitationsAgainstTruth(t *testing.T) {
	conn := testDatabase(t)
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	nets := simulator.BehaviourNetworks()
	episode := simulator.PerformanceEpisode{At: 9*24*time.Hour + 14*time.Hour, Length: 30 * time.Minute, Requests: 120}
	serving, outage := episode, episode
	serving.CiteShare = 0.1
	outage.Outage = true
	nets[0].ResponderProfiles[0].Episodes = []simulator.PerformanceEpisode{serving}
	nets[1].ResponderProfiles[0].Episodes = []simulator.PerformanceEpisode{outage}
	plan, err := simulator.Generate(simulator.Config{
		Requests: 20_000, Seed: 25, Start: start, Span: start.AddDate(0, 1, 0).Sub(start), Networks: nets,
		RunaroundShare: -1, DuplicateRate: -1, OutOfOrderRate: -1, MalformedRate: -1, NotificationRate: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	storePlan(t, conn, plan, plan.Start())
	now := start.AddDate(0, 2, 0)
	cards, err := Build(ctx, conn, Query{Granularity: Month, StoreChecks: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	checks, err := checkExceptions(ctx, conn, Query{Granularity: Month}, dirOf(t, ctx, conn), now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checks of the month: %d cited chains in %s", len(checks), time.Since(began))
	stored := storedChecks(t, ctx, conn, "171.205-serving")
	want := map[string]int{}
	for _, r := range plan.Requests() {
		if r.ExceptionCheck == "" {
			continue
		}
		want[r.Network+"/"+r.ExceptionCheck]++
		got, ok := stored[truthOutcomeID(r).String()]
		switch {
		case !ok:
			t.Errorf("%s %s (%s): no check stored", r.Network, r.ControlID, r.ExceptionCheck)
		case r.ExceptionCheck == simulator.CheckFlag && !(got.checked && got.flagged):
			t.Errorf("%s %s cited 171.205 while serving: checked %v flagged %v (others %d, fulfilled %d)", r.Network, r.ControlID, got.checked, got.flagged, got.others, got.fulfilled)
		case r.ExceptionCheck == simulator.CheckClear && !(got.checked && !got.flagged):
			t.Errorf("%s %s cited 171.205 in an outage: checked %v flagged %v (others %d, fulfilled %d)", r.Network, r.ControlID, got.checked, got.flagged, got.others, got.fulfilled)
		}
	}
	t.Logf("truth: %v", want)
	if want[nets[0].Name+"/"+simulator.CheckFlag] < 5 || want[nets[1].Name+"/"+simulator.CheckClear] < 100 {
		t.Fatalf("the plan has too few episode citations: %v", want)
	}
	// The cards: the serving responder's line counts every flagged
	// citation, the one in an outage none.
	for _, c := range cards {
		for _, e := range c.GetResponders() {
			line := checkLine(e.GetExceptionChecks(), "171.205-serving")
			switch e.GetId() {
			case nets[0].ResponderProfiles[0].OrgID:
				if c.GetNetwork() == nets[0].Name && line.GetFlagged().GetCount() < uint64(want[nets[0].Name+"/"+simulator.CheckFlag]) {
					t.Errorf("%s: flagged %d, truth %d", e.GetId(), line.GetFlagged().GetCount(), want[nets[0].Name+"/"+simulator.CheckFlag])
				}
			case nets[1].ResponderProfiles[0].OrgID:
				if line.GetFlagged().GetCount() != 0 || line.GetChecked() < uint64(want[nets[1].Name+"/"+simulator.CheckClear]) {
					t.Errorf("%s in an outage: checked %d flagged %d", e.GetId(), line.GetChecked(), line.GetFlagged().GetCount())
				}
			}
			if line.GetRuleVersion() != exceptionrule.Version || line.GetParameters() == "" {
				t.Errorf("%s: rule version %q parameters %q", e.GetId(), line.GetRuleVersion(), line.GetParameters())
			}
		}
	}
}
