package scorecard

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/chstore"
)

// unequalStart is the month the unequal-treatment tests simulate.
var unequalStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// discriminatingPlan is one month of the first of the simulator's
// DiscriminatingNetworks (northstar: six requesters, two per developer;
// seven even-handed responders and one refusing Acme EHR's requesters at
// 20% and the others at 1%) with every default of the simulator
// (runarounds, duplicates, out-of-order answers): 24,000 requests, about
// 3,000 per responder (the low-volume one about 36).
func discriminatingPlan(seed int64) (*simulator.Plan, error) {
	return simulator.Generate(simulator.Config{Requests: 24_000, Seed: seed, Start: unequalStart, Span: unequalStart.AddDate(0, 1, 0).Sub(unequalStart),
		Networks: simulator.DiscriminatingNetworks()[:1]})
}

// truthPairs counts the plan's truth rows per network, responder and
// requester as the pairs query counts outcomes: refused_unjustified, and
// suspect = refused_unjustified, redirected, unanswered or a fulfilment
// later than SuspectSLAMultiple x its SLA.
func truthPairs(plan *simulator.Plan) []pairCount {
	type key struct{ network, responder, requester string }
	byKey := map[key]*pairCount{}
	var keys []key
	for _, r := range plan.Requests() {
		k := key{r.Network, r.Responder, r.Requester}
		if byKey[k] == nil {
			byKey[k] = &pairCount{network: r.Network, period: PeriodStart(Month, r.RequestedAt), responder: r.Responder, requester: r.Requester}
			keys = append(keys, k)
		}
		pc := byKey[k]
		pc.requests++
		switch {
		case r.Outcome == simulator.RefusedUnjustified:
			pc.refused++
			pc.suspect++
		case r.Outcome == simulator.Redirected, r.Outcome == simulator.Unanswered:
			pc.suspect++
		case (r.Outcome == simulator.Fulfilled || r.Outcome == simulator.FulfilledLate) && r.LatencyMs > SuspectSLAMultiple*r.SLA.Milliseconds():
			pc.suspect++
		}
	}
	out := make([]pairCount, 0, len(keys))
	for _, k := range keys {
		out = append(out, *byKey[k])
	}
	return out
}

// planDirectory is the plan's organisation directory as Build reads it.
func planDirectory(plan *simulator.Plan) (directory, error) {
	b, err := plan.DirectoryCSV()
	if err != nil {
		return directory{}, err
	}
	orgs, err := chstore.ParseOrganizations(bytes.NewReader(b))
	if err != nil {
		return directory{}, err
	}
	slices.SortFunc(orgs, func(a, b chstore.Organization) int { return strings.Compare(a.Identifier, b.Identifier) })
	d := newDirectory()
	for _, o := range orgs {
		d.add(o.Identifier, dirEntry{orgID: o.OrgID, name: o.Name, developer: o.Developer, networks: o.Networks})
	}
	return d, nil
}

// discriminator returns the org id of the plan's discriminating responder
// and the developer it singles out.
func discriminator(plan *simulator.Plan) (org, developer string) {
	prof, _ := plan.Profile(plan.Networks()[0])
	for _, r := range prof.ResponderProfiles {
		if r.Discrimination != nil {
			return r.OrgID, r.Discrimination.Developer
		}
	}
	return "", ""
}

// victim reports whether a row compares requesters the responder singles
// out (the developer, or one of its organisations) with the rest.
func victim(u *hinscorev1.UnequalTreatment, dir directory, developer string) bool {
	switch u.GetGroupKind() {
	case GroupDeveloper:
		return u.GetGroup() == developer
	case GroupOrganisation:
		return dir.developerOf(u.GetGroup()) == developer
	}
	return false
}

// seedResult is what one seed's card says about the discrimination.
type seedResult struct {
	comparisons int
	// target is the row of the discriminating responder's refusals of the
	// developer's requesters (nil when there is none).
	target *hinscorev1.UnequalTreatment
	// falseFlags are flagged rows that do not compare the requesters it
	// singles out.
	falseFlags []*hinscorev1.UnequalTreatment
}

func runSeed(seed int64) (seedResult, error) {
	var res seedResult
	plan, err := discriminatingPlan(seed)
	if err != nil {
		return res, err
	}
	dir, err := planDirectory(plan)
	if err != nil {
		return res, err
	}
	org, developer := discriminator(plan)
	rows := compareRequesters(truthPairs(plan), dir, DefaultParams())
	res.comparisons = len(rows)
	for _, u := range rows {
		switch {
		case u.GetResponder() == org && u.GetGroupKind() == GroupDeveloper && u.GetGroup() == developer && u.GetMetric() == MetricRefusal:
			res.target = u
		case u.GetFlagged() && !(u.GetResponder() == org && victim(u, dir, developer)):
			res.falseFlags = append(res.falseFlags, u)
		}
	}
	return res, nil
}

// TestUnequalTreatmentOver100Seeds runs the card's computation
// (compareRequesters, fed the truth rows counted as the pairs query counts
// outcomes) over 100 seeds of a realistic month: in every seed the
// discriminating responder's refusals of Acme EHR's requesters are flagged,
// and no row is flagged that does not compare the requesters it singles
// out: none of the seven even-handed responders (the repeat offender
// refusing 10% of everyone among them), none of the other groups. With a
// family-wise error of 0.001 per card, about 0.1 false flags are expected
// over 100 cards; 0 are measured.
func TestUnequalTreatmentOver100Seeds(t *testing.T) {
	if testing.Short() {
		t.Skip("100 simulated months")
	}
	const seeds = 100
	results := make([]seedResult, seeds+1)
	errs := make([]error, seeds+1)
	next := make(chan int64)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range next {
				results[seed], errs[seed] = runSeed(seed)
			}
		}()
	}
	for seed := int64(1); seed <= seeds; seed++ {
		next <- seed
	}
	close(next)
	wg.Wait()
	var comparisons, flagged, falseFlags int
	var maxAdjusted float64
	for seed := 1; seed <= seeds; seed++ {
		res := results[seed]
		switch {
		case errs[seed] != nil:
			t.Fatalf("seed %d: %v", seed, errs[seed])
		case res.target == nil:
			t.Fatalf("seed %d: no comparison of the singled-out developer's requesters", seed)
		case res.target.GetFlagged():
			flagged++
		default:
			t.Errorf("seed %d: discrimination not flagged: %v", seed, res.target)
		}
		for _, u := range res.falseFlags {
			t.Errorf("seed %d: flagged without discrimination: %v", seed, u)
		}
		comparisons += res.comparisons
		falseFlags += len(res.falseFlags)
		maxAdjusted = max(maxAdjusted, res.target.GetAdjustedP())
	}
	t.Logf("%d seeds, %d comparisons (%.0f per card): discrimination flagged in %d (largest adjusted p %.3g), false flags %d (about 0.1 expected at a family-wise 0.001)",
		seeds, comparisons, float64(comparisons)/seeds, flagged, maxAdjusted, falseFlags)
}

// unitDirectory: two requesters of Acme EHR (one in network east), one of
// Borealis and one the directory does not know; one responder.
func unitDirectory() directory {
	d := newDirectory()
	d.add("A1", dirEntry{orgID: "a1", name: "Clinic A1", developer: "Acme EHR", networks: []string{"west"}})
	d.add("A2", dirEntry{orgID: "a2", name: "Clinic A2", developer: "Acme EHR", networks: []string{"east"}})
	d.add("B1", dirEntry{orgID: "b1", name: "Clinic B1", developer: "Borealis", networks: []string{"west"}})
	d.add("H", dirEntry{orgID: "h", name: "Hospital", developer: "Cedar", networks: []string{"west"}})
	return d
}

func pair(requester string, n, refused, suspect uint64) pairCount {
	return pairCount{network: "west", responder: "H", requester: requester, requests: n, refused: refused, suspect: suspect}
}

func findRow(rows []*hinscorev1.UnequalTreatment, kind, group, metric string) *hinscorev1.UnequalTreatment {
	for _, u := range rows {
		if u.GetGroupKind() == kind && u.GetGroup() == group && u.GetMetric() == metric {
			return u
		}
	}
	return nil
}

// TestUnequalTreatmentThresholds puts one comparison on both sides of
// each line: the minimum difference, the family-wise error and the
// minimum group; a group that fares better than the rest is never flagged.
func TestUnequalTreatmentThresholds(t *testing.T) {
	dir := unitDirectory()
	// Acme's requesters (A1, A2: 2,000 requests) against Borealis' and an
	// unknown requester (10,000, 1% refused).
	at := func(acmeRefused uint64, p Params) *hinscorev1.UnequalTreatment {
		rows := compareRequesters([]pairCount{pair("A1", 1000, acmeRefused/2, acmeRefused/2), pair("A2", 1000, acmeRefused-acmeRefused/2, acmeRefused-acmeRefused/2),
			pair("B1", 5000, 50, 50), pair("X9", 5000, 50, 50)}, dir, p)
		return findRow(rows, GroupDeveloper, "Acme EHR", MetricRefusal)
	}
	t.Run("minimum difference", func(t *testing.T) {
		// 119 of 2,000 = 5.95% against 1%: 4.95 points; 121: 5.05 points.
		below, above := at(119, DefaultParams()), at(121, DefaultParams())
		if below.GetAdjustedP() > 1e-10 || above.GetAdjustedP() > 1e-10 {
			t.Fatalf("both should be significant: %v, %v", below, above)
		}
		if below.GetFlagged() || !above.GetFlagged() {
			t.Errorf("4.95 points flagged %v, 5.05 points flagged %v; want false, true", below.GetFlagged(), above.GetFlagged())
		}
		p := DefaultParams()
		p.UnequalMinDifference = 0.0494
		if !at(119, p).GetFlagged() {
			t.Error("4.95 points not flagged at a 4.94-point minimum")
		}
	})
	t.Run("family-wise error", func(t *testing.T) {
		// 52 of 2,000 (2.6%) against 1%: 1.6 points, so the difference
		// line is lowered below it; then the adjusted p decides.
		p := DefaultParams()
		p.UnequalMinDifference = 0.01
		u := at(52, p)
		adj := u.GetAdjustedP()
		if adj < 1e-6 || adj > 0.1 {
			t.Fatalf("adjusted p %g: want a table near the line", adj)
		}
		p.UnequalFamilyError = adj * 1.01
		if !at(52, p).GetFlagged() {
			t.Errorf("adjusted p %g not flagged at a family-wise error of %g", adj, p.UnequalFamilyError)
		}
		p.UnequalFamilyError = adj * 0.99
		if at(52, p).GetFlagged() {
			t.Errorf("adjusted p %g flagged at a family-wise error of %g", adj, p.UnequalFamilyError)
		}
	})
	t.Run("minimum group", func(t *testing.T) {
		for _, c := range []struct {
			n    uint64
			want bool
		}{{MinSample - 1, false}, {MinSample, true}} {
			rows := compareRequesters([]pairCount{pair("A1", c.n, c.n/2, c.n/2), pair("B1", 1000, 10, 10)}, dir, DefaultParams())
			if got := findRow(rows, GroupOrganisation, "a1", MetricRefusal) != nil; got != c.want {
				t.Errorf("group of %d compared: %v, want %v", c.n, got, c.want)
			}
			// The rest below the minimum: nothing to compare A1 with.
			rows = compareRequesters([]pairCount{pair("A1", 1000, 10, 10), pair("B1", c.n, c.n/2, c.n/2)}, dir, DefaultParams())
			if got := findRow(rows, GroupOrganisation, "a1", MetricRefusal) != nil; got != c.want {
				t.Errorf("rest of %d compared: %v, want %v", c.n, got, c.want)
			}
		}
	})
	t.Run("better treated", func(t *testing.T) {
		u := findRow(compareRequesters([]pairCount{pair("A1", 2000, 0, 0), pair("B1", 2000, 400, 400)}, dir, DefaultParams()),
			GroupOrganisation, "a1", MetricRefusal)
		if u == nil || u.GetDifference() > -0.19 || u.GetAdjustedP() > 1e-10 || u.GetFlagged() {
			t.Errorf("a group refused far less than the rest: %v, want a significant negative difference, not flagged", u)
		}
	})
}

// TestUnequalTreatmentRows checks one card's rows by hand: the groups of
// every kind (networks from the directory, unknown requesters named as
// such), the counts of the group and of the rest, Holm over every row.
func TestUnequalTreatmentRows(t *testing.T) {
	rows := compareRequesters([]pairCount{pair("A1", 400, 80, 100), pair("A2", 100, 20, 20), pair("B1", 400, 4, 30), pair("X9", 100, 1, 3)},
		unitDirectory(), DefaultParams())
	var got []string
	for _, u := range rows {
		got = append(got, u.GetGroupKind()+"="+u.GetGroupName()+"/"+u.GetMetric())
	}
	want := []string{
		"network=(network unknown)/refusal", "network=(network unknown)/suspect", "network=east/refusal", "network=east/suspect",
		"network=west/refusal", "network=west/suspect",
		"organisation=X9/refusal", "organisation=X9/suspect", "organisation=Clinic A1/refusal", "organisation=Clinic A1/suspect",
		"organisation=Clinic A2/refusal", "organisation=Clinic A2/suspect", "organisation=Clinic B1/refusal", "organisation=Clinic B1/suspect",
		"developer=(developer unknown)/refusal", "developer=(developer unknown)/suspect", "developer=Acme EHR/refusal", "developer=Acme EHR/suspect",
		"developer=Borealis/refusal", "developer=Borealis/suspect",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("rows\n%q\nwant\n%q", got, want)
	}
	acme := findRow(rows, GroupDeveloper, "Acme EHR", MetricRefusal)
	if acme.GetResponder() != "h" || acme.GetResponderName() != "Hospital" || acme.GetN() != 500 || acme.GetK() != 100 || acme.GetRestN() != 500 || acme.GetRestK() != 5 ||
		acme.GetRate() != 0.2 || acme.GetRestRate() != 0.01 || acme.GetDifference() < 0.19-1e-12 || acme.GetDifference() > 0.19+1e-12 || !acme.GetFlagged() {
		t.Errorf("Acme row %v", acme)
	}
	if want := fisherExact(100, 500, 5, 500); acme.GetP() != want {
		t.Errorf("p %g, want %g", acme.GetP(), want)
	}
	smallest := rows[0]
	for _, u := range rows {
		if u.GetP() < smallest.GetP() {
			smallest = u
		}
	}
	if want := min(1, float64(len(rows))*smallest.GetP()); smallest.GetAdjustedP() != want {
		t.Errorf("smallest p adjusted to %g, want %d x %g", smallest.GetAdjustedP(), len(rows), smallest.GetP())
	}
	// The operator's copy of west's card names west's own groups only.
	op := OperatorCopy(&hinscorev1.Scorecard{Network: "west", UnequalTreatment: rows})
	var shown []string
	for _, u := range op.GetUnequalTreatment() {
		if u.GetMetric() == MetricRefusal {
			shown = append(shown, u.GetGroupKind()+"="+u.GetGroupName())
		}
	}
	wantShown := []string{"network=(requesters outside west)", "network=(requesters outside west)", "network=west",
		"organisation=(requesters outside west)", "organisation=Clinic A1", "organisation=(requesters outside west)", "organisation=Clinic B1",
		"developer=(developer unknown)", "developer=Acme EHR", "developer=Borealis"}
	if !slices.Equal(shown, wantShown) {
		t.Errorf("operator's copy shows\n%q\nwant\n%q", shown, wantShown)
	}
	if rows[0].GetGroupName() != "(network unknown)" {
		t.Error("OperatorCopy changed the analyst's card")
	}
}

// TestUnequalTreatmentThroughClickHouse stores one seed's month as outcome
// rows with its directory and builds the month's card: its rows are
// exactly those compareRequesters gives on the truth (the pairs query
// counts what the truth counts), the discrimination is flagged and shown
// on the CSV, the page and the printed table.
func TestUnequalTreatmentThroughClickHouse(t *testing.T) {
	conn := testDatabase(t)
	plan, err := discriminatingPlan(1)
	if err != nil {
		t.Fatal(err)
	}
	storePlan(t, conn, plan, unequalStart)
	cards, err := Build(context.Background(), conn, Query{Granularity: Month, From: unequalStart, To: unequalStart.AddDate(0, 1, 0)}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(cards) != 1 {
		t.Fatalf("%d cards, want 1", len(cards))
	}
	dir, err := planDirectory(plan)
	if err != nil {
		t.Fatal(err)
	}
	want := compareRequesters(truthPairs(plan), dir, DefaultParams())
	got := cards[0].GetUnequalTreatment()
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("row %d:\n%v\nwant\n%v", i, got[i], want[i])
		}
	}
	org, developer := discriminator(plan)
	var flagged []string
	for _, u := range got {
		if u.GetFlagged() {
			flagged = append(flagged, u.GetResponder()+" "+u.GetGroupKind()+"="+u.GetGroupName()+" "+u.GetMetric())
			if u.GetResponder() != org || !victim(u, dir, developer) {
				t.Errorf("flagged without discrimination: %v", u)
			}
		}
	}
	acme := org + " developer=" + developer + " refusal"
	if !slices.Contains(flagged, acme) {
		t.Fatalf("flagged %q, want %q among them", flagged, acme)
	}
	t.Logf("flagged: %q", flagged)
	checkUnequalOutputs(t, cards, developer)
	checkAnalystQuery(t, conn, got, dir)
}

// checkAnalystQuery runs the README's analyst query (northstar, March
// 2026) and finds in its lines the card's developer refusal counts.
func checkAnalystQuery(t *testing.T, conn driver.Conn, rows []*hinscorev1.UnequalTreatment, dir directory) {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, q, _ := strings.Cut(string(readme), "<!-- unequal-query:begin -->")
	q, _, _ = strings.Cut(q, "<!-- unequal-query:end -->")
	_, q, _ = strings.Cut(q, "```sql")
	q, _, _ = strings.Cut(q, "```")
	res, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("the README's query: %v", err)
	}
	defer res.Close()
	type counts struct{ n, k, restN, restK uint64 }
	lines := map[[2]string]counts{}
	for res.Next() {
		var responder, developer string
		var c counts
		var restN, restK int64
		var rate, restRate, diff float64
		if err := res.Scan(&responder, &developer, &c.n, &c.k, &rate, &restN, &restK, &restRate, &diff); err != nil {
			t.Fatal(err)
		}
		c.restN, c.restK = uint64(restN), uint64(restK)
		lines[[2]string{dir.lookup(responder).orgID, developer}] = c
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, u := range rows {
		if u.GetGroupKind() != GroupDeveloper || u.GetMetric() != MetricRefusal {
			continue
		}
		n++
		want := counts{u.GetN(), u.GetK(), u.GetRestN(), u.GetRestK()}
		if got := lines[[2]string{u.GetResponder(), u.GetGroup()}]; got != want {
			t.Errorf("query line %s/%s = %+v, card %+v", u.GetResponder(), u.GetGroup(), got, want)
		}
	}
	if n == 0 || len(lines) != n {
		t.Errorf("query gave %d lines, the card %d developer comparisons", len(lines), n)
	}
}

// checkUnequalOutputs finds the flagged discrimination on the operator's
// CSV (network row), page and the printed table.
func checkUnequalOutputs(t *testing.T, cards []*hinscorev1.Scorecard, developer string) {
	t.Helper()
	op := OperatorCopy(cards[0])
	b, err := CSV(op)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := slices.Index(recs[0], "unequal_flagged")
	if col < 0 || !strings.Contains(recs[1][col], "developer="+developer+" refusal") {
		t.Errorf("network row's unequal_flagged %q", recs[1][col])
	}
	page, err := HTML(op)
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(page), "<h2>Unequal treatment</h2>")
	section, _, _ = strings.Cut(section, "<h2>")
	if !strings.Contains(section, "developer: "+developer) || !strings.Contains(section, `<b class="flag">flagged</b>`) {
		t.Errorf("page section lacks the flagged row:\n%s", section)
	}
	var buf bytes.Buffer
	if err := PrintTable(&buf, cards); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "developer="+developer) {
		t.Errorf("table lacks the flagged row:\n%s", buf.String())
	}
}
