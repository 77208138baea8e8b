package api

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/api/casepacket"
	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/lib/domain/partition"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/linker"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
	"github.com/hinscore/hinscore/services/scorecard"
)

// The test tokens and their holders. operator-ns is bound to northstar.
var testTokens = map[string]string{
	"analyst":      "tok-analyst-0123456789",
	"investigator": "tok-investigator-0123456789",
	"operator-ns":  "tok-operator-ns-0123456789",
	"operator-bv":  "tok-operator-bv-0123456789",
}

func testTokenConfig() string {
	return "ann=analyst:" + HashToken(testTokens["analyst"]) +
		",ivy=investigator:" + HashToken(testTokens["investigator"]) +
		",ops-ns=operator:northstar:" + HashToken(testTokens["operator-ns"]) +
		",ops-bv=operator:bayview:" + HashToken(testTokens["operator-bv"])
}

var testPatientKey = []byte("api test patient key 0123456789")

// fixture is the simulator's traffic run through the real services
// (mllp-ingest, linker, chwriter) into a database of its own, scorecards
// built from it, and the API serving it.
type fixture struct {
	plan   *simulator.Plan
	conn   driver.Conn
	js     jetstream.JetStream
	srv    *Server
	base   string
	audit  string
	byCtrl map[string]simulator.TruthRow // network/control id -> truth
}

func newFixture(t *testing.T, requests int) *fixture {
	t.Helper()
	// Two whole days that ended at midnight: every request lies in the past,
	// so the linker's idle watermark can pass every deadline.
	start := time.Now().UTC().Truncate(24 * time.Hour).Add(-48 * time.Hour)
	plan, err := simulator.Generate(simulator.Config{Requests: requests, Seed: 9, Start: start, Span: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := startPipeline(t, ctx, plan.Networks(), int(partition.Default))
	stats, err := plan.Send(ctx, p.ingest.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Failed != 0 || stats.Unexpected != 0 {
		t.Fatalf("simulator: %s", stats)
	}
	waitOutcomes(t, ctx, p.conn, plan)
	waitCount(t, ctx, p.conn, "SELECT count() FROM events", uint64(plan.ValidMessages()))
	p.stop()
	storeScorecards(t, ctx, p.conn)

	cfg := testConfig(t)
	cfg.RateLimit = RateLimit{PerSecond: 10000, Burst: 100000}
	srv := startServer(t, ctx, cfg, p.conn, p.js, p.log, service.SystemClock{})
	f := &fixture{plan: plan, conn: p.conn, js: p.js, srv: srv, base: "http://" + srv.Addr(), audit: cfg.AuditLog, byCtrl: map[string]simulator.TruthRow{}}
	for _, r := range plan.Requests() {
		f.byCtrl[r.Network+"/"+r.ControlID] = r
	}
	return f
}

// pipeline is the real path of HL7 v2 into ClickHouse: mllp-ingest (one
// listener per network), linker and chwriter over an embedded NATS with
// EVENTS in the given number of partitions, into a database of the test's
// own.
type pipeline struct {
	conn   driver.Conn
	js     jetstream.JetStream
	ingest *mllpingest.Server
	log    zerolog.Logger
	// stop shuts the services down (the database and bus stay up); it is
	// idempotent and also runs when the test ends.
	stop func()
}

func startPipeline(t *testing.T, ctx context.Context, networks []string, partitions int) *pipeline {
	t.Helper()
	_, d := chtest.EmptyDatabase(t)
	conn, err := chstore.OpenDSN(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	js := bustest.Streams(t)

	env := service.MapEnv(map[string]string{"HINSCORE_PARTITIONS": strconv.Itoa(partitions)})
	ingestCfg, err := mllpingest.ConfigFromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	ingestCfg.PatientKey, ingestCfg.PatientKeyID = testPatientKey, "apitest"
	ingestCfg.Listeners = nil
	for _, n := range networks {
		ingestCfg.Listeners = append(ingestCfg.Listeners, mllpingest.Listener{Network: n, Addr: "127.0.0.1:0"})
	}
	linkCfg, err := linker.ConfigFromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	// The idle rule moves a silent network's watermark to the wall clock,
	// far past this traffic, which is in the past: a longer stall of the
	// feed on a loaded machine would decide waiting requests unanswered.
	linkCfg.Idle = 5 * time.Second
	writerCfg, err := chwriter.ConfigFromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	deps := service.Deps{JetStream: js, ClickHouse: conn, Log: log, Clock: service.SystemClock{}}
	writer, err := chwriter.New(writerCfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	link, err := linker.New(linkCfg, deps.JetStream, deps.Log, deps.Metrics, deps.Clock)
	if err != nil {
		t.Fatal(err)
	}
	ingest, err := mllpingest.New(ingestCfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	comps := []service.Component{writer, link, ingest}
	for _, c := range comps {
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		if err := service.ShutdownAll(context.Background(), comps...); err != nil {
			t.Errorf("pipeline shutdown: %v", err)
		}
	}
	t.Cleanup(stop)
	return &pipeline{conn: conn, js: js, ingest: ingest, log: log, stop: stop}
}

// storeScorecards builds the daily and weekly scorecards as the scorecard
// service computes them and records them in the history table the API reads.
func storeScorecards(t *testing.T, ctx context.Context, conn driver.Conn) {
	t.Helper()
	for _, g := range []string{"day", "week"} {
		cards, err := scorecard.Build(ctx, conn, scorecard.Query{Granularity: g}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := chstore.InsertScorecards(ctx, conn, g, cards); err != nil {
			t.Fatal(err)
		}
	}
}

// testConfig is the API's configuration with the test tokens, on a free
// port, with an audit log of the test's own.
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	if err := ParseTokens(testTokenConfig(), cfg.Tokens); err != nil {
		t.Fatal(err)
	}
	cfg.AuditLog = filepath.Join(t.TempDir(), "audit.jsonl")
	cfg.Case.Key = casepacket.NewPrivateKey(ed25519.NewKeyFromSeed(testCaseSeed))
	// Every test client comes from 127.0.0.1 and many try wrong tokens on
	// purpose: the failure limit has its own test (TestUnknownTokensLimited).
	cfg.AuthFailures.Burst = 100000
	return cfg
}

// startServer starts the API, shut down when the test ends.
func startServer(t *testing.T, ctx context.Context, cfg Config, conn driver.Conn, js jetstream.JetStream, log zerolog.Logger, clock service.Clock) *Server {
	t.Helper()
	srv, err := New(cfg, service.Deps{ClickHouse: conn, JetStream: js, Log: log, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("api shutdown: %v", err)
		}
	})
	return srv
}

func waitCount(t *testing.T, ctx context.Context, conn driver.Conn, q string, want uint64) {
	t.Helper()
	if got, err := countReaches(ctx, conn, q, want); err != nil {
		t.Fatalf("%s: %d, want %d: %v", q, got, want, err)
	}
}

// countReaches polls the count query q until it reaches want or ctx ends.
func countReaches(ctx context.Context, conn driver.Conn, q string, want uint64) (uint64, error) {
	var got uint64
	for {
		if err := conn.QueryRow(ctx, q).Scan(&got); err != nil {
			return got, err
		}
		if got >= want {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitOutcomes waits for one outcome per simulated request and, when they
// do not all come, names the requests that have none.
func waitOutcomes(t *testing.T, ctx context.Context, conn driver.Conn, plan *simulator.Plan) {
	t.Helper()
	want := uint64(len(plan.Requests()))
	got, err := countReaches(ctx, conn, "SELECT count() FROM outcomes", want)
	if err == nil {
		return
	}
	have := map[string]bool{}
	rows, qerr := conn.Query(context.Background(), "SELECT network, request_id FROM outcomes")
	if qerr != nil {
		t.Fatal(qerr)
	}
	for rows.Next() {
		var n, id string
		if err := rows.Scan(&n, &id); err != nil {
			t.Fatal(err)
		}
		have[n+"/"+id] = true
	}
	rows.Close()
	for _, r := range plan.Requests() {
		if !have[r.Network+"/"+r.ControlID] {
			t.Errorf("no outcome for %s/%s: truth %s, requested %s, out of order %v", r.Network, r.ControlID, r.Outcome, r.RequestedAt.Format(time.RFC3339Nano), r.OutOfOrder)
		}
	}
	t.Fatalf("outcomes: %d, want %d: %v", got, want, err)
}

// patientToken is the token the ingest made for a simulator patient
// ("<mrn>^^^<authority>").
func patientToken(p string) string {
	mrn, authority, _ := strings.Cut(p, "^^^")
	return patient.Token(testPatientKey, authority, mrn)
}

// get calls the API as who ("" = no token) and returns status and body.
func (f *fixture) get(t *testing.T, who, path string, q url.Values) (int, []byte) {
	t.Helper()
	token := ""
	if who != "" {
		token = testTokens[who]
	}
	resp, body := fetch(t, f.base, token, path, q)
	return resp.StatusCode, body
}

// noRedirect shows a redirect as it is answered (the views send a caller
// without a token to the login page with 303).
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// fetch GETs base+path with the bearer token ("" = none) and returns the
// response (body closed) and its body.
func fetch(t *testing.T, base, token, path string, q url.Values) (*http.Response, []byte) {
	t.Helper()
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// getJSON calls the API and decodes a 200 answer into v.
func (f *fixture) getJSON(t *testing.T, who, path string, q url.Values, v any) {
	t.Helper()
	getJSONAt(t, f.base, who, path, q, v)
}

// getJSONAt calls the API at base as who ("" = no token) and decodes a
// 200 answer into v.
func getJSONAt(t *testing.T, base, who, path string, q url.Values, v any) {
	t.Helper()
	resp, body := fetch(t, base, testTokens[who], path, q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s?%s as %s: %d %s", path, q.Encode(), who, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

// chainOf finds a request's chain id through the search by control id.
func (f *fixture) chainOf(t *testing.T, r simulator.TruthRow) string {
	t.Helper()
	var res SearchResult
	f.getJSON(t, "analyst", "/v1/chains", url.Values{"network": {r.Network}, "control_id": {r.ControlID}}, &res)
	if len(res.Chains) != 1 {
		t.Fatalf("search control_id %s in %s: %d chains, want 1", r.ControlID, r.Network, len(res.Chains))
	}
	return res.Chains[0].ID
}
