package pipeline

import (
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/scorecard"
)

// TestCitedPerformanceEndToEnd is issue 25's "done when" through the whole
// pipeline: two days of the behaviour networks over MLLP, JetStream, the
// linker and the writer into ClickHouse, with one responder citing 171.205
// for some of 80 requests in half an hour while fulfilling 90% of the
// others, and another in a real outage for half an hour. The scorecard's
// checks, run over what ClickHouse holds, must flag every citation of the
// first and none of the second (each checked), as the simulator's truth
// says, in exception_flags and on the day's card.
func TestCitedPerformanceEndToEnd(t *testing.T) {
	nets := simulator.BehaviourNetworks()
	episode := simulator.PerformanceEpisode{At: 34 * time.Hour, Length: 30 * time.Minute, Requests: 80}
	serving, outage := episode, episode
	serving.CiteShare, outage.Outage = 0.15, true
	nets[0].ResponderProfiles[0].Episodes = []simulator.PerformanceEpisode{serving}
	nets[1].ResponderProfiles[0].Episodes = []simulator.PerformanceEpisode{outage}
	ctx, p, plan, _ := simulateChecked(t, simulator.Config{Requests: 4000, Seed: 25, Networks: nets,
		Start: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Span: 2 * 24 * time.Hour})
	conn, _ := p.ClickHouse()
	cards, err := scorecard.Build(ctx, conn, scorecard.Query{Granularity: "day", StoreChecks: true}, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT network, request_id, checked, flagged
FROM (SELECT outcome_id, checked, flagged FROM exception_flags WHERE rule_id = '171.205-serving')
ANY INNER JOIN (SELECT outcome_id, network, request_id FROM outcomes) USING outcome_id`)
	if err != nil {
		t.Fatal(err)
	}
	type found struct{ checked, flagged bool }
	stored := map[string]found{}
	for rows.Next() {
		var network, request string
		var checked, flagged uint8
		if err := rows.Scan(&network, &request, &checked, &flagged); err != nil {
			t.Fatal(err)
		}
		stored[network+"/"+request] = found{checked == 1, flagged == 1}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	truth := map[string]int{}
	for _, r := range plan.Requests() {
		if r.ExceptionCheck == "" {
			continue
		}
		truth[r.Network+"/"+r.ExceptionCheck]++
		got, ok := stored[r.Network+"/"+r.ControlID]
		if !ok || !got.checked || got.flagged != (r.ExceptionCheck == simulator.CheckFlag) {
			t.Errorf("%s %s (truth %s): stored %v %+v", r.Network, r.ControlID, r.ExceptionCheck, ok, got)
		}
	}
	t.Logf("truth %v; %d citations of 171.205 checked in all", truth, len(stored))
	flag, clear := truth[nets[0].Name+"/"+simulator.CheckFlag], truth[nets[1].Name+"/"+simulator.CheckClear]
	if flag < 5 || clear < 80 {
		t.Fatalf("too few episode citations: %v", truth)
	}
	// No directory is loaded: a responder is its own identifier.
	var cardFlag, cardClearFlagged, cardClearChecked uint64
	for _, c := range cards {
		for _, e := range c.GetResponders() {
			for _, l := range e.GetExceptionChecks() {
				if l.GetRuleId() != "171.205-serving" {
					continue
				}
				switch {
				case c.GetNetwork() == nets[0].Name && e.GetId() == nets[0].ResponderProfiles[0].Facility:
					cardFlag += l.GetFlagged().GetCount()
				case c.GetNetwork() == nets[1].Name && e.GetId() == nets[1].ResponderProfiles[0].Facility:
					cardClearFlagged += l.GetFlagged().GetCount()
					cardClearChecked += l.GetChecked()
				}
			}
		}
	}
	if cardFlag < uint64(flag) || cardClearFlagged != 0 || cardClearChecked < uint64(clear) {
		t.Errorf("cards: serving responder flagged %d (truth %d); responder in an outage flagged %d, checked %d (truth %d)",
			cardFlag, flag, cardClearFlagged, cardClearChecked, clear)
	}
}
