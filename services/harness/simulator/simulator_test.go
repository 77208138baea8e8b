package simulator

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/proto/outcomeclass"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testStart = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

func mustGenerate(t testing.TB, cfg Config) *Plan {
	t.Helper()
	if cfg.Start.IsZero() {
		cfg.Start = testStart
	}
	p, err := Generate(cfg)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return p
}

// planBytes serialises everything a plan generates.
func planBytes(t testing.TB, p *Plan) []byte {
	t.Helper()
	b, err := p.truthCSV()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range p.Networks() {
		for _, m := range p.Messages(n) {
			b = append(b, m.Time.Format(time.RFC3339Nano)+" "+m.Kind.String()+"\n"...)
			b = append(b, m.Raw...)
		}
	}
	return b
}

func TestGenerateDeterministic(t *testing.T) {
	a := planBytes(t, mustGenerate(t, Config{Requests: 3000, Seed: 42}))
	b := planBytes(t, mustGenerate(t, Config{Requests: 3000, Seed: 42}))
	c := planBytes(t, mustGenerate(t, Config{Requests: 3000, Seed: 43}))
	if !bytes.Equal(a, b) {
		t.Error("same seed gave different plans")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds gave the same plan")
	}
}

func TestDefaultStartFromClock(t *testing.T) {
	now := time.Date(2026, 11, 23, 15, 4, 5, 0, time.UTC)
	p, err := Generate(Config{Requests: 10, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Requests() {
		if r.RequestedAt.Before(testStart) || !r.RequestedAt.Before(testStart.Add(24*time.Hour)) {
			t.Errorf("request at %s outside yesterday", r.RequestedAt)
		}
	}
}

// TestRequestsWithinSpan: every request of a plan, runaround journeys'
// later requests included, is inside [Start, Start+Span), for a span
// shorter than a journey too. A journey used to run up to 15 hours past
// the span, so that a plan ending now (the default) had requests in the
// future, still waiting for their deadlines when a test checked.
func TestRequestsWithinSpan(t *testing.T) {
	for _, span := range []time.Duration{24 * time.Hour, 2 * time.Hour, 30 * time.Minute} {
		p, err := Generate(Config{Requests: 3000, Seed: 42, Start: testStart, Span: span})
		if err != nil {
			t.Fatal(err)
		}
		journeys := 0
		for _, r := range p.Requests() {
			if r.Runaround {
				journeys++
			}
			if r.RequestedAt.Before(testStart) || !r.RequestedAt.Before(testStart.Add(span)) {
				t.Errorf("span %s: request %s/%s at %s outside it", span, r.Network, r.ControlID, r.RequestedAt)
			}
		}
		if journeys == 0 {
			t.Errorf("span %s: no runaround requests to check", span)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	bad := DefaultNetworks()
	bad[1].Mix = append(bad[1].Mix, ClassWeight{"blocked", 0.1})
	noCode := DefaultNetworks()
	noCode[2].Exceptions = []string{"171.999"}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative requests", Config{Requests: -1}, "Requests"},
		{"malformed rate", Config{MalformedRate: 0.9}, "MalformedRate"},
		{"unknown class", Config{Networks: bad}, `Networks[1].Mix: unknown class "blocked"`},
		{"unknown exception", Config{Networks: noCode}, `Networks[2].Exceptions: "171.999"`},
		{"duplicate network", Config{Networks: append(DefaultNetworks(), DefaultNetworks()[0])}, "duplicate name"},
		{"out of order beyond lateness", Config{OutOfOrderMax: 20 * time.Second}, "OutOfOrderMax"},
		{"two rates", Config{Rate: 100, NetworkRate: 10}, "not both"},
		{"negative rate", Config{Rate: -1}, "must not be negative"},
		{"duplicate rate", Config{DuplicateRate: 0.9}, "DuplicateRate"},
		{"runaround share", Config{RunaroundShare: 0.6}, "RunaroundShare"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Generate(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestClassFrequencies(t *testing.T) {
	p := mustGenerate(t, Config{Requests: 20000})
	// Runaround journeys follow a mix of their own.
	truth := map[string]map[string]int{}
	for _, r := range p.Requests() {
		if r.Runaround {
			continue
		}
		if truth[r.Network] == nil {
			truth[r.Network] = map[string]int{}
		}
		truth[r.Network][r.Outcome]++
	}
	for _, prof := range DefaultNetworks() {
		counts := truth[prof.Name]
		n := 0
		for class, c := range counts {
			if _, err := outcomeclass.Parse(class); err != nil {
				t.Errorf("%s: %v", prof.Name, err)
			}
			n += c
		}
		if share := float64(n) / float64(20000-runarounds(p)); math.Abs(share-prof.Share) > 0.02 {
			t.Errorf("%s: share %.3f, profile %.3f", prof.Name, share, prof.Share)
		}
		for _, w := range prof.Mix {
			got := float64(counts[w.Class]) / float64(n)
			// Four standard errors plus a little slack.
			tol := 4*math.Sqrt(w.Weight*(1-w.Weight)/float64(n)) + 0.002
			if math.Abs(got-w.Weight) > tol {
				t.Errorf("%s %s: realised %.4f, profile %.4f (tolerance %.4f)", prof.Name, w.Class, got, w.Weight, tol)
			}
		}
	}
}

// hl7 is the structural view the test needs of one message.
type hl7 struct {
	segs map[string][][]string // segment name → occurrences → fields (field 0 = name)
	msh  []string              // MSH fields numbered as in HL7 (msh[1] = "|")
}

var segName = regexp.MustCompile(`^[A-Z][A-Z0-9]{2}$`)

func parseStructure(t *testing.T, raw []byte) (hl7, bool) {
	t.Helper()
	s := string(raw)
	if !strings.HasSuffix(s, "\r") || !strings.HasPrefix(s, "MSH|^~\\&|") {
		return hl7{}, false
	}
	h := hl7{segs: map[string][][]string{}}
	for _, seg := range strings.Split(strings.TrimSuffix(s, "\r"), "\r") {
		f := strings.Split(seg, "|")
		if !segName.MatchString(f[0]) {
			return hl7{}, false
		}
		h.segs[f[0]] = append(h.segs[f[0]], f)
	}
	if len(h.segs["MSH"]) != 1 {
		return hl7{}, false
	}
	h.msh = append([]string{"MSH", "|"}, h.segs["MSH"][0][1:]...)
	if len(h.msh) < 13 || h.msh[9] == "" || h.msh[10] == "" || h.msh[12] != "2.5.1" {
		return hl7{}, false
	}
	return h, true
}

func (h hl7) field(seg string, n int) string {
	occ := h.segs[seg]
	if len(occ) == 0 || n >= len(occ[0]) {
		return ""
	}
	return occ[0][n]
}

func TestMessages(t *testing.T) {
	p := mustGenerate(t, Config{Requests: 6000, MalformedRate: 0.01})
	rows := map[string]TruthRow{}
	for _, r := range p.Requests() {
		rows[r.Network+"/"+r.ControlID] = r
	}
	answers := 0
	for _, network := range p.Networks() {
		msgs := p.Messages(network)
		// Requests first: an answer may overtake its request.
		requests := map[string]hl7{}
		for _, m := range msgs {
			if m.Kind == KindRequest {
				h, ok := parseStructure(t, m.Raw)
				if !ok {
					t.Fatalf("%s request does not parse: %q", network, m.Raw)
				}
				requests[h.msh[10]] = h
			}
		}
		var last time.Time
		for i, m := range msgs {
			if m.DeliverAt.Before(last) {
				t.Fatalf("%s message %d delivered at %s before %s", network, i, m.DeliverAt, last)
			}
			last = m.DeliverAt
			h, ok := parseStructure(t, m.Raw)
			if m.Kind == KindMalformed {
				if ok {
					t.Errorf("%s: malformed frame parses: %q", network, m.Raw)
				}
				continue
			}
			if !ok {
				t.Fatalf("%s %s does not parse: %q", network, m.Kind, m.Raw)
			}
			if h.msh[7] != hl7Time(m.Time) || h.msh[10] != m.ControlID {
				t.Errorf("%s: MSH-7/10 %q %q, want %q %q", network, h.msh[7], h.msh[10], hl7Time(m.Time), m.ControlID)
			}
			if m.Duplicate {
				continue
			}
			switch m.Kind {
			case KindNotification:
				if h.msh[9] != "ADT^A04^ADT_A01" || h.field("EVN", 1) != "A04" {
					t.Errorf("notification %q", m.Raw)
				}
			case KindRequest:
				if h.msh[9] != "QBP^Q22^QBP_Q21" || h.field("QPD", 1) != "IHE PDQ Query" || h.field("RCP", 1) != "I" {
					t.Errorf("request %q", m.Raw)
				}
			case KindAnswer:
				answers++
				ref := h.field("MSA", 2)
				req, found := requests[ref]
				if !found {
					t.Fatalf("%s: answer %s references no request (%q)", network, h.msh[10], ref)
				}
				if h.msh[5] != req.msh[3] || h.msh[6] != req.msh[4] || h.msh[3] != req.msh[5] || h.msh[4] != req.msh[6] {
					t.Errorf("%s: answer %s does not swap sender and receiver of %s", network, h.msh[10], ref)
				}
				if h.field("QAK", 1) != req.field("QPD", 2) {
					t.Errorf("%s: QAK-1 %q, query tag %q", network, h.field("QAK", 1), req.field("QPD", 2))
				}
				r := rows[network+"/"+ref]
				mrn, authority, _ := strings.Cut(r.Patient, "^^^")
				if qpd := req.field("QPD", 3); qpd != "@PID.3.1^"+mrn+"~@PID.3.4.1^"+authority {
					t.Errorf("%s: truth patient %q, QPD-3 %q", ref, r.Patient, qpd)
				}
				checkAnswer(t, rows[network+"/"+ref], h, m)
			}
		}
	}
	want := 0
	for _, r := range rows {
		if r.Answered() {
			want++
		}
	}
	if answers != want {
		t.Errorf("%d answers, truth has %d answered requests", answers, want)
	}
}

func checkAnswer(t *testing.T, r TruthRow, h hl7, m Message) {
	t.Helper()
	if !m.Time.Equal(r.AnsweredAt) || m.Time.Sub(r.RequestedAt).Milliseconds() != r.LatencyMs {
		t.Errorf("%s: answer time %s, truth %s / %d ms", r.ControlID, m.Time, r.AnsweredAt, r.LatencyMs)
	}
	late := m.Time.Sub(r.RequestedAt) > QuerySLA
	if late != (r.Outcome == FulfilledLate) {
		t.Errorf("%s: %s answered after %s", r.ControlID, r.Outcome, m.Time.Sub(r.RequestedAt))
	}
	ack, status := h.field("MSA", 1), h.field("QAK", 2)
	err3, err5, err8 := h.field("ERR", 3), h.field("ERR", 5), h.field("ERR", 8)
	var want [2]string
	switch r.Outcome {
	case Fulfilled, FulfilledLate:
		want = [2]string{"AA", "OK"}
		if h.field("QAK", 4) != "1" || len(h.segs["PID"]) != 1 {
			t.Errorf("%s: fulfilled without a hit", r.ControlID)
		}
	case NotFound:
		want = [2]string{"AA", "NF"}
	case RefusedException:
		want = [2]string{"AR", "AR"}
		if !strings.Contains(err8, r.ExceptionCode) || (err5 != "" && err5 != r.ExceptionCode+"^"+exceptionNames[r.ExceptionCode]+"^urn:hinscore:ib-exception") {
			t.Errorf("%s: exception %s cited as ERR-5 %q ERR-8 %q", r.ControlID, r.ExceptionCode, err5, err8)
		}
	case RefusedUnjustified:
		want = [2]string{"AR", "AR"}
		if err5 != "" || regexp.MustCompile(`171\.\d{3}`).MatchString(err8) || err8 == "" {
			t.Errorf("%s: unjustified refusal cites something: %q %q", r.ControlID, err5, err8)
		}
	case Redirected:
		want = [2]string{"AR", "AR"}
		if !strings.HasPrefix(err5, r.ExceptionCode+"^") || !strings.HasSuffix(err5, "^urn:hinscore:ib-exception") {
			t.Errorf("%s: redirect ERR-5 %q", r.ControlID, err5)
		}
	case ErrorTransient:
		want = [2]string{"AE", "AE"}
		if c, _, _ := strings.Cut(err3, "^"); c != "206" && c != "207" {
			t.Errorf("%s: transient ERR-3 %q", r.ControlID, err3)
		}
	case ErrorPermanent:
		want = [2]string{"AE", "AE"}
		if c, _, _ := strings.Cut(err3, "^"); c == "" || c == "206" || c == "207" {
			t.Errorf("%s: permanent ERR-3 %q", r.ControlID, err3)
		}
	default:
		t.Errorf("%s: %s has an answer", r.ControlID, r.Outcome)
	}
	if [2]string{ack, status} != want {
		t.Errorf("%s: %s answered MSA-1 %s QAK-2 %s, want %v", r.ControlID, r.Outcome, ack, status, want)
	}
}

func TestLateAnswers(t *testing.T) {
	p := mustGenerate(t, Config{Requests: 20000})
	beyond, late := 0, 0
	for _, r := range p.Requests() {
		if r.Outcome != FulfilledLate {
			continue
		}
		late++
		d := time.Duration(r.LatencyMs) * time.Millisecond
		if d <= QuerySLA {
			t.Errorf("%s: fulfilled_late after %s", r.ControlID, d)
		}
		if d > QuerySLA+QueryGrace+LinkerLateness {
			beyond++
		}
	}
	if late == 0 || beyond == 0 || beyond == late {
		t.Errorf("%d late answers, %d of them after the linker gave up: want both kinds", late, beyond)
	}
}

func TestWriteTruthGolden(t *testing.T) {
	p := mustGenerate(t, Config{Requests: 40, Seed: 7, NotificationRate: 0.1, MalformedRate: 0.05})
	dir := t.TempDir()
	if err := p.WriteTruth(dir); err != nil {
		t.Fatal(err)
	}
	csvBytes, err := os.ReadFile(filepath.Join(dir, TruthCSV))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(csvBytes)).ReadAll()
	if err != nil || len(recs) != 41 {
		t.Fatalf("truth.csv: %d records, %v", len(recs), err)
	}
	var summary truthSummary
	jsonBytes, err := os.ReadFile(filepath.Join(dir, TruthJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(jsonBytes, &summary); err != nil {
		t.Fatal(err)
	}
	if summary.Requests != 40 || summary.ValidMessages != p.ValidMessages() || len(summary.Networks) != 3 {
		t.Errorf("truth.json summary %+v", summary)
	}
	var msgs bytes.Buffer
	for _, n := range p.Networks() {
		for _, m := range p.Messages(n) {
			msgs.WriteString("# " + n + " " + m.Kind.String() + "\n")
			msgs.WriteString(strings.ReplaceAll(string(m.Raw), "\r", "\n"))
		}
	}
	golden(t, "truth.csv.golden", csvBytes)
	golden(t, "truth.json.golden", jsonBytes)
	golden(t, "messages.golden", msgs.Bytes())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update to accept)", name)
	}
}

func TestParseTargets(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"", map[string]string{}, false},
		{"northstar=127.0.0.1:2575, bayview=127.0.0.1:2576", map[string]string{"northstar": "127.0.0.1:2575", "bayview": "127.0.0.1:2576"}, false},
		{"northstar", nil, true},
		{"northstar=localhost", nil, true},
		{"a=127.0.0.1:1,a=127.0.0.1:2", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseTargets(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseTargets(%q) error %v", tt.in, err)
			continue
		}
		if !tt.wantErr && (len(got) != len(tt.want) || func() bool {
			for k, v := range tt.want {
				if got[k] != v {
					return true
				}
			}
			return false
		}()) {
			t.Errorf("ParseTargets(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func runarounds(p *Plan) int {
	n := 0
	for _, r := range p.Requests() {
		if r.Runaround {
			n++
		}
	}
	return n
}
