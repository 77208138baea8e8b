package scorecard

import (
	"context"
	"fmt"
	"html"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/chstore"
)

// purposeRow is a group of identical outcomes of the purpose world.
type purposeRow struct {
	n                     int
	kind, org, community  string
	purpose, outcome, exc string
	ttfMs                 *uint64
}

// purposeWorld is one network, north, in March 2026 (SLA 60 s):
//
// The hospital, HOSP, answering HL7 queries directly (patient_query):
// treatment 40 = 30 fulfilled in 1 s, 2 fulfilled_late in 200 s (> 3 ×
// SLA: suspect), 4 refused_unjustified, 4 unanswered; individual_access 10
// = 5 fulfilled, 5 unanswered; payment 20 = 18 fulfilled in 2 s, 2
// refused_exception 171.202; no purpose sent 5 = 5 not_found.
// The same hospital through its XCA/XCPD gateway, named by its home
// community urn:oid:1.2.3.4 (which the directory gives it) and an endpoint
// as responder_org: document_query treatment 10 = 6 fulfilled, 4
// unanswered; patient_discovery individual_access 5 fulfilled;
// document_retrieve treatment 5 refused_unjustified.
// A community the directory does not know, urn:oid:9.9 (no responder_org):
// document_query treatment 3 unanswered.
func purposeWorld() []purposeRow {
	s1, s2, s200 := ttf(1000), ttf(2000), ttf(200_000)
	const gw, hosp, other = "https://gw.hospital.example/xca", "urn:oid:1.2.3.4", "urn:oid:9.9"
	return []purposeRow{
		{4, "document_query", gw, hosp, "treatment", "unanswered", "", nil},
		{6, "document_query", gw, hosp, "treatment", "fulfilled", "", s1},
		{5, "patient_discovery", gw, hosp, "individual_access", "fulfilled", "", s1},
		{5, "document_retrieve", gw, hosp, "treatment", "refused_unjustified", "", nil},
		{3, "document_query", "", other, "treatment", "unanswered", "", nil},
		{30, "patient_query", "HOSP", "", "treatment", "fulfilled", "", s1},
		{2, "patient_query", "HOSP", "", "treatment", "fulfilled_late", "", s200},
		{4, "patient_query", "HOSP", "", "treatment", "refused_unjustified", "", nil},
		{4, "patient_query", "HOSP", "", "treatment", "unanswered", "", nil},
		{5, "patient_query", "HOSP", "", "individual_access", "fulfilled", "", s1},
		{5, "patient_query", "HOSP", "", "individual_access", "unanswered", "", nil},
		{18, "patient_query", "HOSP", "", "payment", "fulfilled", "", s2},
		{2, "patient_query", "HOSP", "", "payment", "refused_exception", "171.202", nil},
		{5, "patient_query", "HOSP", "", "", "not_found", "", nil},
	}
}

// insertPurposeWorld writes the rows a minute apart from 2026-03-10 08:00
// in the order given (the gateway's first, so its chains are the oldest
// evidence). A purpose "" is left out of the INSERT, as by a writer that
// predates the column: the column's default says unknown.
func insertPurposeWorld(t *testing.T, conn driver.Conn) {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	n := 0
	for _, withPurpose := range []bool{true, false} {
		cols := "outcome_id, version, network, request_id, request_kind, responder_org, responder_community, outcome, exception_code, requested_at, requested_at_ms, ttf_ms, sla_ms, grace_ms"
		if withPurpose {
			cols += ", purpose"
		}
		b, err := conn.PrepareBatch(ctx, "INSERT INTO exchange_outcomes ("+cols+")")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range purposeWorld() {
			if (r.purpose != "") != withPurpose {
				continue
			}
			for range r.n {
				n++
				a := at.Add(time.Duration(n) * time.Minute)
				vals := []any{id(n), uint64(1), "north", fmt.Sprintf("req-%d", n), r.kind, r.org, r.community, r.outcome, r.exc,
					a, a.UnixMilli(), r.ttfMs, uint64(60_000), uint64(30_000)}
				if withPurpose {
					vals = append(vals, r.purpose)
				}
				if err := b.Append(vals...); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	dir := "identifier,org_id,name,type,developer,networks,home_community_ids\n" +
		"HOSP,org-hosp,General Hospital,provider,Epic,north,urn:oid:1.2.3.4\n"
	if _, err := chstore.LoadOrganizations(ctx, conn, strings.NewReader(dir), testNow); err != nil {
		t.Fatal(err)
	}
}

// wantPurpose is a purpose line stated by hand.
type wantPurpose struct {
	purpose                                string
	required                               bool
	requests, suspect, denied, ans, within uint64
	classes                                map[string]uint64
}

func checkPurpose(t *testing.T, who string, got *hinscorev1.PurposeFigures, w wantPurpose) {
	t.Helper()
	if got.GetPurpose() != w.purpose || got.GetRequiredResponse() != w.required || got.GetRequests() != w.requests {
		t.Errorf("%s: %s required=%v %d requests, want %s %v %d", who, got.GetPurpose(), got.GetRequiredResponse(), got.GetRequests(),
			w.purpose, w.required, w.requests)
	}
	for _, c := range []struct {
		name     string
		rate     *hinscorev1.Rate
		n, total uint64
	}{
		{"suspect", got.GetSuspect(), w.suspect, w.requests},
		{"denied", got.GetDenied(), w.denied, w.requests},
		{"within_sla", got.GetWithinSla(), w.within, w.ans},
	} {
		want := NewRate(c.n, c.total)
		if !proto.Equal(c.rate, want) {
			t.Errorf("%s %s: %s = %v, want %v", who, w.purpose, c.name, c.rate, want)
		}
	}
	for _, cr := range got.GetOutcomes() {
		if want := NewRate(w.classes[cr.GetOutcome()], w.requests); !proto.Equal(cr.GetRate(), want) {
			t.Errorf("%s %s: %s = %v, want %v", who, w.purpose, cr.GetOutcome(), cr.GetRate(), want)
		}
	}
}

// TestPurposeFigures: outcomes with purposes in, the per-purpose figures
// and the required-response line out, exact, from the view and from the
// rollup alike; a responder that cross-community transactions name by its
// home community is the directory's organisation; the new request kinds
// are in the volumes, the CSV, the offenders and the pages.
func TestPurposeFigures(t *testing.T) {
	conn := testDatabase(t)
	ctx := context.Background()
	insertPurposeWorld(t, conn)
	march := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := chstore.RebuildRollups(ctx, conn, testNow, march); err != nil {
		t.Fatal(err)
	}
	q := Query{Granularity: Month, From: march, To: march.AddDate(0, 1, 0)}
	view, err := Build(ctx, conn, q, testNow)
	if err != nil {
		t.Fatal(err)
	}
	q.Source = SourceRollup
	rolled, err := Build(ctx, conn, q, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(view) != 1 || len(rolled) != 1 {
		t.Fatalf("%d cards from the view, %d from the rollup, want 1 and 1", len(view), len(rolled))
	}
	c := view[0]
	for _, cc := range []*hinscorev1.Scorecard{c, rolled[0]} {
		cc.GeneratedAtMs = 0
	}
	if !proto.Equal(c, rolled[0]) {
		t.Errorf("the rollup's card differs from the view's")
	}

	// The hospital: its identifier and its community are one organisation.
	var hosp, unknownCommunity *hinscorev1.Entity
	for _, e := range c.GetResponders() {
		switch e.GetId() {
		case "org-hosp":
			hosp = e
		case "urn:oid:9.9":
			unknownCommunity = e
		}
	}
	if hosp == nil || unknownCommunity == nil || len(c.GetResponders()) != 2 {
		t.Fatalf("responders %v, want org-hosp and urn:oid:9.9", c.GetResponders())
	}
	if hosp.GetName() != "General Hospital" || !slices.Equal(hosp.GetIdentifiers(), []string{"HOSP", "urn:oid:1.2.3.4"}) || hosp.GetRequests() != 95 {
		t.Errorf("hospital %s %v %d requests, want General Hospital [HOSP urn:oid:1.2.3.4] 95", hosp.GetName(), hosp.GetIdentifiers(), hosp.GetRequests())
	}
	treatment := wantPurpose{"treatment", true, 55, 19, 17, 38, 36,
		map[string]uint64{"fulfilled": 36, "fulfilled_late": 2, "refused_unjustified": 9, "unanswered": 8}}
	access := wantPurpose{"individual_access", true, 15, 5, 5, 10, 10, map[string]uint64{"fulfilled": 10, "unanswered": 5}}
	payment := wantPurpose{"payment", false, 20, 0, 0, 18, 18, map[string]uint64{"fulfilled": 18, "refused_exception": 2}}
	unknown := wantPurpose{"unknown", false, 5, 0, 0, 0, 0, map[string]uint64{"not_found": 5}}
	if len(hosp.GetPurposes()) != 4 {
		t.Fatalf("hospital purposes %v, want treatment, payment, individual_access, unknown", hosp.GetPurposes())
	}
	// In the order of purpose.All.
	for i, w := range []wantPurpose{treatment, payment, access, unknown} {
		checkPurpose(t, "hospital", hosp.GetPurposes()[i], w)
	}
	checkPurpose(t, "hospital", hosp.GetRequiredResponse(), wantPurpose{RequiredResponseLine, true, 70, 24, 22, 48, 46,
		map[string]uint64{"fulfilled": 46, "fulfilled_late": 2, "refused_unjustified": 9, "unanswered": 13}})

	// The network adds the unknown community's 3 unanswered treatment requests.
	treatment.requests, treatment.suspect, treatment.denied, treatment.classes["unanswered"] = 58, 22, 20, 11
	for i, w := range []wantPurpose{treatment, payment, access, unknown} {
		checkPurpose(t, "network", c.GetPurposes()[i], w)
	}
	checkPurpose(t, "network", c.GetRequiredResponse(), wantPurpose{RequiredResponseLine, true, 73, 27, 25, 48, 46,
		map[string]uint64{"fulfilled": 46, "fulfilled_late": 2, "refused_unjustified": 9, "unanswered": 16}})

	var kinds []string
	for _, v := range c.GetVolumes() {
		kinds = append(kinds, fmt.Sprintf("%s=%d", v.GetRequestKind(), v.GetRequests()))
	}
	if want := []string{"document_query=13", "document_retrieve=5", "patient_discovery=5", "patient_query=75"}; !slices.Equal(kinds, want) {
		t.Errorf("volumes %v, want %v", kinds, want)
	}
	checkPurposeOutputs(t, c, hosp)
}

// checkPurposeOutputs: the purpose lines and the new kinds on the CSV, the
// offenders, the page and the table, and the chains of a flag reach the
// requests the hospital's gateway answered.
func checkPurposeOutputs(t *testing.T, c *hinscorev1.Scorecard, hosp *hinscorev1.Entity) {
	t.Helper()
	var gatewayChains int
	for _, f := range hosp.GetFlags() {
		for _, ev := range f.GetEvidence() {
			if ev.GetResponderOrg() == "urn:oid:1.2.3.4" {
				gatewayChains++
			}
		}
	}
	if len(hosp.GetFlags()) == 0 || gatewayChains == 0 {
		t.Errorf("hospital flags %v: want a flag whose chains include its gateway's requests", hosp.GetFlags())
	}
	offenders, err := OffendersCSV(Offenders([]*hinscorev1.Scorecard{c}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := CSV(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`"document_query=13;document_retrieve=5;patient_discovery=5;patient_query=75","treatment;individual_access","73","25",`,
		"treatment=58/22/20;payment=20/0/0;individual_access=15/5/5;unknown=5/0/0",
	} {
		if !strings.Contains(string(b), w) {
			t.Errorf("CSV lacks %q:\n%s", w, b)
		}
	}
	if !strings.Contains(string(offenders), `"document_query=10;document_retrieve=5;patient_discovery=5;patient_query=75","treatment;individual_access","70","22",`) {
		t.Errorf("offenders CSV lacks the hospital's kinds and required-response line:\n%s", offenders)
	}
	page, err := HTML(c)
	if err != nil {
		t.Fatal(err)
	}
	text := html.UnescapeString(string(page))
	for _, w := range []string{"<h2>By exchange purpose</h2>", "<b>required response</b><br><span class=\"muted\">treatment, individual_access</span>",
		"<td>73", "<b>34.2%</b>", "individual_access <span class=\"muted\">(required)</span>", "patient_discovery 5"} {
		if !strings.Contains(text, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	var table strings.Builder
	if err := PrintTable(&table, []*hinscorev1.Scorecard{c}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"required response (treatment, individual_access)        73      34.2       37.0", "treatment        58      34.5       37.9"} {
		if !strings.Contains(table.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, table.String())
		}
	}
}
