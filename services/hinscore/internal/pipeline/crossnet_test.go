package pipeline

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/scorecard"
)

// TestCrossNetworkEndToEnd runs exchanges that cross networks, each
// carried by the requester's and the responder's networks' feeds, through
// MLLP, JetStream, the linker and the writer into ClickHouse, with bayview
// leaving 5% of its refusals out of its own feed (issue 25's "done when"):
// at least 95% of those chains are listed as one-sided, bayview's
// completeness is below 0.97 and it is flagged as lacking its own
// refusals, every other network's completeness is at least 0.999, and the
// day cards count each exchange once: every network's requests equal the
// truth's distinct exchanges it answered.
func TestCrossNetworkEndToEnd(t *testing.T) {
	plan, err := simulator.Generate(simulator.Config{
		Requests: 2000, Seed: 25, Start: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Span: 24 * time.Hour,
		CrossNetwork: simulator.CrossNetwork{Share: 4, Thin: map[string]float64{"bayview": 0.05}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p, _ := runSimulated(ctx, t, plan)
	conn, _ := p.ClickHouse()
	directory, err := plan.DirectoryCSV()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chstore.LoadOrganizations(ctx, conn, bytes.NewReader(directory), plan.Start()); err != nil {
		t.Fatal(err)
	}
	checkOneSidedListed(ctx, t, conn, plan)
	cards, err := scorecard.Build(ctx, conn, scorecard.Query{Granularity: scorecard.Day}, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	checkCountedOnce(t, plan, cards)
	checkCompleteness(t, cards)
}

// checkOneSidedListed measures the share of thinned chains that
// exchanges_one_sided lists, and that it lists nothing else.
func checkOneSidedListed(ctx context.Context, t *testing.T, conn driver.Conn, plan *simulator.Plan) {
	t.Helper()
	thinned := map[string]bool{}
	for _, r := range plan.Crossing() {
		if r.Thinned {
			thinned[r.ControlID] = true
		}
	}
	rows, err := conn.Query(ctx, "SELECT request_id, missing_network FROM exchanges_one_sided")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	listed, wrong := 0, 0
	for rows.Next() {
		var id, missing string
		if err := rows.Scan(&id, &missing); err != nil {
			t.Fatal(err)
		}
		if thinned[id] && missing == "bayview" {
			listed++
			continue
		}
		if wrong++; wrong <= 10 {
			t.Errorf("%s listed as missing from %s: its feeds carried it", id, missing)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	share := float64(listed) / float64(len(thinned))
	t.Logf("thinned chains %d, listed %d (%.4f), listed wrongly %d", len(thinned), listed, share, wrong)
	if len(thinned) < 10 || share < 0.95 {
		t.Errorf("listed %d of %d thinned chains (%.4f), want at least 95%%", listed, len(thinned), share)
	}
}

// checkCountedOnce compares each day card's requests with the truth's
// distinct exchanges of the network: its own requests and the crossing
// exchanges its responders answered (thinned or not: the copy the
// requester's network carried counts for the responder's network).
func checkCountedOnce(t *testing.T, plan *simulator.Plan, cards []*hinscorev1.Scorecard) {
	t.Helper()
	want := map[string]uint64{}
	for _, r := range plan.Requests() {
		want[r.Network]++
	}
	for _, r := range plan.Crossing() {
		want[r.Network]++
	}
	got := map[string]uint64{}
	var total, distinct uint64
	for _, c := range cards {
		got[c.GetNetwork()] += c.GetRequests()
		total += c.GetRequests()
	}
	for n, w := range want {
		distinct += w
		if got[n] != w {
			t.Errorf("%s: cards count %d requests, the truth has %d distinct exchanges", n, got[n], w)
		}
	}
	t.Logf("cards count %d requests; the truth has %d distinct exchanges, %d crossing, stored as %d outcomes",
		total, distinct, len(plan.Crossing()), len(plan.Requests())+plan.CrossOutcomes())
	if total != distinct {
		t.Errorf("cards count %d requests, want %d", total, distinct)
	}
}

func checkCompleteness(t *testing.T, cards []*hinscorev1.Scorecard) {
	t.Helper()
	for _, c := range cards {
		fc := c.GetCompleteness()
		t.Logf("%s %s: completeness %.4f (%s), %d/%d overall, own refusals %d/%d against other answers %d/%d (z %.2f), lacks own refusals %v, matched %d, missing %d",
			c.GetNetwork(), c.GetPeriod(), fc.GetScore(), fc.GetScoreGroup(), fc.GetOverall().GetCount(), fc.GetOverall().GetTotal(),
			fc.GetOwnRefusals().GetCount(), fc.GetOwnRefusals().GetTotal(), fc.GetOwnOther().GetCount(), fc.GetOwnOther().GetTotal(),
			fc.GetRefusalZ(), fc.GetLacksOwnRefusals(), fc.GetMatched(), fc.GetMissing())
		if c.GetNetwork() == "bayview" {
			if fc.GetScore() >= 0.97 || !fc.GetLacksOwnRefusals() || fc.GetOverall().GetTotal() == 0 {
				t.Errorf("bayview: completeness %.4f, lacks own refusals %v; want < 0.97 and flagged", fc.GetScore(), fc.GetLacksOwnRefusals())
			}
			continue
		}
		if fc.GetScore() < 0.999 || fc.GetLacksOwnRefusals() || fc.GetOverall().GetTotal() == 0 {
			t.Errorf("%s: completeness %.4f of %d expected, lacks own refusals %v; want at least 0.999",
				c.GetNetwork(), fc.GetScore(), fc.GetOverall().GetTotal(), fc.GetLacksOwnRefusals())
		}
	}
}
