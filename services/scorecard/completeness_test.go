package scorecard

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/chstore"
)

// completenessOf computes the figures of per-side, per-class counts.
func completenessOf(rows ...struct {
	side, outcome     string
	expected, missing uint64
}) *hinscorev1.FeedCompleteness {
	c := &completenessCounts{groups: map[string]seenCount{}}
	for _, r := range rows {
		c.add(r.side, r.outcome, seenCount{r.expected, r.expected - r.missing})
	}
	return feedCompleteness(c)
}

type sideRow = struct {
	side, outcome     string
	expected, missing uint64
}

func TestCompletenessScoreIsTheWorstGroupWithVolume(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rows      []sideRow
		score     float64
		group     string
		lacks     bool
		overallHi bool // the overall share above the score (a group below it gave the score)
	}{
		{"complete", []sideRow{{"responder", "fulfilled", 1000, 0}, {"responder", "refused_unjustified", 100, 0}}, 1, "responder/fulfilled", false, false},
		{"5% of refusals missing", []sideRow{{"responder", "fulfilled", 1000, 0}, {"responder", "refused_unjustified", 60, 3}, {"responder", "refused_exception", 40, 2}},
			0.95, "responder/refused", true, true},
		// 29 refusals expected: below min_sample, so neither the score's
		// group nor a flag, however many are missing.
		{"refusals below min sample", []sideRow{{"responder", "fulfilled", 1000, 0}, {"responder", "refused_unjustified", 29, 5}}, 1, "responder/fulfilled", false, false},
		// 30 expected, 2 missing: the score says it (0.933); the flag needs
		// z >= 3.29 (here 5.7) and a one-point margin: both hold.
		{"refusals at min sample", []sideRow{{"responder", "fulfilled", 1000, 0}, {"responder", "refused_unjustified", 30, 2}}, 28.0 / 30, "responder/refused", true, true},
		// One refusal in 400 missing: below the one-point margin, no flag;
		// the score still shows it.
		{"a trifle", []sideRow{{"responder", "fulfilled", 100000, 0}, {"responder", "refused_unjustified", 400, 1}}, 399.0 / 400, "responder/refused", false, true},
		// Refusals missing as requester only: the score shows it, the flag
		// (its own refusals, as responder) does not.
		{"as requester", []sideRow{{"requester", "fulfilled", 1000, 0}, {"requester", "refused_unjustified", 100, 5}}, 0.95, "requester/refused", false, true},
		// Losses spread evenly: the score is low, the refusals are not
		// singled out (z 0).
		{"even loss", []sideRow{{"responder", "fulfilled", 1000, 100}, {"responder", "refused_unjustified", 100, 10}}, 0.9, "responder/fulfilled", false, false},
		{"nothing expected", nil, 1, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := completenessOf(tc.rows...)
			if diff := fc.GetScore() - tc.score; diff > 1e-9 || diff < -1e-9 || fc.GetScoreGroup() != tc.group {
				t.Errorf("score %v (%s), want %v (%s)", fc.GetScore(), fc.GetScoreGroup(), tc.score, tc.group)
			}
			if fc.GetLacksOwnRefusals() != tc.lacks {
				t.Errorf("lacks own refusals %v (z %.2f), want %v", fc.GetLacksOwnRefusals(), fc.GetRefusalZ(), tc.lacks)
			}
			if hi := fc.GetOverall().GetRate() > fc.GetScore()+1e-9; hi != tc.overallHi {
				t.Errorf("overall %v against score %v", fc.GetOverall().GetRate(), fc.GetScore())
			}
		})
	}
}

func TestRefusalZ(t *testing.T) {
	// 10 of 200 refusals missing, none of 2000 others: the pooled z is
	// (1 - 0.95) / sqrt(p(1-p)(1/200 + 1/2000)), p = 2190/2200.
	got := refusalZ(seenCount{200, 190}, seenCount{2000, 2000})
	if got < 10.0 || got > 10.1 {
		t.Errorf("z = %v, want 10.0…10.1", got)
	}
	if z := refusalZ(seenCount{200, 200}, seenCount{2000, 2000}); z != 0 {
		t.Errorf("nothing missing: z = %v", z)
	}
	if z := refusalZ(seenCount{0, 0}, seenCount{2000, 1900}); z != 0 {
		t.Errorf("no refusals: z = %v", z)
	}
}

// crossDirectory puts north's clinics and south's hospitals on their
// networks; EAST_HOSP is on east, which feeds nothing on the first day.
const crossDirectory = `identifier,org_id,name,type,developer,networks
N_CLINIC,n-clinic,North Clinic,provider,Acme EHR,north
N_HOSP,n-hosp,North Hospital,provider,Acme EHR,north
S_HOSP,s-hosp,South Hospital,provider,Cedar Systems,south
S_CLINIC,s-clinic,South Clinic,provider,Cedar Systems,south
`

// crossView is one network's copy of one exchange.
type crossView struct {
	network, requester, responder, requestID, outcome string
	at                                                time.Time
}

func insertViews(t *testing.T, conn driver.Conn, views []crossView) {
	t.Helper()
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, `INSERT INTO exchange_outcomes (outcome_id, version, network, request_id, request_kind,
		requester_org, responder_org, outcome, requested_at, requested_at_ms, ttf_ms, sla_ms, grace_ms)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		oid := uuid.NewSHA1(uuid.NameSpaceOID, []byte(v.network+"|"+v.requestID))
		var ttfMs *uint64
		if v.outcome == "fulfilled" {
			ttfMs = ttf(900)
		}
		if err := b.Append(oid, uint64(1), v.network, v.requestID, "patient_query", v.requester, v.responder, v.outcome,
			v.at, v.at.UnixMilli(), ttfMs, uint64(60_000), uint64(30_000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	if _, err := chstore.LoadOrganizations(ctx, conn, strings.NewReader(crossDirectory), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
}

// crossWorld, 2026-03-02: north's clinic asks south's hospital 200 times,
// both feeds carrying each exchange, except 3 of south's 40 refusals that
// south's feed leaves out; and south's clinic asks north's hospital 50
// times, all of it in both feeds. Each network also has 100 exchanges of
// its own. One exchange north's feed lacks (a fulfilled one from
// south's clinic) is one-sided the other way.
func crossWorld() (views []crossView, dropped map[string]bool) {
	day := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	dropped = map[string]bool{}
	refusals := 0
	for i := range 200 {
		at := day.Add(time.Duration(i) * time.Minute)
		id := fmt.Sprintf("NX%05d", i)
		outcome := "fulfilled"
		if i%5 == 0 {
			outcome = "refused_unjustified"
			refusals++
		}
		views = append(views, crossView{"north", "N_CLINIC", "S_HOSP", id, outcome, at})
		if outcome != "fulfilled" && refusals <= 3 {
			dropped[id] = true
			continue
		}
		views = append(views, crossView{"south", "N_CLINIC", "S_HOSP", id, outcome, at})
	}
	for i := range 50 {
		at := day.Add(time.Duration(i)*time.Minute + 30*time.Second)
		id := fmt.Sprintf("SX%05d", i)
		views = append(views, crossView{"south", "S_CLINIC", "N_HOSP", id, "fulfilled", at})
		if i == 7 {
			dropped[id] = true
			continue
		}
		views = append(views, crossView{"north", "S_CLINIC", "N_HOSP", id, "fulfilled", at})
	}
	for i := range 100 {
		at := day.Add(time.Duration(i) * 2 * time.Minute)
		views = append(views, crossView{"north", "N_CLINIC", "N_HOSP", fmt.Sprintf("N%05d", i), "fulfilled", at})
		views = append(views, crossView{"south", "S_CLINIC", "S_HOSP", fmt.Sprintf("S%05d", i), "fulfilled", at})
	}
	return views, dropped
}

func TestCrossNetworkExchangesCountedOnce(t *testing.T) {
	conn := testDatabase(t)
	ctx := context.Background()
	views, dropped := crossWorld()
	insertViews(t, conn, views)

	var stored, once uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM outcomes").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM outcomes_once").Scan(&once); err != nil {
		t.Fatal(err)
	}
	// 200 + 50 crossing exchanges and 200 of their own.
	if stored != uint64(len(views)) || once != 450 {
		t.Fatalf("outcomes %d (want %d), outcomes_once %d (want 450)", stored, len(views), once)
	}
	// The counted copy is the responder's network's when it has one.
	var wrong uint64
	if err := conn.QueryRow(ctx, `SELECT count() FROM exchanges
WHERE seen_by = 'both' AND counted_network != responder_network`).Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Errorf("%d exchanges seen by both counted on the requester's network", wrong)
	}

	rows, err := conn.Query(ctx, "SELECT request_id, missing_network, seen_network, outcome FROM exchanges_one_sided ORDER BY request_id")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for rows.Next() {
		var id, missing, seen, outcome string
		if err := rows.Scan(&id, &missing, &seen, &outcome); err != nil {
			t.Fatal(err)
		}
		listed[id] = true
		if !dropped[id] {
			t.Errorf("%s listed one-sided (missing %s, seen %s), both feeds carried it", id, missing, seen)
		}
		if want := map[bool]string{true: "south", false: "north"}[strings.HasPrefix(id, "NX")]; missing != want {
			t.Errorf("%s: missing network %s, want %s", id, missing, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id := range dropped {
		if !listed[id] {
			t.Errorf("%s: one feed lacks it, not listed", id)
		}
	}

	cards, err := Build(ctx, conn, Query{Granularity: Day}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	checkCrossCards(t, cards)
	checkCompletenessOutputs(t, cards)
	rollup := buildFromRollup(t, conn)
	for i := range cards {
		if cards[i].GetRequests() != rollup[i].GetRequests() {
			t.Errorf("%s: view %d requests, rollup %d", cards[i].GetNetwork(), cards[i].GetRequests(), rollup[i].GetRequests())
		}
	}
}

func buildFromRollup(t *testing.T, conn driver.Conn) []*hinscorev1.Scorecard {
	t.Helper()
	ctx := context.Background()
	if err := chstore.RebuildRollups(ctx, conn, testNow, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	cards, err := Build(ctx, conn, Query{Granularity: Day, Source: SourceRollup}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return cards
}

func checkCrossCards(t *testing.T, cards []*hinscorev1.Scorecard) {
	t.Helper()
	got := map[string]*hinscorev1.Scorecard{}
	var total uint64
	for _, c := range cards {
		got[c.GetNetwork()] = c
		total += c.GetRequests()
	}
	if total != 450 {
		t.Errorf("cards count %d requests, want 450 exchanges", total)
	}
	north, south := got["north"].GetCompleteness(), got["south"].GetCompleteness()
	// north: its 100 + the 50 of south's clinic (the responder's network's
	// card: 49 both feeds carried, and the one only south's feed carried);
	// the 3 refusals only north's feed carried count on south's card, the
	// responder's: 100 + 200.
	if n, s := got["north"].GetRequests(), got["south"].GetRequests(); n != 150 || s != 300 {
		t.Errorf("north counts %d requests, south %d; want 150 and 300", n, s)
	}
	// south: 40 refusals expected as responder (north's feed carried them
	// all), 37 seen: 0.925 < 0.97 and flagged.
	if south.GetScore() >= 0.97 || south.GetScoreGroup() != "responder/"+RefusedGroup || !south.GetLacksOwnRefusals() {
		t.Errorf("south: score %v (%s), lacks own refusals %v", south.GetScore(), south.GetScoreGroup(), south.GetLacksOwnRefusals())
	}
	if south.GetMissing() != 3 || len(south.GetMissingChains()) != 3 {
		t.Errorf("south: missing %d, %d chains listed, want 3", south.GetMissing(), len(south.GetMissingChains()))
	}
	// north lacks one fulfilled exchange of the 50 it answered: 0.98 as
	// responder, 246 of 247 overall; not a refusal problem.
	if north.GetLacksOwnRefusals() || north.GetMissing() != 1 || north.GetScore() != 0.98 || north.GetScoreGroup() != "responder/fulfilled" {
		t.Errorf("north: score %v, missing %d, lacks own refusals %v", north.GetScore(), north.GetMissing(), north.GetLacksOwnRefusals())
	}
	if south.GetMatched() != 246 || north.GetMatched() != 246 || north.GetCountedElsewhere() != 197 || south.GetCountedElsewhere() != 49 {
		t.Errorf("matched north %d south %d, counted elsewhere north %d south %d; want 246, 246, 197, 49",
			north.GetMatched(), south.GetMatched(), north.GetCountedElsewhere(), south.GetCountedElsewhere())
	}
}

// checkCompletenessOutputs: the page shows the section with the flag and
// the one-sided chains, the CSV's network row its columns, and the
// operator's copy keeps the counts without the chains, which name the
// other network.
func checkCompletenessOutputs(t *testing.T, cards []*hinscorev1.Scorecard) {
	t.Helper()
	for _, c := range cards {
		if c.GetNetwork() != "south" {
			continue
		}
		page, err := HTML(c)
		if err != nil {
			t.Fatal(err)
		}
		chain := c.GetCompleteness().GetMissingChains()[0]
		for _, want := range []string{"<h2>Feed completeness</h2>", "lacks its own refusals", chain.GetRequestId(), chain.GetOutcomeId(), "responder/refused"} {
			if !strings.Contains(string(page), want) {
				t.Errorf("south's page lacks %q", want)
			}
		}
		b, err := CSV(c)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		// The completeness columns, then scorecard/5's exception checks.
		if !strings.HasSuffix(lines[0], `"completeness","completeness_group","completeness_expected","completeness_seen","lacks_own_refusals","one_sided_missing","exception_rules_version","exception_checks"`) ||
			!strings.Contains(lines[1], `"0.925000","responder/refused","249","246","true","3","exception-rules/1"`) {
			t.Errorf("south's CSV:\n%s\n%s", lines[0], lines[1])
		}
		op := OperatorCopy(c)
		if op.GetCompleteness().GetMissing() != 3 || len(op.GetCompleteness().GetMissingChains()) != 0 || len(c.GetCompleteness().GetMissingChains()) != 3 {
			t.Errorf("operator's copy: missing %d, %d chains (analyst's %d)", op.GetCompleteness().GetMissing(),
				len(op.GetCompleteness().GetMissingChains()), len(c.GetCompleteness().GetMissingChains()))
		}
	}
}
