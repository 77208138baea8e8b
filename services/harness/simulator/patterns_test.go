package simulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func patternPlan(t testing.TB, requests int, span time.Duration) *Plan {
	t.Helper()
	return mustGenerate(t, Config{Requests: requests, Seed: 5, Span: span, Networks: PatternNetworks()})
}

// TestPatternPlan: the same Config gives the same plan; every pattern,
// request kind and class occurs; each row's pattern can say its class;
// runarounds stay HL7 v2 patient queries; a batch's entries share their
// request time and have no parties.
func TestPatternPlan(t *testing.T) {
	p := patternPlan(t, 4000, 60*24*time.Hour)
	if !bytes.Equal(planBytes(t, p), planBytes(t, patternPlan(t, 4000, 60*24*time.Hour))) {
		t.Fatal("the same Config gave two plans")
	}
	seen := map[string]int{}
	for _, r := range p.Requests() {
		spec, ok := lookupPattern(r.Pattern)
		switch {
		case !ok:
			t.Fatalf("%s: unknown pattern %q", r.ControlID, r.Pattern)
		case r.Runaround && (r.Pattern != PatternQBP || r.Format != FormatHL7v2):
			t.Errorf("%s: a runaround step of pattern %s", r.ControlID, r.Pattern)
		case !r.Runaround && !slices.Contains(spec.classes, r.Outcome):
			t.Errorf("%s: pattern %s cannot say %s", r.ControlID, r.Pattern, r.Outcome)
		case !slices.Contains(spec.kinds, r.Kind) || r.SLA != kindSLA(r.Kind) || r.Format != spec.format:
			t.Errorf("%s: kind %s, SLA %s, format %s for pattern %s", r.ControlID, r.Kind, r.SLA, r.Format, r.Pattern)
		case spec.entries && (r.Requester != "" || r.Responder != "" || !strings.Contains(r.ControlID, "#")):
			t.Errorf("%s: a %s entry names %q→%q", r.ControlID, r.Pattern, r.Requester, r.Responder)
		}
		seen["pattern "+r.Pattern]++
		seen["kind "+r.Kind]++
		seen["class "+r.Outcome]++
		checkRowTimes(t, r)
	}
	for _, want := range Patterns() {
		if seen["pattern "+want] == 0 {
			t.Errorf("no request of pattern %s", want)
		}
	}
	for _, c := range Classes() {
		if seen["class "+c] == 0 {
			t.Errorf("no request of class %s", c)
		}
	}
	t.Logf("%v", seen)
}

// checkRowTimes: a late answer after its SLA, any other before it; an
// interim answer before the final one; a cancel answers nothing.
func checkRowTimes(t *testing.T, r TruthRow) {
	t.Helper()
	late := r.Answered() && time.Duration(r.LatencyMs)*time.Millisecond > r.SLA
	switch {
	case (r.Outcome == FulfilledLate) != late:
		t.Errorf("%s %s: latency %d ms, SLA %s", r.ControlID, r.Outcome, r.LatencyMs, r.SLA)
	case r.Outcome == Cancelled && (r.Answered() || r.CancelledAt.IsZero() || r.CancelledAt.Sub(r.RequestedAt) >= r.SLA):
		t.Errorf("%s cancelled: answered %v, cancelled at %s", r.ControlID, r.Answered(), r.CancelledAt)
	case r.Answered() && (!r.Acknowledged() || r.AcknowledgedAt.After(r.AnsweredAt)):
		t.Errorf("%s: acknowledged %s, answered %s", r.ControlID, r.AcknowledgedAt, r.AnsweredAt)
	}
}

// TestPatternMessages reads each HL7 v2 exchange of the plan back from its
// frames (message types, MSA-2, placer numbers, DSC) and checks each FHIR
// body is JSON of the pattern's resource.
func TestPatternMessages(t *testing.T) {
	p := patternPlan(t, 1500, 30*24*time.Hour)
	frames := map[string][]string{} // control id prefix → MSH-9 of every frame
	for _, n := range p.Networks() {
		for _, m := range p.Messages(n) {
			if m.Kind == KindMalformed || m.Kind == KindNotification || m.Duplicate {
				continue
			}
			if prof, _ := p.Profile(n); prof.fhir() {
				checkFHIRBody(t, m)
				continue
			}
			segs := strings.Split(strings.TrimSuffix(string(m.Raw), "\r"), "\r")
			msh := strings.Split(segs[0], "|")
			base := strings.TrimRight(m.ControlID, "ACRD")
			frames[base] = append(frames[base], msh[8])
		}
	}
	want := map[string][]string{
		PatternQ23:    {"QBP^Q23^QBP_Q21", "RSP^K23^RSP_K23"},
		PatternQRYA19: {"QRY^A19^QRY_A19", "ADR^A19^ADR_A19"},
		PatternQRYT12: {"QRY^T12^QRY_Q01", "DOC^T12^DOC_T12"},
		PatternREF:    {"REF^I12^REF_I12", "ACK^I12^ACK", "RRI^I12^RRI_I12"},
		PatternORM:    {"ORM^O01^ORM_O01", "ORR^O02^ORR_O02", "ORU^R01^ORU_R01"},
		PatternOML:    {"OML^O21^OML_O21", "ORL^O22^ORL_O22", "ORU^R01^ORU_R01"},
		PatternDSC:    {"QBP^Q22^QBP_Q21", "RSP^K22^RSP_K21"},
	}
	for _, r := range p.Requests() {
		types, ok := want[r.Pattern]
		if !ok || r.Format != FormatHL7v2 {
			continue
		}
		got := frames[strings.TrimSuffix(r.ControlID, "D")]
		if len(got) == 0 || got[0] != types[0] {
			t.Errorf("%s %s: frames %v", r.ControlID, r.Pattern, got)
		}
		for _, g := range got {
			if !slices.Contains(types, g) {
				t.Errorf("%s %s: a %s among %v", r.ControlID, r.Pattern, g, got)
			}
		}
	}
}

func checkFHIRBody(t *testing.T, m Message) {
	t.Helper()
	var body struct {
		ResourceType string
		Type         json.RawMessage // a Bundle's is a code, an AuditEvent's a Coding
	}
	if err := json.Unmarshal(m.Raw, &body); err != nil {
		t.Fatalf("%s: %v", m.ControlID, err)
	}
	typ := strings.Trim(string(body.Type), `"`)
	if !slices.Contains([]string{"Task", "Bundle", "AuditEvent"}, body.ResourceType) {
		t.Errorf("%s: a %s", m.ControlID, body.ResourceType)
	}
	batch := typ == "batch" || typ == "transaction" || strings.HasSuffix(typ, "-response")
	if batch != (m.CorrelationID != "") {
		t.Errorf("%s: Bundle %s with X-Correlation-ID %q", m.ControlID, typ, m.CorrelationID)
	}
}

// TestResponderTrends: over six months the improving responders' suspect
// share falls and the worsening ones' rises, in their true rates and in
// the plan.
func TestResponderTrends(t *testing.T) {
	p := mustGenerate(t, Config{Requests: 20000, Seed: 8, Span: 180 * 24 * time.Hour, Networks: PatternNetworks(), RunaroundShare: -1})
	suspect := map[string][2]float64{} // behaviour → suspect requests, requests in the first and last 30 days
	var first, last [2]map[string]float64
	for i := range first {
		first[i], last[i] = map[string]float64{}, map[string]float64{}
	}
	start := p.Start()
	for _, r := range p.Requests() {
		age := r.RequestedAt.Sub(start)
		bucket := first
		switch {
		case age >= 150*24*time.Hour:
			bucket = last
		case age >= 30*24*time.Hour:
			continue
		}
		bucket[1][r.Behaviour]++
		if suspectClass(r.Outcome) {
			bucket[0][r.Behaviour]++
		}
	}
	for _, b := range []string{BehaviourImproving, BehaviourWorsening, BehaviourClean} {
		suspect[b] = [2]float64{first[0][b] / first[1][b], last[0][b] / last[1][b]}
	}
	t.Logf("suspect share, first and last 30 days: %v", suspect)
	if s := suspect[BehaviourImproving]; !(s[0] > 0.1 && s[1] < s[0]/4) {
		t.Errorf("improving: %v", s)
	}
	if s := suspect[BehaviourWorsening]; !(s[1] > 3*s[0] && s[1] > 0.05) {
		t.Errorf("worsening: %v", s)
	}
	prof, _ := p.Profile("northstar")
	worse := prof.ResponderProfiles[1]
	early := TrueRates(prof, worse.Facility, start, start)
	late := TrueRates(prof, worse.Facility, start, start.Add(150*24*time.Hour))
	if late[RefusedUnjustified] <= 2*early[RefusedUnjustified] {
		t.Errorf("TrueRates of a worsening responder: %v then %v", early, late)
	}
}

// TestSendFHIR posts a FHIR feed to a server that fails the first POST
// with 503: every body arrives, in delivery order, with its token,
// content type and (batches) X-Correlation-ID; the failed one again.
func TestSendFHIR(t *testing.T) {
	nets := []NetworkProfile{lakeshore()}
	p := mustGenerate(t, Config{Requests: 60, Seed: 2, Networks: nets, FHIRToken: "tok", DuplicateRate: -1})
	var mu sync.Mutex
	var got [][]byte
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		batch := bytes.Contains(body, []byte(`"type":"batch`)) || bytes.Contains(body, []byte(`"type":"transaction`))
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/fhir+json" ||
			batch != (r.Header.Get("X-Correlation-ID") != "") || r.URL.Path != "/fhir/lakeshore/" {
			t.Errorf("POST %s with %v", r.URL.Path, r.Header)
		}
		got = append(got, body)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	st, err := p.Send(t.Context(), map[string]string{"lakeshore": srv.URL + "/fhir/lakeshore"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := p.Messages("lakeshore")
	if len(got) != len(msgs) || st.Accepted != len(msgs) || st.Resent != 1 || st.Failed != 0 {
		t.Fatalf("%d bodies stored of %d; %s", len(got), len(msgs), st)
	}
	for i, m := range msgs {
		if !bytes.Equal(got[i], m.Raw) {
			t.Fatalf("body %d is not the feed's %d'th (%s)", i, i, m.ControlID)
		}
	}
}

func TestParseSpan(t *testing.T) {
	end := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in        string
		wantStart time.Time
		wantErr   bool
	}{
		{"6mo", time.Date(2026, 6, 8, 0, 0, 0, 0, time.UTC), false},
		{"30d", time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC), false},
		{"36h", time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), false},
		{"0mo", time.Time{}, true},
		{"-3d", time.Time{}, true},
		{"six months", time.Time{}, true},
	}
	for _, tt := range tests {
		s, err := ParseSpan(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSpan(%q): %v", tt.in, err)
			continue
		}
		if err == nil && (!s.Before(end).Equal(tt.wantStart) || s.From(tt.wantStart) != end.Sub(tt.wantStart)) {
			t.Errorf("ParseSpan(%q) = %+v: starts %s", tt.in, s, s.Before(end))
		}
	}
}

func TestPatternConfigValidated(t *testing.T) {
	fhirless := lakeshore()
	fhirless.Patterns = nil
	wrong := DefaultNetworks()[0]
	wrong.Patterns = []PatternWeight{{PatternTask, 1}, {"smoke-signal", 1}, {PatternQBP, 0}}
	odd := DefaultNetworks()[0]
	odd.Format = "x12"
	for _, n := range []NetworkProfile{fhirless, wrong, odd} {
		if _, err := Generate(Config{Requests: 10, Start: testStart, Networks: []NetworkProfile{n}}); err == nil {
			t.Errorf("%s %q %v: no error", n.Name, n.Format, n.Patterns)
		} else {
			t.Log(err)
		}
	}
}
