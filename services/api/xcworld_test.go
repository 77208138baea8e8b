package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/scorecard"
)

// xcStep is one message of an xcChain: its role, the gateway that
// recorded it and its offset from the request.
type xcStep struct {
	role, side string
	offsetMs   int64
}

// xcChain is one outcome of TestCrossCommunityWorld as the linker and the
// chwriter would store it.
type xcChain struct {
	name, network, kind, class, purpose, code string
	requesterComm, responderComm, responder   string
	sides                                     string
	untimed                                   bool
	bizDays                                   uint32
	slaMs                                     uint64
	atMin                                     int64
	steps                                     []xcStep
}

const (
	xcTEFCATreatment = "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1|T-TRTMNT"
	xcPatientRequest = "http://terminology.hl7.org/CodeSystem/v3-ActReason|PATRQT"
)

// xcWorld: one patient; responder B (community 2.2) finds the patient but
// refuses the query and leaves the retrieve unanswered; responder C (3.3)
// finds the patient and returns the documents (a retrieve under an SLA of
// 10 business days); and an HL7 v2 query without a purpose.
func xcWorld() []xcChain {
	both := []xcStep{{"request", "initiating", 0}, {"response", "responding", 400}}
	return []xcChain{
		{"bD", "northstar", kindPatientDiscovery, "fulfilled", "treatment", xcTEFCATreatment, "urn:oid:1.1", "urn:oid:2.2", "gw-b", "both", false, 0, 60000, 0, both},
		{"bQ", "northstar", kindDocumentQuery, "refused_unjustified", "treatment", xcTEFCATreatment, "urn:oid:1.1", "urn:oid:2.2", "gw-b", "initiating", true, 0, 60000, 1,
			[]xcStep{{"request", "initiating", 0}, {"response", "initiating", 0}}},
		{"bR", "northstar", kindDocumentRetrieve, "unanswered", "treatment", xcTEFCATreatment, "urn:oid:1.1", "urn:oid:2.2", "gw-b", "initiating", false, 0, 300000, 2,
			[]xcStep{{"request", "initiating", 0}}},
		{"cD", "northstar", kindPatientDiscovery, "fulfilled", "individual_access", xcPatientRequest, "urn:oid:1.1", "urn:oid:3.3", "gw-c", "both", false, 0, 60000, 10, both},
		{"cQ", "northstar", kindDocumentQuery, "fulfilled", "individual_access", xcPatientRequest, "urn:oid:1.1", "urn:oid:3.3", "gw-c", "both", false, 0, 60000, 11, both},
		{"cR", "northstar", kindDocumentRetrieve, "fulfilled", "individual_access", xcPatientRequest, "urn:oid:1.1", "urn:oid:3.3", "gw-c", "both", false, 10,
			uint64(14 * 24 * time.Hour / time.Millisecond), 12, both},
		{"h", "bayview", "patient_query", "fulfilled", "unknown", "", "", "", "HOSP_BV", "", false, 0, 60000, 20,
			[]xcStep{{"request", "", 0}, {"response", "", 900}}},
	}
}

func xcID(name string) string { return uuid.NewSHA1(uuid.NameSpaceOID, []byte("xc/"+name)).String() }

func xcEventID(name string, i int) string { return xcID(fmt.Sprintf("%s/%d", name, i)) }

var xcToken = strings.Repeat("e", 64)

// writeXCWorld stores the chains: their outcomes (and so, through the
// materialized views, outcome_versions and patient_journeys), their steps
// and their events.
func writeXCWorld(t *testing.T, ctx context.Context, conn driver.Conn, t0 time.Time, chains []xcChain) {
	t.Helper()
	outcomes, err := conn.PrepareBatch(ctx, `INSERT INTO exchange_outcomes (outcome_id, version, network, request_id, correlation_key,
		request_kind, requester_org, responder_org, outcome, exception_code, reason_codes, patient_token, requested_at,
		requested_at_ms, acknowledged_at_ms, answered_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms, decided_at_ms, rule_version,
		mapping_version, response_id, record_count, step_count, purpose, purpose_code, requester_community,
		responder_community, sides, sla_business_days, untimed)`)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := conn.PrepareBatch(ctx, `INSERT INTO outcome_steps (outcome_id, version, network, event_id, message_id, message_type,
		role, status, event_time, event_time_ms, raw_seq, side)`)
	if err != nil {
		t.Fatal(err)
	}
	events, err := conn.PrepareBatch(ctx, `INSERT INTO exchange_events (event_id, network, format, message_id, message_type, role,
		request_kind, correlation_key, in_reply_to, requester_org, responder_org, event_time, event_time_ms, ingest_time, status,
		ack_code, reason_codes, exception_code, patient_token, patient_key_id, record_count, raw_subject, raw_seq,
		partition, mapping_version, purpose, purpose_code, requester_community, responder_community, side, transaction_id, untimed)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chains {
		at := t0.Add(time.Duration(c.atMin) * time.Minute)
		var answeredMs, decidedMs int64
		var ttf *uint64
		if last := c.steps[len(c.steps)-1]; last.role == "response" {
			answeredMs = at.UnixMilli() + last.offsetMs
			if !c.untimed {
				v := uint64(last.offsetMs)
				ttf = &v
			}
		}
		decidedMs = max(answeredMs, at.UnixMilli()+int64(c.slaMs))
		format := map[bool]string{true: "atna", false: "hl7v2"}[c.sides != ""]
		if err := outcomes.Append(xcID(c.name), uint64(len(c.steps)), c.network, "REQ-"+c.name, c.network+"|"+c.name, c.kind, "gw-a", c.responder,
			c.class, "", []string{}, xcToken, at, at.UnixMilli(), answeredMs, answeredMs, (*uint64)(nil), ttf, c.slaMs, uint64(30000), decidedMs,
			"link/2", format+"-map/1", "", uint32(0), uint32(len(c.steps)), c.purpose, c.code, c.requesterComm, c.responderComm, c.sides,
			c.bizDays, map[bool]uint8{true: 1}[c.untimed]); err != nil {
			t.Fatal(err)
		}
		for i, st := range c.steps {
			et := at.Add(time.Duration(st.offsetMs) * time.Millisecond)
			msgID := fmt.Sprintf("%s-%d", c.name, i)
			if err := steps.Append(xcID(c.name), uint64(len(c.steps)), c.network, xcEventID(c.name, i), msgID, c.kind, st.role, "ok", et,
				et.UnixMilli(), uint64(i+1), st.side); err != nil {
				t.Fatal(err)
			}
			if err := events.Append(xcEventID(c.name, i), c.network, format, msgID, c.kind, st.role, c.kind, c.network+"|"+c.name, "",
				"gw-a", c.responder, et, et.UnixMilli(), et, "ok", "", []string{}, "", xcToken, "dev", uint32(0),
				"events.0."+c.network, uint64(i+1), uint16(0), format+"-map/1", c.purpose, c.code, c.requesterComm, c.responderComm,
				st.side, "tx-"+c.name, map[bool]uint8{true: 1}[c.untimed]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, b := range []driver.Batch{outcomes, steps, events} {
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrossCommunityWorld stores cross-community chains (XCPD discovery,
// XCA query and retrieve, seen by one or both gateways, untimed, with
// purposes and a business-day SLA) in a real ClickHouse and reads them
// through the real server: the chain view (JSON and HTML) shows the
// purpose, the communities, the sides and each step's side, the untimed
// chain and the business-day SLA explained; the journey flags responder B,
// which found the patient but returned no document, once the window has
// closed and not before; purpose filters on search and journeys, and 400
// for a purpose that is none.
func TestCrossCommunityWorld(t *testing.T) {
	conn, _ := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) // a Monday
	chains := xcWorld()
	writeXCWorld(t, ctx, conn, t0, chains)
	// The directory names B's community, not the requester's.
	dir := "identifier,org_id,name,type,developer,networks,home_community_ids\ngw-b,org-b,Bay Regional HIE,hin,,northstar,urn:oid:2.2\n"
	if _, err := chstore.LoadOrganizations(ctx, conn, strings.NewReader(dir), t0); err != nil {
		t.Fatal(err)
	}
	clock := &manualClock{}
	clock.ms.Store(t0.Add(24 * time.Hour).UnixMilli())
	srv := startServer(t, ctx, testConfig(t), conn, nil, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), clock)
	base := "http://" + srv.Addr()

	t.Run("chain", func(t *testing.T) { testXCChain(t, base) })
	t.Run("journey", func(t *testing.T) { testXCJourney(t, base, t0, clock) })
	t.Run("purpose filters", func(t *testing.T) { testXCPurposeFilters(t, base) })
	t.Run("offenders by purpose", func(t *testing.T) { testXCOffenders(t, ctx, conn, base, clock.Now()) })
}

// testXCOffenders stores the day's scorecards (scorecard/3, with their
// lines by purpose) and ranks the networks on one purpose's line: the
// figures are the line's, the suspect chains those of the purpose.
func testXCOffenders(t *testing.T, ctx context.Context, conn driver.Conn, base string, now time.Time) {
	cards, err := scorecard.Build(ctx, conn, scorecard.Query{Granularity: "day"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := chstore.InsertScorecards(ctx, conn, "day", cards); err != nil {
		t.Fatal(err)
	}
	line := func(network, name string) *hinscorev1.PurposeFigures {
		for _, c := range cards {
			if c.Network != network {
				continue
			}
			if name == RequiredResponseLine {
				return c.RequiredResponse
			}
			for _, pf := range c.Purposes {
				if pf.Purpose == name {
					return pf
				}
			}
		}
		return nil
	}
	for _, c := range []struct {
		purpose  string
		networks []string
		chains   []string // northstar's, newest first
	}{
		{"treatment", []string{"northstar"}, []string{xcID("bR"), xcID("bQ")}},
		{"individual_access", []string{"northstar"}, []string{}},
		{RequiredResponseLine, []string{"northstar"}, []string{xcID("bR"), xcID("bQ")}},
		{"unknown", []string{"bayview"}, nil},
		{"payment", []string{}, nil},
	} {
		var o Offenders
		getJSONAt(t, base, "analyst", "/v1/offenders", url.Values{"granularity": {"day"}, "purpose": {c.purpose}, "k": {"1"}, "n": {"1"},
			"min_requests": {"1"}, "threshold": {"0"}}, &o)
		var nets []string
		for _, off := range o.Offenders {
			nets = append(nets, off.Network)
			want := line(off.Network, c.purpose)
			got := off.Periods[len(off.Periods)-1]
			if want == nil || got.Requests != want.Requests || got.SuspectRate != want.Suspect.Rate || got.SuspectCILow != want.Suspect.CiLow {
				t.Errorf("offenders purpose=%s %s: period %+v, scorecard line %v", c.purpose, off.Network, got, want)
			}
			if off.Network == "northstar" {
				var ids []string
				for _, ch := range off.Chains {
					ids = append(ids, ch.ID)
				}
				if !slices.Equal(ids, c.chains) && !(len(ids) == 0 && len(c.chains) == 0) {
					t.Errorf("offenders purpose=%s: northstar's chains %v, want %v", c.purpose, ids, c.chains)
				}
			}
		}
		if !slices.Equal(nets, c.networks) && !(len(nets) == 0 && len(c.networks) == 0) || o.Query.Purpose != c.purpose {
			t.Errorf("offenders purpose=%s: networks %v (query %+v), want %v", c.purpose, nets, o.Query, c.networks)
		}
	}
	var out, errb bytes.Buffer
	if err := RunClientCLI(ctx, "offenders", []string{"--api", base, "--token", testTokens["analyst"], "--granularity", "day",
		"--purpose", RequiredResponseLine}, &out, &errb); err != nil {
		t.Fatalf("offenders --purpose: %v %s", err, errb.String())
	}
	if first := strings.SplitN(out.String(), "\n", 2)[0]; !strings.HasSuffix(first, "min 30 requests, purpose required_response") {
		t.Errorf("offenders --purpose first line %q", first)
	}
	if rows := tableRows(t, out.String(), "NETWORK"); len(rows) != 2 || rows[1][0] != "northstar" || rows[1][5] != "6" {
		t.Errorf("offenders --purpose rows %q", rows)
	}
	resp, body := fetch(t, base, testTokens["analyst"], "/ui/offenders", url.Values{"granularity": {"day"}, "purpose": {"treatment"}, "min_requests": {"1"}})
	for _, w := range []string{`purpose: <a href="/ui/offenders?granularity=day">all</a> · <a href="/ui/offenders?granularity=day&amp;purpose=required_response">required_response</a> · <b>treatment</b> · `,
		`<a class="chain" href="/ui/chains/` + xcID("bR") + `">unanswered · gw-b</a>`} {
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(w)) {
			t.Errorf("offenders page of treatment (%d) lacks %q:\n%s", resp.StatusCode, w, body)
		}
	}
	if bytes.Contains(body, []byte("<td>bayview</td>")) {
		t.Error("the offenders page of treatment lists bayview, which had no treatment request")
	}
	resp, body = fetch(t, base, testTokens["analyst"], "/v1/offenders", url.Values{"purpose": {"T-IAS"}})
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("purpose: want required_response or one of treatment, payment")) {
		t.Errorf("offenders purpose=T-IAS: %d %s", resp.StatusCode, body)
	}
}

func testXCChain(t *testing.T, base string) {
	var v ChainView
	getJSONAt(t, base, "analyst", "/v1/chains/"+xcID("bQ"), nil, &v)
	wantCC := &CrossCommunity{RequesterCommunity: "urn:oid:1.1", ResponderCommunity: "urn:oid:2.2", ResponderName: "Bay Regional HIE", Sides: "initiating",
		SidesSeen: "only the initiating (requester's) gateway's record was seen; the responding gateway's is missing"}
	if v.Purpose != "treatment" || v.PurposeCode != xcTEFCATreatment || !v.RequiredResponse || !reflect.DeepEqual(v.CrossCommunity, wantCC) ||
		!v.Untimed || v.Why.Timing != untimedTiming || v.TTFMs != nil || v.SLA.Deadline != "" || v.SLA.Met != nil {
		t.Errorf("untimed query chain: purpose %q %q required %v cross-community %+v untimed %v timing %q ttf %v deadline %q met %v",
			v.Purpose, v.PurposeCode, v.RequiredResponse, v.CrossCommunity, v.Untimed, v.Why.Timing, v.TTFMs, v.SLA.Deadline, v.SLA.Met)
	}
	var sides []string
	for _, st := range v.Steps {
		sides = append(sides, st.Role+"/"+st.Side+"/"+st.Format)
	}
	if want := []string{"request/initiating/atna", "response/initiating/atna"}; !slices.Equal(sides, want) {
		t.Errorf("steps %v, want %v", sides, want)
	}

	getJSONAt(t, base, "analyst", "/v1/chains/"+xcID("cR"), nil, &v)
	wantText := "10 business days (US federal calendar, the day of receipt not counted; 336h0m0s for this request)"
	if v.SLA.BusinessDays != 10 || v.SLA.Text != wantText || v.SLA.Met == nil || !*v.SLA.Met || v.RequiredResponse != true ||
		v.CrossCommunity == nil || v.CrossCommunity.Sides != "both" || v.Why.Timing != "" || v.Steps[1].Side != "responding" {
		t.Errorf("retrieve chain: sla %+v required %v cross-community %+v timing %q steps %+v", v.SLA, v.RequiredResponse, v.CrossCommunity, v.Why.Timing, v.Steps)
	}

	getJSONAt(t, base, "analyst", "/v1/chains/"+xcID("h"), nil, &v)
	if v.Purpose != "unknown" || v.PurposeCode != "" || v.RequiredResponse || v.CrossCommunity != nil || v.SLA.Text != "1m0s" {
		t.Errorf("HL7 v2 chain: purpose %q %q required %v cross-community %+v sla %q", v.Purpose, v.PurposeCode, v.RequiredResponse, v.CrossCommunity, v.SLA.Text)
	}

	for _, c := range []struct {
		name string
		want []string
	}{
		{"bQ", []string{"treatment <code>" + xcTEFCATreatment + "</code>", "<b>required response</b>", "<code>urn:oid:1.1</code> → <code>urn:oid:2.2</code> (Bay Regional HIE)",
			"initiating: only the initiating (requester&#39;s) gateway&#39;s record was seen", "the audit records say when it ended, not when it was asked",
			"request <code>document_query</code> <code>bQ-0</code>\n · initiating gateway"}},
		{"cR", []string{"10 business days (US federal calendar", "both: both gateways recorded the transaction", "responding gateway"}},
		{"h", []string{"unknown <span class=\"muted\">(no purpose sent)</span>", "<dd id=\"sla\">1m0s + grace"}},
	} {
		resp, body := fetch(t, base, testTokens["analyst"], "/ui/chains/"+xcID(c.name), nil)
		for _, w := range c.want {
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(w)) {
				t.Errorf("chain page %s (%d) lacks %q:\n%s", c.name, resp.StatusCode, w, body)
			}
		}
	}
}

// xcEpisodeSteps are the episode steps of the named chains of xcWorld.
func xcEpisodeSteps(t0 time.Time, names ...string) []EpisodeStep {
	var out []EpisodeStep
	for _, c := range xcWorld() {
		if slices.Contains(names, c.name) {
			out = append(out, EpisodeStep{Chain: xcID(c.name), RequestedAtMs: t0.Add(time.Duration(c.atMin) * time.Minute).UnixMilli(),
				RequestKind: c.kind, Responder: c.responder, Class: c.class})
		}
	}
	return out
}

func testXCJourney(t *testing.T, base string, t0 time.Time, clock *manualClock) {
	path := "/v1/patients/" + xcToken + "/journey"
	at := func(min int64) int64 { return t0.Add(time.Duration(min) * time.Minute).UnixMilli() }
	found := Episode{FromMs: at(0), ToMs: at(2), Requests: 3, Networks: []string{"northstar"}, Responders: []string{"gw-b"},
		Classes: map[string]int{"fulfilled": 1, "refused_unjustified": 1, "unanswered": 1}, Channels: []string{},
		Chains: []string{xcID("bD"), xcID("bQ"), xcID("bR")}, Requester: "urn:oid:1.1", Responder: "urn:oid:2.2",
		Steps: xcEpisodeSteps(t0, "bD", "bQ", "bR")}
	unfulfilled := Episode{FromMs: at(1), ToMs: at(2), Requests: 2, Networks: []string{"northstar"}, Responders: []string{"gw-b"},
		Classes: map[string]int{"refused_unjustified": 1, "unanswered": 1}, Channels: []string{}, Chains: []string{xcID("bQ"), xcID("bR")},
		Steps: xcEpisodeSteps(t0, "bQ", "bR"), Why: "2 unfulfilled request(s): below 3 requests and 2 redirects"}
	returned := Episode{FromMs: at(10), ToMs: at(12), Requests: 3, Networks: []string{"northstar"}, Responders: []string{"gw-c"},
		Classes: map[string]int{"fulfilled": 3}, Channels: []string{}, Chains: []string{xcID("cD"), xcID("cQ"), xcID("cR")},
		Requester: "urn:oid:1.1", Responder: "urn:oid:3.3", Steps: xcEpisodeSteps(t0, "cD", "cQ", "cR"),
		Why: "patient found; documents retrieved 2m0s later"}

	// A day after: B's window is open, nothing is flagged yet.
	var j Journey
	getJSONAt(t, base, "analyst", path, nil, &j)
	open := found
	open.Why = "patient found; 2 of 2 document request(s) without documents so far; judged when the window closes at 2026-11-09T09:00:00Z"
	if want := []Episode{open, unfulfilled, returned}; j.Runaround || len(j.Requests) != 7 || !reflect.DeepEqual(j.Episodes, want) {
		t.Errorf("journey a day after: runaround %v, %d requests, episodes\n %+v\nwant %+v", j.Runaround, len(j.Requests), j.Episodes, want)
	}

	// Once the window has closed, B is a runaround of its own kind.
	clock.advance(7 * 24 * time.Hour)
	getJSONAt(t, base, "analyst", path, nil, &j)
	flagged := found
	flagged.Runaround, flagged.Kind = true, KindFoundNoDocuments
	flagged.Why = "urn:oid:2.2 found the patient but returned no document within 7 days: 1 document quer(ies) and 1 retrieve(s), 2 without documents"
	if want := []Episode{flagged, unfulfilled, returned}; !j.Runaround || !reflect.DeepEqual(j.Episodes, want) {
		t.Errorf("journey after the window: runaround %v, episodes\n %+v\nwant %+v", j.Runaround, j.Episodes, want)
	}

	// The page and the command line show the kind and the steps.
	resp, body := fetch(t, base, testTokens["analyst"], "/ui/patients/"+xcToken, nil)
	for _, w := range []string{"found_no_documents: " + flagged.Why, `<a href="/ui/chains/` + xcID("bR") + `">chain</a>`,
		"+1m0s document_query · refused_unjustified", "<td>individual_access</td>"} {
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(w)) {
			t.Errorf("journey page (%d) lacks %q:\n%s", resp.StatusCode, w, body)
		}
	}
	var out, errb bytes.Buffer
	if err := RunClientCLI(context.Background(), "journey", []string{"--api", base, "--token", testTokens["analyst"], xcToken}, &out, &errb); err != nil {
		t.Fatalf("journey: %v %s", err, errb.String())
	}
	for _, w := range []string{"RUNAROUND DETECTED (runaround/2)", ": found_no_documents: " + flagged.Why + "\n",
		"    +0s patient_discovery fulfilled " + xcID("bD") + "\n", "    +2m0s document_retrieve unanswered " + xcID("bR") + "\n"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("journey table lacks %q:\n%s", w, out.String())
		}
	}
	out.Reset()
	if err := RunClientCLI(context.Background(), "journey", []string{"--api", base, "--token", testTokens["analyst"], "--purpose", "individual_access", xcToken},
		&out, &errb); err != nil {
		t.Fatalf("journey --purpose: %v %s", err, errb.String())
	}
	if first := strings.SplitN(out.String(), "\n", 2)[0]; first != "patient "+xcToken+": 3 requests of purpose individual_access, no runaround detected (runaround/2)" {
		t.Errorf("journey --purpose table first line %q", first)
	}
}

func testXCPurposeFilters(t *testing.T, base string) {
	ids := func(os []Outcome) []string {
		var out []string
		for _, o := range os {
			out = append(out, o.ID)
		}
		slices.Sort(out)
		return out
	}
	idsOf := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, xcID(n))
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		purpose string
		want    []string
	}{
		{"treatment", idsOf("bD", "bQ", "bR")},
		{"individual_access", idsOf("cD", "cQ", "cR")},
		{"unknown", idsOf("h")},
		{"payment", nil},
	} {
		var res SearchResult
		getJSONAt(t, base, "analyst", "/v1/chains", url.Values{"purpose": {c.purpose}}, &res)
		if got := ids(res.Chains); !slices.Equal(got, c.want) {
			t.Errorf("search purpose=%s: %v, want %v", c.purpose, got, c.want)
		}
		var j Journey
		getJSONAt(t, base, "analyst", "/v1/patients/"+xcToken+"/journey", url.Values{"purpose": {c.purpose}}, &j)
		if got := ids(j.Requests); !slices.Equal(got, c.want) || j.Purpose != c.purpose ||
			!slices.Equal(j.Purposes, []string{"treatment", "individual_access", "unknown"}) {
			t.Errorf("journey purpose=%s: %v (purpose %q of %v), want %v", c.purpose, got, j.Purpose, j.Purposes, c.want)
		}
		if c.purpose == "individual_access" && (j.Runaround || len(j.Episodes) != 1) {
			t.Errorf("journey of individual access: runaround %v, episodes %+v", j.Runaround, j.Episodes)
		}
		if c.purpose == "treatment" && (!j.Runaround || len(j.Episodes) != 2 || j.Episodes[0].Kind != KindFoundNoDocuments) {
			t.Errorf("journey of treatment: runaround %v, episodes %+v", j.Runaround, j.Episodes)
		}
	}
	// The page links to the journey of each purpose the patient's requests have.
	resp, body := fetch(t, base, testTokens["analyst"], "/ui/patients/"+xcToken, url.Values{"purpose": {"treatment"}})
	for _, w := range []string{`purpose: <a href="/ui/patients/` + xcToken + `">all</a> · <b>treatment</b> · <a href="/ui/patients/` + xcToken +
		`?purpose=individual_access">individual_access</a> · <a href="/ui/patients/` + xcToken + `?purpose=unknown">unknown</a></p>`, "found_no_documents"} {
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(w)) {
			t.Errorf("journey page of treatment (%d) lacks %q:\n%s", resp.StatusCode, w, body)
		}
	}
	if bytes.Contains(body, []byte(xcID("cD"))) {
		t.Error("the journey page of treatment lists an individual access chain")
	}
	// A purpose that is none: 400 naming the parameter and the choices.
	for _, path := range []string{"/v1/chains", "/v1/patients/" + xcToken + "/journey", "/ui/patients/" + xcToken} {
		for _, bad := range []string{"TREATMENT", "T-TRTMNT", "treatment'--", ""} {
			resp, body := fetch(t, base, testTokens["analyst"], path, url.Values{"purpose": {bad}})
			if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("purpose: want one of treatment, payment")) {
				t.Errorf("%s?purpose=%q: %d %s", path, bad, resp.StatusCode, body)
			}
		}
	}
	var e struct{ Error string }
	_, body = fetch(t, base, testTokens["analyst"], "/v1/chains", url.Values{"purpose": {"x"}})
	if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, "individual_access") {
		t.Errorf("400 body %s", body)
	}
}

// TestCrossCommunityChainTable checks the command line's chain table of an
// untimed cross-community chain, line by line.
func TestCrossCommunityChainTable(t *testing.T) {
	v := chainView(Outcome{ID: "c1", Version: 2, Network: "northstar", RequestID: "REQ-1", RequestKind: kindDocumentQuery, RequesterOrg: "gw-a",
		ResponderOrg: "gw-b", Class: "refused_unjustified", Purpose: "treatment", PurposeCode: xcTEFCATreatment, RequesterCommunity: "urn:oid:1.1",
		ResponderCommunity: "urn:oid:2.2", Sides: "responding", Untimed: true, SLAMs: 60000, GraceMs: 30000, RequestedAtMs: 1000,
		RuleVersion: "link/2", MappingVersion: "atna-map/3"},
		[]Step{{Role: "request", Side: "responding", MessageType: kindDocumentQuery, MessageID: "m1", EventTimeMs: 1000},
			{Role: "response", Side: "responding", MessageType: kindDocumentQuery, MessageID: "m1", EventTimeMs: 1000, Status: "refused"}})
	v.CrossCommunity.ResponderName = "Bay Regional HIE" // as the directory would name it
	if v.SLA.Met != nil || v.SLA.Deadline != "" || v.Why.Timing != untimedTiming {
		t.Errorf("an untimed chain has no deadline and is never late: %+v %+v", v.SLA, v.Why)
	}
	var out bytes.Buffer
	if err := printChain(&out, v); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"chain c1 (version 2)",
		"network northstar",
		"request document_query REQ-1: gw-a -> gw-b",
		"outcome refused_unjustified",
		"purpose treatment (" + xcTEFCATreatment + ") REQUIRED RESPONSE",
		"communities urn:oid:1.1 -> urn:oid:2.2 (Bay Regional HIE)",
		"records seen only the responding (responder's) gateway's record was seen; the initiating gateway's is missing",
		"why refused without a recognised 45 CFR 171 exception [rule link/2, mapping atna-map/3]",
		"requested 1970-01-01T00:00:01.000Z",
		"untimed " + untimedTiming,
		"sla 1m0s + grace 30s, deadline -",
		"",
		"OFFSET ROLE SIDE TYPE MESSAGE ID STATUS ACK REASON",
		"+0s request responding document_query m1 - - -",
		"+0s response responding document_query m1 refused - -",
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for i := range max(len(lines), len(want)) {
		got, w := "", ""
		if i < len(lines) {
			got = strings.Join(strings.Fields(lines[i]), " ")
		}
		if i < len(want) {
			w = want[i]
		}
		if got != w {
			t.Errorf("line %d: %q, want %q", i, got, w)
		}
	}
}

// TestCrossCommunityEvidence checks the case-file bundle of an untimed
// cross-community chain: classification.json carries the purpose and the
// duty to respond, the audit record is an .xml file.
func TestCrossCommunityEvidence(t *testing.T) {
	v := chainView(Outcome{ID: xcID("bQ"), Version: 2, Network: "northstar", Class: "refused_unjustified", Purpose: "treatment",
		PurposeCode: xcTEFCATreatment, Sides: "initiating", Untimed: true, SLAMs: 60000}, nil)
	audit := `<AuditMessage><EventIdentification EventActionCode="E" EventOutcomeIndicator="8"/></AuditMessage>`
	data, err := evidenceZip(v, []RawMessage{{EventID: "e1", MessageID: "urn:uuid:1", Role: "response", Format: "atna", Status: "ok", Data: audit}},
		"ivy", "case 7", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	files := unzipFiles(t, data)
	var cls Classification
	if err := json.Unmarshal(files["classification.json"], &cls); err != nil || cls.Purpose != "treatment" || cls.PurposeCode != xcTEFCATreatment ||
		!cls.RequiredResponse || cls.Why.Timing != untimedTiming || cls.SLA.Deadline != "" {
		t.Errorf("classification.json %s: %v", files["classification.json"], err)
	}
	if got := string(files["raw/01-response-urn_uuid_1.xml"]); got != audit {
		t.Errorf("the audit record's file: %q; files %v", got, slices.Sorted(maps.Keys(files)))
	}
}
