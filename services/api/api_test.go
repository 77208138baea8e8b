package api

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/bus"
)

// TestAPIAgainstSimulator runs the simulator's traffic through the real
// pipeline into ClickHouse and checks every endpoint against its truth,
// then the role matrix, injection strings, the audit log, the CLI and the
// HTML views in headless Chromium, all on the same data.
func TestAPIAgainstSimulator(t *testing.T) {
	f := newFixture(t, 900)
	rows := f.plan.Requests()
	t.Run("chain matches truth for every class", func(t *testing.T) { testChainsMatchTruth(t, f, rows) })
	t.Run("search pages through a network exactly once", func(t *testing.T) { testSearchPages(t, f, rows) })
	t.Run("journeys flag the simulator's runarounds", func(t *testing.T) { testRunaroundJourneys(t, f, rows) })
	t.Run("offenders and scorecards", func(t *testing.T) { testOffendersAndScorecards(t, f) })

	r := firstRow(t, rows, func(r simulator.TruthRow) bool { return r.Network == "bayview" && r.Outcome == "refused_unjustified" })
	chainID := f.chainOf(t, r)

	t.Run("raw messages are audited", func(t *testing.T) { testRawAudited(t, f, chainID, r) })
	t.Run("evidence bundle", func(t *testing.T) { testEvidenceBundle(t, f, chainID) })
	t.Run("role matrix", func(t *testing.T) { testRoleMatrix(t, f, chainID, patientToken(r.Patient)) })
	t.Run("injection strings", func(t *testing.T) { testInjection(t, f, chainID, patientToken(r.Patient)) })
	t.Run("cli", func(t *testing.T) { testCLI(t, f, chainID, patientToken(r.Patient)) })
	t.Run("case packet", func(t *testing.T) { testCasePacket(t, f, rows) })
	t.Run("openapi", func(t *testing.T) { testOpenAPI(t, f) })
	t.Run("browser", func(t *testing.T) { testBrowser(t, f) })
}

// firstRow returns the first of the truth rows that pred accepts.
func firstRow(t *testing.T, rows []simulator.TruthRow, pred func(simulator.TruthRow) bool) simulator.TruthRow {
	t.Helper()
	for _, r := range rows {
		if pred(r) {
			return r
		}
	}
	t.Fatal("no truth row matches")
	return simulator.TruthRow{}
}

// testChainsMatchTruth reads a chain of every class the simulator made
// (rows, its truth) and compares it with the truth.
func testChainsMatchTruth(t *testing.T, f *fixture, rows []simulator.TruthRow) {
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.Outcome] || r.OutOfOrder {
			continue
		}
		seen[r.Outcome] = true
		var v ChainView
		f.getJSON(t, "analyst", "/v1/chains/"+f.chainOf(t, r), nil, &v)
		if v.Class != r.Outcome || v.Network != r.Network || v.RequestID != r.ControlID || v.ResponderOrg != r.Responder {
			t.Errorf("chain %s: %s %s %s %s; truth %s %s %s %s", v.ID, v.Class, v.Network, v.RequestID, v.ResponderOrg, r.Outcome, r.Network, r.ControlID, r.Responder)
		}
		if v.Request == nil || v.Request.MessageID != r.ControlID || v.Request.RawSeq == 0 || v.Request.Format != "hl7v2" {
			t.Errorf("chain %s: request step %+v", v.ID, v.Request)
		}
		if v.Why.RuleVersion == "" || v.Why.MappingVersion == "" || v.Why.Explanation == "" {
			t.Errorf("chain %s: why %+v", v.ID, v.Why)
		}
		if r.Answered() != (len(v.Answers) > 0) {
			t.Errorf("chain %s (%s): %d answers, truth answered=%v", v.ID, r.Outcome, len(v.Answers), r.Answered())
		}
		if v.SLAMs == 0 || v.SLA.Deadline == "" || v.Times.RequestedAt != msTime(r.RequestedAt.UnixMilli()) {
			t.Errorf("chain %s: sla %+v times %+v, truth requested %s", v.ID, v.SLA, v.Times, r.RequestedAt)
		}
	}
	if len(seen) < 6 {
		t.Errorf("only %d classes checked: %v", len(seen), seen)
	}
	status, _ := f.get(t, "analyst", "/v1/chains/00000000-0000-0000-0000-000000000000", nil)
	if status != http.StatusNotFound {
		t.Errorf("unknown chain: %d, want 404", status)
	}
}

// testSearchPages pages through a network's chains and searches by class,
// responder and time, each against the truth.
func testSearchPages(t *testing.T, f *fixture, rows []simulator.TruthRow) {
	truth := f.plan.Truth()["bayview"]
	want := 0
	for _, n := range truth {
		want += n
	}
	ids := map[string]bool{}
	q := url.Values{"network": {"bayview"}, "limit": {"37"}}
	var lastMs int64 = 1 << 62
	for pages := 0; ; pages++ {
		var res SearchResult
		f.getJSON(t, "analyst", "/v1/chains", q, &res)
		for _, c := range res.Chains {
			if ids[c.ID] || c.Network != "bayview" || c.RequestedAtMs > lastMs {
				t.Fatalf("page %d: chain %s repeated, out of order or of network %s", pages, c.ID, c.Network)
			}
			ids[c.ID], lastMs = true, c.RequestedAtMs
		}
		if res.NextCursor == "" {
			break
		}
		q.Set("cursor", res.NextCursor)
	}
	if len(ids) != want {
		t.Errorf("paged %d bayview chains, truth %d", len(ids), want)
	}
	var res SearchResult
	f.getJSON(t, "analyst", "/v1/chains", url.Values{"network": {"bayview"}, "outcome": {"refused_unjustified"}, "limit": {"500"}}, &res)
	if len(res.Chains) != truth["refused_unjustified"] {
		t.Errorf("bayview refused_unjustified: %d, truth %d", len(res.Chains), truth["refused_unjustified"])
	}
	r := firstRow(t, rows, func(r simulator.TruthRow) bool { return r.Network == "northstar" })
	day := r.RequestedAt.Format("2006-01-02")
	f.getJSON(t, "analyst", "/v1/chains", url.Values{"responder": {r.Responder}, "from": {day}, "to": {r.RequestedAt.Add(time.Millisecond).Format(time.RFC3339Nano)}, "limit": {"500"}}, &res)
	wantN := 0
	for _, x := range rows {
		if x.Responder == r.Responder && !x.RequestedAt.Before(r.RequestedAt.Truncate(24*time.Hour)) && !x.RequestedAt.After(r.RequestedAt) {
			wantN++
		}
	}
	if len(res.Chains) != wantN {
		t.Errorf("responder %s from %s to %s: %d chains, truth %d", r.Responder, day, r.RequestedAt, len(res.Chains), wantN)
	}
}

// testRunaroundJourneys checks that the journeys of the simulator's
// runaround patients are flagged, and a fulfilled patient's is not.
func testRunaroundJourneys(t *testing.T, f *fixture, rows []simulator.TruthRow) {
	n := 0
	for network, patients := range f.plan.Runarounds() {
		for _, p := range patients {
			var j Journey
			f.getJSON(t, "analyst", "/v1/patients/"+patientToken(p)+"/journey", nil, &j)
			if !j.Runaround || len(j.Requests) < 3 {
				t.Errorf("%s patient %s: runaround=%v with %d requests", network, p, j.Runaround, len(j.Requests))
			}
			for i := 1; i < len(j.Requests); i++ {
				if j.Requests[i].RequestedAtMs < j.Requests[i-1].RequestedAtMs {
					t.Errorf("journey of %s not in time order", p)
				}
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("the simulator made no runaround journey")
	}
	r := firstRow(t, rows, func(r simulator.TruthRow) bool { return r.Outcome == "fulfilled" && !r.Runaround })
	var j Journey
	f.getJSON(t, "analyst", "/v1/patients/"+patientToken(r.Patient)+"/journey", nil, &j)
	if j.Runaround || len(j.Requests) == 0 {
		t.Errorf("fulfilled patient %s: runaround=%v, %d requests", r.Patient, j.Runaround, len(j.Requests))
	}
	var ops Journey
	ra := f.plan.Runarounds()["bayview"]
	if len(ra) > 0 {
		f.getJSON(t, "operator-ns", "/v1/patients/"+patientToken(ra[0])+"/journey", nil, &ops)
		if len(ops.Requests) != 0 {
			t.Errorf("northstar operator sees %d bayview requests of a journey", len(ops.Requests))
		}
	}
}

// testOffendersAndScorecards checks the offenders' ranking, its chains and
// scorecards, and an operator's view of it.
func testOffendersAndScorecards(t *testing.T, f *fixture) {
	var o Offenders
	f.getJSON(t, "analyst", "/v1/offenders", url.Values{"granularity": {"day"}, "k": {"1"}, "n": {"3"}}, &o)
	if len(o.Offenders) != len(f.plan.Networks()) {
		t.Fatalf("%d networks ranked, want %d", len(o.Offenders), len(f.plan.Networks()))
	}
	flagged := 0
	for _, n := range o.Offenders {
		if n.Flagged > 0 {
			flagged++
		}
		for _, c := range n.Chains {
			var v ChainView
			f.getJSON(t, "analyst", "/v1/chains/"+c.ID, nil, &v)
			if v.Network != n.Network || !v.Suspect {
				t.Errorf("offender %s lists chain %s of %s, suspect=%v", n.Network, c.ID, v.Network, v.Suspect)
			}
		}
		if len(n.LatestScorecard.Scorecard) < 10 {
			t.Errorf("offender %s: no stored scorecard JSON", n.Network)
		}
	}
	if flagged == 0 {
		t.Error("nobody flagged")
	}
	for i := 1; i < len(o.Offenders); i++ {
		if o.Offenders[i].Priority > o.Offenders[i-1].Priority {
			t.Errorf("offenders not ranked by priority: %s %.2f after %s %.2f", o.Offenders[i].Network, o.Offenders[i].Priority, o.Offenders[i-1].Network, o.Offenders[i-1].Priority)
		}
	}
	var ops Offenders
	f.getJSON(t, "operator-ns", "/v1/offenders", url.Values{"granularity": {"day"}}, &ops)
	for _, n := range ops.Offenders {
		if n.Network != "northstar" {
			t.Errorf("northstar operator sees offender %s", n.Network)
		}
	}
	period := o.Offenders[0].LatestScorecard.Period
	var sc ScorecardRow
	f.getJSON(t, "analyst", "/v1/scorecards/"+o.Offenders[0].Network+"/"+period, nil, &sc)
	var card struct {
		Network  string `json:"network"`
		Period   string `json:"period"`
		Requests string `json:"requests"`
	}
	if err := json.Unmarshal(sc.Scorecard, &card); err != nil || card.Network != sc.Network || card.Period != period || sc.Requests == 0 {
		t.Errorf("scorecard %s/%s: %+v %v", sc.Network, period, card, err)
	}
	if status, _ := f.get(t, "analyst", "/v1/scorecards/northstar/1999-01-01", nil); status != http.StatusNotFound {
		t.Errorf("scorecard of a period without data: %d, want 404", status)
	}
}

// testRawAudited reads the raw messages of chainID (the chain of truth row
// r) as the investigator, and checks that every access, served or refused,
// is in the audit log and the AUDIT stream.
func testRawAudited(t *testing.T, f *fixture, chainID string, r simulator.TruthRow) {
	before := auditLines(t, f.audit)
	var raw RawView
	f.getJSON(t, "investigator", "/v1/chains/"+chainID+"/raw", url.Values{"reason": {"case 42: complaint about refusals"}}, &raw)
	if len(raw.Messages) < 2 || raw.Messages[0].Status != "ok" || !strings.Contains(raw.Messages[0].Data, "|"+r.ControlID+"|") {
		t.Fatalf("raw: %+v", raw)
	}
	after := auditLines(t, f.audit)
	if len(after) != len(before)+1 {
		t.Fatalf("audit log: %d lines, then %d", len(before), len(after))
	}
	e := after[len(after)-1]
	if e.Who != "ivy" || e.Role != RoleInvestigator || e.Action != "raw" || e.Chain != chainID || e.Network != "bayview" ||
		e.Reason != "case 42: complaint about refusals" || e.Messages != len(raw.Messages) || time.Since(e.Time) > time.Minute || len(e.TokenID) != 12 {
		t.Errorf("audit entry %+v", e)
	}
	for _, q := range []url.Values{nil, {"reason": {""}}, {"reason": {"x"}}, {"reason": {"line\nbreak"}}} {
		if status, _ := f.get(t, "investigator", "/v1/chains/"+chainID+"/raw", q); status != http.StatusBadRequest {
			t.Errorf("raw with reason %q: %d, want 400", q.Get("reason"), status)
		}
	}
	for _, who := range []string{"analyst", "operator-bv", "operator-ns"} {
		if status, _ := f.get(t, who, "/v1/chains/"+chainID+"/raw", url.Values{"reason": {"curious about it"}}); status != http.StatusForbidden {
			t.Errorf("raw as %s: %d, want 403", who, status)
		}
	}
	// Each refused attempt is logged too, as denied, with the reason
	// and chain as given and why it was refused.
	got := auditLines(t, f.audit)
	if len(got) != len(after)+7 {
		t.Fatalf("%d refused raw attempts logged, want 7", len(got)-len(after))
	}
	for i, e := range got[len(after):] {
		wantWho := map[bool]string{true: "ivy", false: ""}[i < 4]
		if e.Outcome != AuditDenied || e.Action != "raw" || e.Chain != chainID || e.Refusal == "" || e.Messages != 0 ||
			(wantWho != "" && e.Who != wantWho) || (i >= 4 && (e.Role == RoleInvestigator || e.Reason != "curious about it")) {
			t.Errorf("denied entry %d: %+v", i, e)
		}
	}
	if e := got[len(after)+3]; e.Reason != "line\nbreak" {
		t.Errorf("the reason of a denied attempt is kept as given: %q", e.Reason)
	}
	checkAuditStream(t, f, got)
	checkAuditRequired(t, f, chainID, r.ControlID)
}

// checkAuditStream checks that the AUDIT stream holds every entry of the
// audit file (got), the same, under the subject of its network.
func checkAuditStream(t *testing.T, f *fixture, got []AuditEntry) {
	t.Helper()
	stored := auditStream(t, f.js)
	for _, e := range got {
		m, ok := stored[e.RequestID]
		if !ok {
			t.Errorf("entry %s (%s %s) is not in %s", e.RequestID, e.Outcome, e.Who, bus.StreamAudit)
			continue
		}
		var se AuditEntry
		if err := json.Unmarshal(m.Data, &se); err != nil || !reflect.DeepEqual(se, e) || m.Subject != bus.AuditSubject(e.Network) {
			t.Errorf("entry %s in %s at %s: %+v (%v), the file's: %+v", e.RequestID, bus.StreamAudit, m.Subject, se, err, e)
		}
	}
	if len(stored) != len(got) {
		t.Errorf("%s holds %d entries, the file %d", bus.StreamAudit, len(stored), len(got))
	}
}

// checkAuditRequired checks that an access to chainID's raw messages that
// cannot be recorded in AUDIT is not served (controlID is its request's),
// then creates the stream again.
func checkAuditRequired(t *testing.T, f *fixture, chainID, controlID string) {
	t.Helper()
	ctx := context.Background()
	if err := f.js.DeleteStream(ctx, bus.StreamAudit); err != nil {
		t.Fatal(err)
	}
	status, body := f.get(t, "investigator", "/v1/chains/"+chainID+"/raw", url.Values{"reason": {"case 43: the audit stream is gone"}})
	if status != http.StatusServiceUnavailable || bytes.Contains(body, []byte("|"+controlID+"|")) {
		t.Errorf("raw without %s: %d %.120s, want 503 and no message", bus.StreamAudit, status, body)
	}
	for _, c := range bus.StreamConfigs(bus.DefaultStreamOptions()) {
		if c.Name == bus.StreamAudit {
			if _, err := f.js.CreateStream(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// unzipFiles returns the files of a zip by name.
func unzipFiles(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[zf.Name] = b
	}
	return files
}

// testEvidenceBundle downloads chainID's evidence bundle and checks its
// manifest, checksums and files, and that the access is audited.
func testEvidenceBundle(t *testing.T, f *fixture, chainID string) {
	before := len(auditLines(t, f.audit))
	status, body := f.get(t, "investigator", "/v1/chains/"+chainID+"/evidence", url.Values{"reason": {"case 42 evidence"}})
	if status != http.StatusOK {
		t.Fatalf("evidence: %d %s", status, body)
	}
	files := unzipFiles(t, body)
	var m EvidenceManifest
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil || m.Chain != chainID || m.GeneratedBy != "ivy" || m.Reason != "case 42 evidence" {
		t.Fatalf("manifest %+v %v", m, err)
	}
	rawFiles := 0
	for name, sum := range m.Files {
		h := sha256.Sum256(files[name])
		if hex.EncodeToString(h[:]) != sum {
			t.Errorf("%s: sha256 mismatch", name)
		}
		if strings.HasPrefix(name, "raw/") && strings.HasSuffix(name, ".hl7") {
			rawFiles++
		}
	}
	var cls Classification
	if err := json.Unmarshal(files["classification.json"], &cls); err != nil || cls.Outcome != "refused_unjustified" || !cls.Suspect {
		t.Errorf("classification %+v %v", cls, err)
	}
	if rawFiles < 2 || files["chain.json"] == nil {
		t.Errorf("bundle holds %d raw files, chain.json %d bytes", rawFiles, len(files["chain.json"]))
	}
	if got := auditLines(t, f.audit); len(got) != before+1 || got[len(got)-1].Action != "evidence" {
		t.Errorf("evidence access not audited")
	}
}

func auditLines(t *testing.T, path string) []AuditEntry {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []AuditEntry
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var e AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// auditStream returns the AUDIT stream's messages by request id.
func auditStream(t *testing.T, js jetstream.JetStream) map[string]*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*jetstream.RawStreamMsg{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var e AuditEntry
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatalf("%s %d: %v", bus.StreamAudit, seq, err)
		}
		out[e.RequestID] = m
	}
	return out
}

// wrongToken is a bearer token no configuration names.
const wrongToken = "tok-nobody-0123456789"

// roleCall is one route of the role matrix.
type roleCall struct {
	name string
	path string
	q    url.Values
}

// roleCaller is one caller of the role matrix and the status it gets from
// each route, by the route's name.
type roleCaller struct {
	who, token string
	want       map[string]int
}

// roleMatrix is every route on a bayview chain and its patient, with the
// scorecard of period, and every caller with what it gets.
func roleMatrix(bayviewChain, bayviewPatient, period string) ([]roleCall, []roleCaller) {
	reason := url.Values{"reason": {"role matrix check"}}
	calls := []roleCall{
		{"openapi", "/openapi.json", nil},
		{"chain", "/v1/chains/" + bayviewChain, nil},
		{"search all", "/v1/chains", nil},
		{"search bayview", "/v1/chains", url.Values{"network": {"bayview"}}},
		{"journey", "/v1/patients/" + bayviewPatient + "/journey", nil},
		{"offenders", "/v1/offenders", nil},
		{"scorecard", "/v1/scorecards/bayview/" + period, nil},
		{"raw", "/v1/chains/" + bayviewChain + "/raw", reason},
		{"raw without reason", "/v1/chains/" + bayviewChain + "/raw", nil},
		{"evidence", "/v1/chains/" + bayviewChain + "/evidence", reason},
		{"evidence without reason", "/v1/chains/" + bayviewChain + "/evidence", nil},
		{"ui login", "/ui/login", nil},
		{"ui offenders", "/ui/offenders", nil},
		{"ui chain", "/ui/chains/" + bayviewChain, nil},
		{"ui patient", "/ui/patients/" + bayviewPatient, nil},
	}
	all := func(status int, except map[string]int) map[string]int {
		m := map[string]int{"openapi": 200, "ui login": 200}
		for _, c := range calls {
			if _, public := m[c.name]; !public {
				m[c.name] = status
			}
		}
		for k, v := range except {
			m[k] = v
		}
		return m
	}
	noRaw := map[string]int{"raw": 403, "raw without reason": 403, "evidence": 403, "evidence without reason": 403}
	ui := func(status int) map[string]int {
		return map[string]int{"ui offenders": status, "ui chain": status, "ui patient": status}
	}
	callers := []roleCaller{
		// A browser without a token is sent to the login form.
		{"no token", "", all(401, ui(http.StatusSeeOther))},
		{"wrong token", wrongToken, all(401, nil)},
		{"analyst", testTokens["analyst"], all(200, noRaw)},
		{"investigator", testTokens["investigator"], all(200, map[string]int{"raw without reason": 400, "evidence without reason": 400})},
		{"operator-bv", testTokens["operator-bv"], all(200, noRaw)},
		{"operator-ns", testTokens["operator-ns"], all(200, map[string]int{"chain": 403, "search bayview": 403, "scorecard": 403, "ui chain": 403,
			"raw": 403, "raw without reason": 403, "evidence": 403, "evidence without reason": 403})},
	}
	return calls, callers
}

// testRoleMatrix calls every route as every caller, on a bayview chain and
// its patient ("own" network for operator-bv, "other" for operator-ns):
// no token, a wrong token, analyst, investigator and both operators. A
// raw or evidence access is audited exactly when it is served.
func testRoleMatrix(t *testing.T, f *fixture, bayviewChain, bayviewPatient string) {
	var o Offenders
	f.getJSON(t, "analyst", "/v1/offenders", url.Values{"granularity": {"day"}}, &o)
	calls, callers := roleMatrix(bayviewChain, bayviewPatient, o.Offenders[0].LatestScorecard.Period)
	for _, cl := range callers {
		for _, c := range calls {
			checkRoleCall(t, f, cl, c, bayviewChain)
		}
	}
	// The views take the login session too, with the same roles; a
	// session cookie that names no login goes back to the login form.
	for _, tc := range []struct {
		who  string
		want int
	}{{"operator-bv", 200}, {"operator-ns", 403}, {"", http.StatusSeeOther}} {
		sess := &http.Cookie{Name: sessionCookie, Value: strings.Repeat("ab", 32)}
		if tc.who != "" {
			sess = login(t, f.base, testTokens[tc.who])
		}
		if resp, _ := getWith(t, f.base, "/ui/chains/"+bayviewChain, sess); resp.StatusCode != tc.want {
			t.Errorf("ui chain with the session of %q: %d, want %d", tc.who, resp.StatusCode, tc.want)
		}
	}
}

// checkRoleCall calls c as cl and checks the status, the error body or
// redirect, that the northstar operator sees no bayview data, and the
// audit log.
func checkRoleCall(t *testing.T, f *fixture, cl roleCaller, c roleCall, bayviewChain string) {
	t.Helper()
	before := len(auditLines(t, f.audit))
	resp, body := fetch(t, f.base, cl.token, c.path, c.q)
	want := cl.want[c.name]
	if resp.StatusCode != want {
		t.Errorf("%s as %s: %d, want %d (%.200s)", c.name, cl.who, resp.StatusCode, want, body)
		return
	}
	isAPI := strings.HasPrefix(c.path, "/v1/")
	switch {
	case want == http.StatusSeeOther:
		if loc := resp.Header.Get("Location"); loc != "/ui/login" {
			t.Errorf("%s as %s: redirected to %q, want /ui/login", c.name, cl.who, loc)
		}
	case want >= 400 && isAPI:
		var e map[string]any
		if err := json.Unmarshal(body, &e); err != nil || e["status"] != float64(want) || e["error"] == "" {
			t.Errorf("%s as %s: error body %.200s, want {error, status: %d}", c.name, cl.who, body, want)
		}
		if want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("%s as %s: 401 without WWW-Authenticate", c.name, cl.who)
		}
	}
	if cl.who == "operator-ns" && want == http.StatusOK && c.name != "openapi" &&
		(bytes.Contains(body, []byte(bayviewChain)) || bytes.Contains(body, []byte(`"network": "bayview"`))) {
		t.Errorf("%s as the northstar operator shows bayview data: %.300s", c.name, body)
	}
	checkRoleAudit(t, auditLines(t, f.audit)[before:], cl, c, resp.StatusCode, bayviewChain)
}

// checkRoleAudit checks the audit lines (added) that calling c as cl wrote
// when it was answered status.
func checkRoleAudit(t *testing.T, added []AuditEntry, cl roleCaller, c roleCall, status int, bayviewChain string) {
	t.Helper()
	rawRoute := strings.HasPrefix(c.name, "raw") || strings.HasPrefix(c.name, "evidence")
	served := status == http.StatusOK && rawRoute
	if !served {
		// An authenticated caller refused raw messages or evidence
		// is logged as denied; anything else is not logged.
		wantLines := 0
		if rawRoute && status != http.StatusUnauthorized {
			wantLines = 1
		}
		if len(added) != wantLines {
			t.Errorf("%s as %s (%d): %d new audit lines, want %d", c.name, cl.who, status, len(added), wantLines)
		} else if wantLines == 1 {
			if e := added[0]; e.Outcome != AuditDenied || !strings.HasPrefix(c.name, e.Action) || e.Chain != bayviewChain || e.TokenID != HashToken(cl.token)[:12] || e.Refusal == "" {
				t.Errorf("%s as %s: denied entry %+v", c.name, cl.who, e)
			}
		}
		return
	}
	if len(added) != 1 {
		t.Errorf("%s as %s: %d new audit lines, want 1", c.name, cl.who, len(added))
		return
	}
	e := added[0]
	if e.Who != "ivy" || e.Role != RoleInvestigator || e.Action != c.name || e.Chain != bayviewChain || e.Network != "bayview" ||
		e.Reason != "role matrix check" || e.TokenID != HashToken(cl.token)[:12] || e.RequestID == "" || e.Remote == "" || time.Since(e.Time) > time.Minute ||
		e.Outcome != AuditServed {
		t.Errorf("%s as %s: audit entry %+v", c.name, cl.who, e)
	}
}

// injectionStrings are tried in every parameter.
var injectionStrings = []string{
	"' OR 1=1 --",
	"x') UNION SELECT * FROM system.tables --",
	"bayview' OR network != '",
	"1; DROP TABLE exchange_outcomes",
	"\\' OR \\'1\\'=\\'1",
	"northstar%' --",
	"../../etc/passwd",
	"<script>alert(1)</script>",
	"\x00\x01",
	strings.Repeat("A", 5000),
	"00000000-0000-0000-0000-000000000000' OR '1'='1",
	"${jndi:ldap://x}",
}

func testInjection(t *testing.T, f *fixture, chainID, token string) {
	var o Offenders
	f.getJSON(t, "analyst", "/v1/offenders", url.Values{"granularity": {"day"}}, &o)
	period := o.Offenders[0].LatestScorecard.Period
	type target struct {
		path  func(s string) string
		param string // "" = the string goes in the path
		base  url.Values
		who   string
	}
	targets := []target{
		{path: func(s string) string { return "/v1/chains/" + url.PathEscape(s) }},
		{path: func(s string) string { return "/v1/chains/" + url.PathEscape(s) + "/raw" }, base: url.Values{"reason": {"injection test"}}, who: "investigator"},
		{path: func(s string) string { return "/v1/chains/" + url.PathEscape(s) + "/evidence" }, base: url.Values{"reason": {"injection test"}}, who: "investigator"},
		{path: func(s string) string { return "/v1/patients/" + url.PathEscape(s) + "/journey" }},
		{path: func(s string) string { return "/v1/scorecards/" + url.PathEscape(s) + "/" + period }},
		{path: func(s string) string { return "/v1/scorecards/bayview/" + url.PathEscape(s) }},
		{path: func(s string) string { return "/ui/chains/" + url.PathEscape(s) }},
		{path: func(s string) string { return "/ui/patients/" + url.PathEscape(s) }},
	}
	for _, p := range []string{"network", "responder", "outcome", "purpose", "from", "to", "control_id", "limit", "cursor"} {
		targets = append(targets, target{path: func(string) string { return "/v1/chains" }, param: p})
	}
	targets = append(targets, target{path: func(string) string { return "/v1/patients/" + token + "/journey" }, param: "purpose"},
		target{path: func(string) string { return "/ui/patients/" + token }, param: "purpose"})
	for _, p := range []string{"granularity", "k", "n", "threshold", "min_requests", "chains", "purpose"} {
		targets = append(targets, target{path: func(string) string { return "/v1/offenders" }, param: p})
	}
	targets = append(targets, target{path: func(string) string { return "/v1/offenders" }, param: "' OR 1=1 --"})
	before := len(auditLines(t, f.audit))
	for _, tg := range targets {
		for _, s := range injectionStrings {
			q := url.Values{}
			for k, v := range tg.base {
				q[k] = v
			}
			if tg.param != "" {
				q.Set(tg.param, s)
			}
			who := tg.who
			if who == "" {
				who = "analyst"
			}
			status, body := f.get(t, who, tg.path(s), q)
			// A "../" in a path may be cleaned by the mux into another route
			// (a redirect or 404): never anything else.
			ok := status == http.StatusBadRequest || (strings.Contains(s, "..") && (status == http.StatusNotFound || status == http.StatusMovedPermanently))
			if !ok {
				t.Errorf("%s param %q = %.40q: %d %.200s", tg.path(s), tg.param, s, status, body)
			}
			if status == http.StatusBadRequest && (bytes.Contains(body, []byte(`"chains"`)) || bytes.Contains(body, []byte("correlation_key"))) {
				t.Errorf("%s: a 400 carries data: %.200s", tg.path(s), body)
			}
		}
	}
	// The reason is free text kept verbatim: an injection string there is
	// accepted and audited as given, except control characters (400).
	for _, s := range injectionStrings {
		status, _ := f.get(t, "investigator", "/v1/chains/"+chainID+"/raw", url.Values{"reason": {s}})
		if status != http.StatusOK && status != http.StatusBadRequest {
			t.Errorf("reason %.40q: %d", s, status)
		}
	}
	// Served accesses are the chain with a reason as given; every refused
	// attempt (an injection string as the chain id, a reason refused) is
	// logged as denied, the caller's text bounded and kept as JSON.
	served := 0
	for _, e := range auditLines(t, f.audit)[before:] {
		switch {
		case e.Outcome == AuditServed && e.Chain == chainID && slices.Contains(injectionStrings, e.Reason):
			served++
		case e.Outcome == AuditDenied && e.Refusal != "" && len(e.Chain) <= 64 && len(e.Reason) <= 500 && e.Messages == 0:
		default:
			t.Errorf("unexpected audit entry %+v", e)
		}
	}
	if served == 0 {
		t.Error("no injection reason was accepted and audited")
	}
	// The database still holds everything.
	var n uint64
	if err := f.conn.QueryRow(context.Background(), "SELECT count() FROM outcomes").Scan(&n); err != nil || n != uint64(len(f.plan.Requests())) {
		t.Errorf("outcomes after injection: %d %v", n, err)
	}
}

func testCLI(t *testing.T, f *fixture, chainID, token string) {
	ctx := context.Background()
	common := []string{"--api", f.base, "--token", testTokens["analyst"]}
	var out, errb bytes.Buffer
	if err := RunClientCLI(ctx, "chain", append(common, chainID), &out, &errb); err != nil {
		t.Fatalf("chain: %v %s", err, errb.String())
	}
	for _, want := range []string{chainID, "refused_unjustified", "SUSPECT", "OFFSET", "request", "response"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("chain table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := RunClientCLI(ctx, "chain", append(common, "--json", chainID), &out, &errb); err != nil {
		t.Fatal(err)
	}
	var v ChainView
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.ID != chainID {
		t.Errorf("chain --json: %v %s", err, v.ID)
	}
	// Flags after the argument read the same.
	before := out.String()
	out.Reset()
	if err := RunClientCLI(ctx, "chain", append(append([]string{}, common...), chainID, "--json"), &out, &errb); err != nil || out.String() != before {
		t.Errorf("chain ID --json: %v, output differs from chain --json ID: %v", err, out.String() != before)
	}
	out.Reset()
	if err := RunClientCLI(ctx, "journey", append(common, token), &out, &errb); err != nil || !strings.Contains(out.String(), chainID) {
		t.Errorf("journey: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := RunClientCLI(ctx, "offenders", append(common, "--granularity", "day"), &out, &errb); err != nil || !strings.Contains(out.String(), "bayview") || !strings.Contains(out.String(), "PRIORITY") {
		t.Errorf("offenders: %v\n%s", err, out.String())
	}
	usage := [][]string{
		{"chain"},
		{"chain", "not-a-uuid"},
		{"journey", "XYZ"},
		{"offenders", "extra"},
		{"offenders", "--granularity", "year"},
		{"chain", "--api", "ftp://x", chainID},
		{"chain", "--bogus", chainID},
		{"chain", chainID, chainID},
		{"chain", chainID, "--bogus"},
	}
	for _, args := range usage {
		err := RunClientCLI(ctx, args[0], append([]string{"--token", "t"}, args[1:]...), io.Discard, io.Discard)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("%v: %v, want ErrUsage", args, err)
		}
	}
	if err := RunClientCLI(ctx, "frobnicate", nil, io.Discard, io.Discard); !errors.Is(err, ErrUsage) {
		t.Errorf("unknown command: %v", err)
	}
	err := RunClientCLI(ctx, "chain", []string{"--api", f.base, "--token", "wrong", chainID}, io.Discard, io.Discard)
	if err == nil || errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v", err)
	}
}

func testOpenAPI(t *testing.T, f *fixture) {
	status, body := f.get(t, "", "/openapi.json", nil)
	file, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || !bytes.Equal(body, file) {
		t.Fatalf("/openapi.json: %d, equal to the file: %v", status, bytes.Equal(body, file))
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("not OpenAPI 3: %v", err)
	}
	// Every route the server registers for the JSON API, and nothing else,
	// is documented, with its method and each path parameter declared.
	var want, got []string
	for _, r := range f.srv.apiRoutes {
		method, path, _ := strings.Cut(r, " ")
		want = append(want, strings.ToLower(method)+" "+path)
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			got = append(got, method+" "+path)
			declared := map[string]bool{}
			if m, ok := op.(map[string]any); ok {
				params, _ := m["parameters"].([]any)
				for _, p := range params {
					if pm, ok := p.(map[string]any); ok && pm["in"] == "path" {
						declared[fmt.Sprint(pm["name"])] = true
					}
				}
			}
			for _, seg := range strings.Split(path, "/") {
				if name, ok := strings.CutPrefix(seg, "{"); ok && !declared[strings.TrimSuffix(name, "}")] {
					t.Errorf("%s %s: path parameter %s is not declared", method, path, seg)
				}
			}
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("documented operations %v, served %v", got, want)
	}
}
