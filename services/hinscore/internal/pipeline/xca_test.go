package pipeline

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/atna/toevent"

	atnaingest "github.com/hinscore/hinscore/services/atna-ingest"
	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/bus/ingest"
)

// TestXCAEndToEndMatchesTruth sends the simulator's cross-community
// traffic (carequal-east: both gateways' ATNA audits over syslog-TLS to a
// certificate made here; ehx-central: both gateways' SOAP copies over HTTP
// to POST /fhir/ehx-central/soap), lost, duplicated and late records
// included, through the composed pipeline, and checks from the outcomes
// view, with the comparison of `hinscore verify` (truthcheck), that every
// transaction of the truth has exactly one outcome and that it says what
// the truth says: class, requester and responder (their home
// communities), purpose, exception or error code, time to fulfil (none for
// audit-only transactions), the gateways' sides seen.
func TestXCAEndToEndMatchesTruth(t *testing.T) {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	plan, err := simulator.GenerateXCA(simulator.XCAConfig{Journeys: 240, Seed: 22, Start: start, Span: xcaSpan, LateMax: xcaLateMax})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, targets := startXCAPipeline(ctx, t, plan)
	stats, err := plan.Send(ctx, targets)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Rejected != 0 {
		t.Fatalf("simulator: %s", stats)
	}
	t.Logf("simulator: %s", stats)
	waitXCAOutcomes(ctx, t, p, len(plan.Requests()))
	dir := t.TempDir()
	if err := plan.WriteTruth(dir); err != nil {
		t.Fatal(err)
	}
	checkTruthDir(ctx, t, p, dir)
	checkXCACoverage(t, plan.Requests())
}

// xcaSpan is how long the simulated journeys keep starting.
const xcaSpan = 30 * time.Minute

// xcaLateMax is how late (in event time) the simulator delivers its late records.
const xcaLateMax = 10 * time.Minute

// xcaToken is the SOAP network's bearer token in the test.
const xcaToken = "ehx-central test token"

// startXCAPipeline starts the pipeline with an ATNA listener over TLS for
// every audit network and the FHIR ingest (SOAP copies) for every SOAP
// network of the plan, and returns where the simulator sends each.
func startXCAPipeline(ctx context.Context, t *testing.T, plan *simulator.XCAPlan) (*Pipeline, map[string]simulator.XCATarget) {
	t.Helper()
	// The pipeline always runs the MLLP ingest: one network, sent nothing.
	opts := testOptions(t, []string{"mllp-idle"})
	// The simulated hours go by in about a second: a few milliseconds
	// between two gateways' connections are minutes of event time. The
	// lateness allowed covers the whole run, so that chains are decided by
	// their answers and by the idle rule once the feeds stop, never by one
	// connection running ahead of another.
	opts.Linker.Lateness = xcaSpan + xcaLateMax
	cert, err := ingest.NewSelfSigned(t.TempDir(), time.Now(), time.Hour, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	atna := atnaingest.DefaultConfig()
	atna.Listeners = nil
	atna.TLSCert, atna.TLSKey = cert.CertFile, cert.KeyFile
	fhir := fhiringest.DefaultConfig()
	fhir.Addr = "127.0.0.1:0"
	for _, name := range plan.Networks() {
		n, _ := plan.Network(name)
		switch n.Feed {
		case simulator.FeedATNA:
			atna.Listeners = append(atna.Listeners, ingest.Listener{Network: name, Addr: "127.0.0.1:0"})
		case simulator.FeedSOAP:
			fhir.Tokens[name] = []string{fhiringest.HashToken(xcaToken)}
		}
	}
	opts.ATNA, opts.FHIR = &atna, &fhir
	p := startForTest(ctx, t, opts)
	targets := map[string]simulator.XCATarget{}
	for _, name := range plan.Networks() {
		if addrs := p.ATNAAddrs()[name]; len(addrs) > 0 {
			targets[name] = simulator.XCATarget{Syslog: addrs[0], TLS: &tls.Config{RootCAs: cert.Pool, MinVersion: tls.VersionTLS12}}
		} else {
			targets[name] = simulator.XCATarget{SOAP: "http://" + p.FHIRAddr() + "/fhir/" + name + "/soap", Token: xcaToken}
		}
	}
	return p, targets
}

// waitXCAOutcomes polls the outcomes view until it holds want outcomes,
// then waits until the pipeline has settled (nothing more will arrive).
func waitXCAOutcomes(ctx context.Context, t *testing.T, p *Pipeline, want int) {
	t.Helper()
	conn, _ := p.ClickHouse()
	deadline := time.Now().Add(90 * time.Second)
	var n uint64
	for {
		if err := conn.QueryRow(ctx, "SELECT count() FROM outcomes").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n >= uint64(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	// What a straggling record could still change (a second outcome, a
	// later version) is stored before the pipeline settles.
	waitSettled(ctx, t, p)
}

// checkXCACoverage fails a run whose plan misses the cases the test is
// for: both feeds, both sides and one side seen, late and duplicated
// records, untimed and timed answers.
func checkXCACoverage(t *testing.T, truth []simulator.XCATruthRow) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range truth {
		seen["feed "+r.Feed]++
		seen["sides "+r.Sides]++
		if r.LateSides != "" {
			seen["late"]++
		}
		if r.Duplicates > 0 {
			seen["duplicated"]++
		}
		seen[fmt.Sprintf("timed %v", r.Timed)]++
		seen["class "+r.Outcome]++
		if r.Deferred && r.LatencyMs > toevent.Window.Milliseconds() {
			// answered more than a window after the request
			seen["deferred "+r.Feed+" over a window"]++
		}
	}
	for _, want := range []string{"feed atna", "feed soap", "sides both", "sides initiating", "sides responding", "late", "duplicated",
		"deferred atna over a window", "deferred soap over a window",
		"timed true", "timed false", "class fulfilled", "class refused_exception", "class refused_unjustified", "class unanswered"} {
		if seen[want] == 0 {
			t.Errorf("the plan has no transaction of %q: %v", want, seen)
		}
	}
	t.Logf("cases: %v", strings.ReplaceAll(fmt.Sprint(seen), "map", ""))
}
