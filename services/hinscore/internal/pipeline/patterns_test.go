package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
)

// patternsToken is the FHIR network's bearer token in the test.
const patternsToken = "lakeshore test token"

// storedOutcome is one row of the outcomes view, the fields a truth row
// states.
type storedOutcome struct {
	Network, Kind, Requester, Responder string
	Outcome, ExceptionCode, Token       string
	RequestID                           string
	RequestedAtMs, AcknowledgedAtMs     int64
	TTAMs, TTFMs                        *uint64
	RecordCount                         uint32
	matched                             bool
}

func (o storedOutcome) String() string {
	ms := func(p *uint64) string {
		if p == nil {
			return "NULL"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("%s %s %s %s→%s at %s %s exception %q tta %s ttf %s records %d", o.Network, o.RequestID, o.Kind, o.Requester,
		o.Responder, time.UnixMilli(o.RequestedAtMs).UTC().Format(time.RFC3339Nano), o.Outcome, o.ExceptionCode, ms(o.TTAMs), ms(o.TTFMs), o.RecordCount)
}

// TestPatternsEndToEndMatchTruth sends a short run of every pattern the
// simulator speaks — HL7 v2 over MLLP (patient and legacy queries, a
// continued query, referrals with commit acks, orders with their
// acceptance, results and cancels) and FHIR over HTTP (Task workflows,
// messaging Bundles, batches, transactions, AuditEvents) — over three
// months through the composed pipeline (embedded NATS, the local
// ClickHouse), and checks that every request of the truth has exactly one
// outcome whose class, request kind, requester, responder and exception
// equal the truth's, and that every pattern and class occurred.
func TestPatternsEndToEndMatchTruth(t *testing.T) {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	plan, err := simulator.Generate(simulator.Config{
		Requests: 1600, Seed: 24, Start: start, Span: 90 * 24 * time.Hour,
		Networks: simulator.PatternNetworks(), FHIRToken: patternsToken,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p, targets := startPatternsPipeline(ctx, t, plan)
	stats, err := plan.Send(ctx, targets)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Failed != 0 || stats.Unexpected != 0 {
		t.Fatalf("simulator: %s", stats)
	}
	t.Logf("simulator: %s", stats)
	rows := plan.Requests()
	stored := waitPatternOutcomes(ctx, t, p, len(rows))
	checkPatternTruth(t, rows, stored)
}

// startPatternsPipeline starts the pipeline with an MLLP listener for
// every HL7 v2 network of the plan and the FHIR ingest for its FHIR
// networks, and returns where the simulator sends each.
func startPatternsPipeline(ctx context.Context, t *testing.T, plan *simulator.Plan) (*Pipeline, map[string]string) {
	t.Helper()
	fhirNets := plan.FHIRNetworks()
	var hl7 []string
	for _, name := range plan.Networks() {
		if !slices.Contains(fhirNets, name) {
			hl7 = append(hl7, name)
		}
	}
	opts := testOptions(t, hl7)
	fhir := fhiringest.DefaultConfig()
	fhir.Addr = "127.0.0.1:0"
	for _, name := range fhirNets {
		fhir.Tokens[name] = []string{fhiringest.HashToken(patternsToken)}
	}
	opts.FHIR = &fhir
	// Late answers come up to 15 SLAs after their request (a referral's:
	// weeks). The linker forgets a chain Retention (default 24h) after its
	// deadline, and an answer to a forgotten chain is lost (see the
	// simulator's README, "late answers and the linker's retention"): the
	// test keeps chains for as long as the plan's answers can come.
	opts.Linker.Retention = 60 * 24 * time.Hour
	p := startForTest(ctx, t, opts)
	targets := p.MLLPAddrs()
	for _, name := range fhirNets {
		targets[name] = "http://" + p.FHIRAddr() + "/fhir/" + name + "/"
	}
	return p, targets
}

// waitPatternOutcomes polls the outcomes view until it holds want
// outcomes, then until it has not changed for a settle period (a later
// version or a second outcome would show within the linker's idle rule
// and a flush), and returns them.
func waitPatternOutcomes(ctx context.Context, t *testing.T, p *Pipeline, want int) []storedOutcome {
	t.Helper()
	conn, _ := p.ClickHouse()
	count := func() (n uint64) {
		if err := conn.QueryRow(ctx, "SELECT count(), sum(version) FROM (SELECT outcome_id, max(version) AS version FROM outcomes GROUP BY outcome_id)").Scan(&n, new(uint64)); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(2 * time.Minute)
	n := count()
	for n < uint64(want) && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		n = count()
	}
	settle := time.Now().Add(5 * time.Second)
	for time.Now().Before(settle) {
		if again := count(); again != n {
			settle, n = time.Now().Add(5*time.Second), again
		}
		time.Sleep(250 * time.Millisecond)
	}
	stored, err := readPatternOutcomes(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d outcomes stored for %d requests of the truth", len(stored), want)
	return stored
}

func readPatternOutcomes(ctx context.Context, conn driver.Conn) ([]storedOutcome, error) {
	rows, err := conn.Query(ctx, `SELECT network, request_kind, requester_org, responder_org, outcome, exception_code,
		patient_token, request_id, requested_at_ms, acknowledged_at_ms, tta_ms, ttf_ms, record_count FROM outcomes`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedOutcome
	for rows.Next() {
		var o storedOutcome
		if err := rows.Scan(&o.Network, &o.Kind, &o.Requester, &o.Responder, &o.Outcome, &o.ExceptionCode, &o.Token,
			&o.RequestID, &o.RequestedAtMs, &o.AcknowledgedAtMs, &o.TTAMs, &o.TTFMs, &o.RecordCount); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// checkPatternTruth matches each truth row to the stored outcome of the
// same network, request time (to the millisecond) and patient token, and
// compares them; outcomes left without a truth row are reported too.
// Disagreements are counted by pattern and field, a few of each printed.
func checkPatternTruth(t *testing.T, truth []simulator.TruthRow, stored []storedOutcome) {
	t.Helper()
	comparePatternTruth(t, truth, stored)
	checkPatternCoverage(t, truth)
}

// reporter is what comparePatternTruth needs of a test: a *testing.T, or
// a recorder in the test of the check itself.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// comparePatternTruth reports every disagreement and returns their count
// by pattern and field.
func comparePatternTruth(t reporter, truth []simulator.TruthRow, stored []storedOutcome) map[string]int {
	t.Helper()
	key := []byte("end-to-end test patient key") // testOptions' patient key
	type match struct {
		network string
		at      int64
		token   string
	}
	byMatch := map[match][]int{}
	for i, o := range stored {
		m := match{o.Network, o.RequestedAtMs, o.Token}
		byMatch[m] = append(byMatch[m], i)
	}
	bad := map[string]int{}
	report := func(what, format string, args ...any) {
		bad[what]++
		if bad[what] <= 3 {
			t.Errorf(format, args...)
		}
	}
	confusion := map[[2]string]int{}
	for _, r := range truth {
		id, authority, ok := patient.SplitCX(r.Patient)
		if !ok {
			report("patient", "%s: patient %q is no CX", r.ControlID, r.Patient)
			continue
		}
		m := match{r.Network, r.RequestedAt.UnixMilli(), patient.Token(key, authority, id)}
		i := slices.IndexFunc(byMatch[m], func(i int) bool { return !stored[i].matched })
		if i < 0 {
			report(r.Pattern+" no outcome", "truth %s %s %s (%s) at %s: no outcome", r.Network, r.ControlID, r.Pattern, r.Outcome,
				r.RequestedAt.Format(time.RFC3339Nano))
			confusion[[2]string{r.Outcome, "(none)"}]++
			continue
		}
		o := &stored[byMatch[m][i]]
		o.matched = true
		confusion[[2]string{r.Outcome, o.Outcome}]++
		for _, d := range patternDifferences(r, *o) {
			report(r.Pattern+" "+strings.Fields(d)[0], "%s %s (%s, truth %s): %s\n\tstored: %s", r.Network, r.ControlID, r.Pattern, r.Outcome, d, o)
		}
	}
	for _, o := range stored {
		if !o.matched {
			report("no truth", "outcome without a truth row: %s", o)
		}
	}
	logConfusion(t, confusion)
	if len(bad) > 0 {
		t.Errorf("disagreements in %d requests and %d outcomes, by pattern and field: %v", len(truth), len(stored), bad)
	}
	return bad
}

// patternDifferences lists how a stored outcome differs from its truth
// row in the fields this test holds the pipeline to.
func patternDifferences(r simulator.TruthRow, o storedOutcome) []string {
	var out []string
	diff := func(field string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			out = append(out, fmt.Sprintf("%s %q, truth %q", field, fmt.Sprint(got), fmt.Sprint(want)))
		}
	}
	diff("class", o.Outcome, r.Outcome)
	diff("kind", o.Kind, r.Kind)
	diff("requester", o.Requester, r.Requester)
	diff("responder", o.Responder, r.Responder)
	diff("exception", o.ExceptionCode, r.ExceptionCode)
	ms := func(p *uint64) string {
		if p == nil {
			return ""
		}
		return fmt.Sprint(*p)
	}
	tta, ttf := "", ""
	if r.Acknowledged() {
		tta = fmt.Sprint(r.AcknowledgedAt.Sub(r.RequestedAt).Milliseconds())
	}
	if r.Answered() {
		ttf = fmt.Sprint(r.LatencyMs)
	}
	diff("tta", ms(o.TTAMs), tta)
	diff("ttf", ms(o.TTFMs), ttf)
	diff("records", o.RecordCount, r.RecordCount)
	return out
}

// logConfusion prints the matrix of truth classes (rows) against stored
// classes (columns).
func logConfusion(t reporter, c map[[2]string]int) {
	t.Helper()
	var rows, cols []string
	for k := range c {
		if !slices.Contains(rows, k[0]) {
			rows = append(rows, k[0])
		}
		if !slices.Contains(cols, k[1]) {
			cols = append(cols, k[1])
		}
	}
	slices.Sort(rows)
	slices.Sort(cols)
	var b strings.Builder
	fmt.Fprintf(&b, "%-20s", "truth \\ stored")
	for _, col := range cols {
		fmt.Fprintf(&b, " %9.9s", col)
	}
	for _, row := range rows {
		fmt.Fprintf(&b, "\n%-20s", row)
		for _, col := range cols {
			fmt.Fprintf(&b, " %9d", c[[2]string{row, col}])
		}
	}
	t.Logf("classes, truth against stored:\n%s", b.String())
}

// checkPatternCoverage fails a run whose plan misses a pattern, a request
// kind, or a class the patterns can say.
func checkPatternCoverage(t *testing.T, truth []simulator.TruthRow) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range truth {
		seen["pattern "+r.Pattern]++
		seen["kind "+r.Kind]++
		seen["class "+r.Outcome]++
		if r.Acknowledged() && (!r.Answered() || r.AcknowledgedAt.Before(r.AnsweredAt)) {
			seen["interim"]++
		}
	}
	var want []string
	for _, p := range simulator.Patterns() {
		want = append(want, "pattern "+p)
	}
	for _, k := range []string{"patient_query", "document_query", "referral", "order", "record_request"} {
		want = append(want, "kind "+k)
	}
	for _, c := range simulator.Classes() {
		want = append(want, "class "+c)
	}
	for _, w := range append(want, "interim") {
		if seen[w] == 0 {
			t.Errorf("the plan has no request of %q", w)
		}
	}
	t.Logf("cases: %v", strings.ReplaceAll(fmt.Sprint(seen), "map", ""))
}

// recorder keeps what a check reports.
type recorder struct{ errors, logs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

// TestPatternCheckCatchesAlteredRows runs the end-to-end test's check
// against the outcomes a faithful pipeline would store for a plan (no
// disagreement) and against the same rows with one class swapped, one
// responder renamed, one ttf off by a second, one exception dropped and
// one outcome missing: each is reported under its pattern and field.
func TestPatternCheckCatchesAlteredRows(t *testing.T) {
	plan, err := simulator.Generate(simulator.Config{Requests: 400, Seed: 3, Start: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Span: 30 * 24 * time.Hour, Networks: simulator.PatternNetworks()})
	if err != nil {
		t.Fatal(err)
	}
	truth := plan.Requests()
	faithful := func() []storedOutcome {
		out := make([]storedOutcome, 0, len(truth))
		for _, r := range truth {
			out = append(out, faithfulOutcome(r))
		}
		return out
	}
	var rec recorder
	if bad := comparePatternTruth(&rec, truth, faithful()); len(bad) != 0 {
		t.Fatalf("faithful outcomes: %v %v", bad, rec.errors)
	}
	altered := faithful()
	find := func(from int, ok func(simulator.TruthRow) bool) int {
		for i := from; i < len(truth); i++ {
			if ok(truth[i]) {
				return i
			}
		}
		t.Fatal("no row to alter")
		return -1
	}
	a := find(0, func(r simulator.TruthRow) bool {
		return r.Pattern == simulator.PatternREF && r.Outcome == simulator.Fulfilled
	})
	altered[a].Outcome = simulator.RefusedUnjustified
	b := find(0, func(r simulator.TruthRow) bool { return r.Pattern == simulator.PatternTask && r.Responder != "" })
	altered[b].Responder = "SOMEONE_ELSE"
	c := find(0, func(r simulator.TruthRow) bool { return r.Pattern == simulator.PatternMessage && r.Answered() })
	*altered[c].TTFMs += 1000
	d := find(0, func(r simulator.TruthRow) bool { return r.Outcome == simulator.RefusedException })
	altered[d].ExceptionCode = ""
	e := find(0, func(r simulator.TruthRow) bool { return r.Pattern == simulator.PatternAudit })
	altered = slices.Delete(altered, e, e+1)
	rec = recorder{}
	got := comparePatternTruth(&rec, truth, altered)
	want := map[string]int{
		"ref-i12 class": 1, "fhir-task responder": 1, "fhir-message ttf": 1,
		truth[d].Pattern + " exception": 1, "fhir-audit no outcome": 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reported %v, want %v:\n%s", got, want, strings.Join(rec.errors, "\n"))
	}
}

// faithfulOutcome is the outcome a pipeline that agrees with the truth row
// would store.
func faithfulOutcome(r simulator.TruthRow) storedOutcome {
	key := []byte("end-to-end test patient key")
	id, authority, _ := patient.SplitCX(r.Patient)
	o := storedOutcome{
		Network: r.Network, Kind: r.Kind, Requester: r.Requester, Responder: r.Responder, Outcome: r.Outcome,
		ExceptionCode: r.ExceptionCode, Token: patient.Token(key, authority, id), RequestID: r.ControlID,
		RequestedAtMs: r.RequestedAt.UnixMilli(), RecordCount: uint32(r.RecordCount),
	}
	if r.Acknowledged() {
		tta := uint64(r.AcknowledgedAt.Sub(r.RequestedAt).Milliseconds())
		o.TTAMs, o.AcknowledgedAtMs = &tta, r.AcknowledgedAt.UnixMilli()
	}
	if r.Answered() {
		ttf := uint64(r.LatencyMs)
		o.TTFMs = &ttf
	}
	return o
}
