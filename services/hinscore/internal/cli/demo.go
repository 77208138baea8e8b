package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/rs/zerolog"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	atnaingest "github.com/hinscore/hinscore/services/atna-ingest"
	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/hinscore/internal/pipeline"
	"github.com/hinscore/hinscore/services/hinscore/internal/truthcheck"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
	"github.com/hinscore/hinscore/services/scorecard"
)

// demoDatabase is where the demo writes when it starts its own ClickHouse;
// it is dropped at the start of every demo so the figures are this run's.
const demoDatabase = "hinscore_demo"

// demoRawKeys seal the demo's messages in EVENTS (public, like the demo's
// patient key: its data is simulated).
const demoRawKeys = "demo:" + "68696e73636f72652064656d6f207261772d6b65792c207075626c6963212121"

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	requests := fs.Int("requests", 20000, "simulated exchanges of every HL7 v2 and FHIR pattern across the four networks")
	span := fs.String("span", "6mo", "history the exchanges are spread over, ending a week ago: 36h, 30d, 6mo")
	journeys := fs.Int("journeys", 400, "simulated cross-community patient journeys (XCPD/XCA) across the two IHE networks")
	seed := fs.Int64("seed", 1, "simulator seed (same seed, same traffic)")
	out := fs.String("out", "out", "directory for scorecards and the simulator's ground truth")
	var f upFlags
	fs.StringVar(&f.clickhouse, "clickhouse", "", "ClickHouse DSN (default HINSCORE_CLICKHOUSE_DSN, else a local server and database "+demoDatabase+")")
	fs.StringVar(&f.admin, "admin", "127.0.0.1:0", "address of /metrics, /healthz, /readyz")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up when the pipeline has not stored everything by then")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *requests <= 0 {
		return fmt.Errorf("%w: --requests must be positive", errUsage)
	}
	if *journeys <= 0 {
		return fmt.Errorf("%w: --journeys must be positive", errUsage)
	}
	log := demoLogger(stderr)
	began := time.Now()

	history, err := simulator.ParseSpan(*span)
	if err != nil {
		return fmt.Errorf("%w: --span: %v", errUsage, err)
	}
	run, err := newDemoRun(*requests, *journeys, *seed, history, time.Now())
	if err != nil {
		return err
	}
	dsn, localServer, err := demoClickHouse(ctx, f.clickhouse)
	if err != nil {
		return err
	}
	f.clickhouse = dsn
	data, err := os.MkdirTemp("", "hinscore-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(data)
	f.data = data
	opts, err := demoOptions(ctx, f, run, log)
	if err != nil {
		return err
	}
	p, err := pipeline.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := p.Shutdown(sctx); err != nil {
			log.Error().Err(err).Msg("shutdown")
		}
	}()
	fmt.Fprintf(stdout, "hinscore demo: %d requests and %d cross-community journeys, seed %d, %d networks; NATS %s, ClickHouse %s\n",
		*requests, *journeys, *seed, len(run.hl7.Networks())+len(run.xca.Networks()), p.NATSURL(), dsn)

	if err := demoSend(ctx, p, run, *timeout, stdout, began); err != nil {
		return err
	}
	cards, err := demoScorecards(ctx, p, run, *out)
	if err != nil {
		return err
	}
	truthDir := filepath.Join(*out, "truth")
	if err := run.writeTruth(truthDir); err != nil {
		return err
	}
	return demoReport(ctx, p, run, cards, demoPlaces{out: *out, truth: truthDir, dsn: dsn, local: localServer}, stdout, stderr, began)
}

// demoPlaces are where the demo wrote, and the ClickHouse it used.
type demoPlaces struct {
	out, truth, dsn string
	local           bool
}

// demoReport prints the scorecards, the check of every stored outcome
// against the simulator's truth (the one of `hinscore verify`) and where
// everything is; it fails on any difference from the truth.
func demoReport(ctx context.Context, p *pipeline.Pipeline, run *demoRun, cards []*hinscorev1.Scorecard, at demoPlaces,
	stdout, stderr io.Writer, began time.Time) error {
	if err := scorecard.PrintTable(stdout, cards); err != nil {
		return err
	}
	shot := screenshot(ctx, at.out, cards, stderr)
	truth, err := truthcheck.ReadDir(at.truth)
	if err != nil {
		return err
	}
	conn, _ := p.ClickHouse()
	stored, err := truthcheck.ReadOutcomes(ctx, conn)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nEvery outcome against the simulator's truth (hinscore verify --clickhouse %s --truth %s):\n", at.dsn, at.truth)
	checked := printVerification(stdout, truthcheck.Compare(truth, stored, run.patientKey), false)
	fmt.Fprintf(stdout, "\nScorecards: %s/<period>/<network>.{json,csv,html}, offenders: %s/<period>/offenders.{csv,html}   ground truth: %s\n", at.out, at.out, at.truth)
	if shot != "" {
		fmt.Fprintf(stdout, "Screenshot of a scorecard page: %s\n", shot)
	}
	fmt.Fprintf(stdout, "Analysts: clickhouse-client --port %s --database %s --query 'SELECT network, outcome, count() FROM outcomes GROUP BY network, outcome'\n",
		portOf(at.dsn), databaseOf(at.dsn))
	if at.local {
		fmt.Fprintln(stdout, "The local ClickHouse keeps running for your queries; scripts/clickhouse.sh stop ends it.")
	}
	fmt.Fprintf(stdout, "Finished in %s.\n", time.Since(began).Round(time.Millisecond))
	if checked != nil {
		return fmt.Errorf("demo: %w", checked)
	}
	return nil
}

// demoRun is what one demo sends, from one seed: the HL7 v2 networks'
// traffic over MLLP, and the cross-community networks' (IHE XCPD/XCA):
// carequal-east's gateways' ATNA audits over syslog-TLS to a certificate
// made for the run, ehx-central's SOAP copies over HTTP.
type demoRun struct {
	hl7  *simulator.Plan
	xca  *simulator.XCAPlan
	cert ingest.SelfSigned
	// patientKey is the key of the run's patient tokens.
	patientKey []byte
}

// newDemoRun plans the demo's traffic: every HL7 v2 and FHIR pattern the
// linker links (simulator.PatternNetworks: responders that improve, get
// worse or stay as they are) over history, ending demoSettled before
// today, and the cross-community journeys.
func newDemoRun(requests, journeys int, seed int64, history simulator.Span, now time.Time) (*demoRun, error) {
	start := history.Before(now.UTC().Truncate(24 * time.Hour).Add(-demoSettled))
	hl7, err := simulator.Generate(simulator.Config{Requests: requests, Seed: seed, Start: start, Span: history.From(start),
		Networks: simulator.PatternNetworks(), FHIRToken: demoFHIRToken})
	if err != nil {
		return nil, err
	}
	xca, err := simulator.GenerateXCA(simulator.XCAConfig{Journeys: journeys, Seed: seed, Span: demoXCASpan, LateMax: demoXCALateMax})
	if err != nil {
		return nil, err
	}
	return &demoRun{hl7: hl7, xca: xca}, nil
}

// outcomes is how many outcomes the run must store: one per request or transaction.
func (r *demoRun) outcomes() int { return len(r.hl7.Requests()) + len(r.xca.Requests()) }

// writeTruth writes both plans' truth files (names of their own) into dir.
func (r *demoRun) writeTruth(dir string) error {
	if err := r.hl7.WriteTruth(dir); err != nil {
		return err
	}
	return r.xca.WriteTruth(dir)
}

// demoXCASpan is how long the demo's cross-community journeys keep
// starting, and demoXCALateMax how late (event time) the simulator
// delivers its late records.
const (
	demoXCASpan    = 30 * time.Minute
	demoXCALateMax = 10 * time.Minute
)

// demoSOAPToken and demoFHIRToken are the demo's bearer tokens of the SOAP
// and FHIR networks (public: the demo's data is simulated).
const (
	demoSOAPToken = "hinscore-demo-soap-copies"
	demoFHIRToken = "hinscore-demo-fhir"
)

// demoSettled is how long before today the demo's history ends: longer
// than any SLA of its kinds (72 h), so that every request is decided
// (answered, or unanswered past its deadline) when the demo checks it; a
// request still within its SLA is neither, and the truth, which knows it
// was never answered, would call it unanswered.
const demoSettled = 7 * 24 * time.Hour

// demoRetention is how long the demo's linker remembers a request after
// its deadline. The simulator's late answers come up to 15 SLAs after
// their request (a referral's: weeks), and the linker loses an answer to a
// chain it has forgotten (its outcome id's stored version hides it; issue
// 24's open point): the demo remembers its requests as long as their
// answers can come.
const demoRetention = 60 * 24 * time.Hour

// hl7Targets are where each HL7 v2 network's MLLP frames and each FHIR
// network's POSTs go.
func (r *demoRun) hl7Targets(p *pipeline.Pipeline) map[string]string {
	targets := p.MLLPAddrs()
	for _, name := range r.hl7.FHIRNetworks() {
		targets[name] = "http://" + p.FHIRAddr() + "/fhir/" + name + "/"
	}
	return targets
}

// xcaTargets are where each cross-community network's gateways send.
func (r *demoRun) xcaTargets(p *pipeline.Pipeline) map[string]simulator.XCATarget {
	targets := map[string]simulator.XCATarget{}
	for _, name := range r.xca.Networks() {
		if addrs := p.ATNAAddrs()[name]; len(addrs) > 0 {
			targets[name] = simulator.XCATarget{Syslog: addrs[0], TLS: &tls.Config{RootCAs: r.cert.Pool, MinVersion: tls.VersionTLS12}}
			continue
		}
		targets[name] = simulator.XCATarget{SOAP: "http://" + p.FHIRAddr() + "/fhir/" + name + "/soap", Token: demoSOAPToken}
	}
	return targets
}

// demoSend sends the HL7 v2 traffic over MLLP, then the cross-community
// traffic, and waits, at most timeout, until ClickHouse holds an outcome
// of every request and transaction (and at least the HL7 v2 events).
func demoSend(ctx context.Context, p *pipeline.Pipeline, run *demoRun, timeout time.Duration, stdout io.Writer, began time.Time) error {
	sendStart := time.Now()
	stats, err := run.hl7.Send(ctx, run.hl7Targets(p))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sent %d HL7 v2 messages over MLLP and FHIR resources over HTTP in %s (%s)\n", stats.Sent, time.Since(sendStart).Round(time.Millisecond), stats)
	sendStart = time.Now()
	xstats, err := run.xca.Send(ctx, run.xcaTargets(p))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sent %d audit records over syslog-TLS and SOAP copies over HTTP in %s (%s)\n",
		xstats.Sent, time.Since(sendStart).Round(time.Millisecond), xstats)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := pipeline.Counts{Events: uint64(run.hl7.ValidMessages()), Outcomes: uint64(run.outcomes())}
	got, err := p.WaitStored(wctx, want)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stored %d events and %d outcomes in ClickHouse, %s after the start\n\n",
		got.Events, got.Outcomes, time.Since(began).Round(time.Millisecond))
	return nil
}

// demoScorecards loads the simulated organisations of both plans (so that
// scorecards name each responder's developer, and a gateway's home
// community its organisation), then builds the day cards and writes them
// under out.
func demoScorecards(ctx context.Context, p *pipeline.Pipeline, run *demoRun, out string) ([]*hinscorev1.Scorecard, error) {
	conn, _ := p.ClickHouse()
	for _, directory := range []func() ([]byte, error){run.hl7.DirectoryCSV, run.xca.DirectoryCSV} {
		csv, err := directory()
		if err != nil {
			return nil, err
		}
		if _, err := chstore.LoadOrganizations(ctx, conn, bytes.NewReader(csv), time.Now().UTC()); err != nil {
			return nil, err
		}
	}
	cards, err := scorecard.Build(ctx, conn, scorecard.Query{Granularity: "day"}, time.Now().UTC())
	if err != nil {
		return nil, err
	}
	if err := scorecard.WriteFiles(out, cards); err != nil {
		return nil, err
	}
	return cards, nil
}

// demoClickHouse returns the demo's DSN: the flag's, else
// HINSCORE_CLICKHOUSE_DSN, else the local server's (started when needed)
// with the database demoDatabase, emptied first; local says which.
func demoClickHouse(ctx context.Context, flagValue string) (dsn string, local bool, err error) {
	if dsn = flagValue; dsn == "" {
		dsn, _ = service.NewEnv().Lookup(chstore.EnvDSN)
	}
	if dsn != "" {
		return dsn, false, nil
	}
	server, err := localClickHouse(ctx)
	if err != nil {
		return "", false, err
	}
	d, err := chstore.ParseDSN(server)
	if err != nil {
		return "", false, err
	}
	d.Database = demoDatabase
	if err := dropDatabase(ctx, d); err != nil {
		return "", false, err
	}
	return d.String(), true, nil
}

// demoOptions are `hinscore up`'s options for the plans' networks: an MLLP
// listener per HL7 v2 network, an ATNA listener over TLS (a certificate
// made in the demo's directory) per audit network, the FHIR ingest for the
// SOAP networks' copies; with the demo's own keys unless some are
// configured.
func demoOptions(ctx context.Context, f upFlags, run *demoRun, log zerolog.Logger) (pipeline.Options, error) {
	// The demo is development by nature: its own keys, plain TCP on
	// loopback, simulated networks.
	opts, err := pipelineOptions(ctx, f, service.Development, log)
	if err != nil {
		return pipeline.Options{}, err
	}
	// A short idleness: when the simulated feeds stop, the requests left
	// without an answer are declared unanswered a few seconds later.
	opts.Linker.Idle = 3 * time.Second
	// The simulated hours go by in about a second: a few milliseconds
	// between two gateways' connections are minutes of event time. The
	// lateness allowed covers the cross-community run, so that its chains
	// are decided by their answers and by the idle rule once the feeds
	// stop, never by one connection running ahead of another (as in the
	// pipeline's cross-community end-to-end test).
	opts.Linker.Lateness = demoXCASpan + demoXCALateMax
	// Set once for every component (pipeline.Shared).
	if opts.Shared.PatientTokens.IsDev() {
		// Simulated patients: a key of the demo's own, named so in every token.
		opts.Shared.PatientKey, opts.Shared.PatientKeyID = []byte("hinscore demo patient key"), "demo"
	}
	run.patientKey = opts.Shared.PatientKey
	if opts.Shared.RawKeys.IsDev() {
		// The messages' bytes in EVENTS: sealed with a key of the demo's
		// own, which the ingests and the api share, as the patient key.
		opts.Shared.RawKeys = seal.MustParseRawKeys(demoRawKeys)
	}
	opts.Linker.Retention = demoRetention
	opts.Ingest.Listeners = nil
	fhirNets := run.hl7.FHIRNetworks()
	for _, n := range run.hl7.Networks() {
		if !slices.Contains(fhirNets, n) {
			opts.Ingest.Listeners = append(opts.Ingest.Listeners, mllpingest.Listener{Network: n, Addr: "127.0.0.1:0"})
		}
	}
	if run.cert, err = ingest.NewSelfSigned(f.data, time.Now(), 24*time.Hour, "127.0.0.1"); err != nil {
		return pipeline.Options{}, fmt.Errorf("demo: %w", err)
	}
	atna, fhir := atnaingest.DefaultConfig(), fhiringest.DefaultConfig()
	atna.Listeners, atna.TLSCert, atna.TLSKey = nil, run.cert.CertFile, run.cert.KeyFile
	fhir.Addr = "127.0.0.1:0"
	for _, name := range run.xca.Networks() {
		switch n, _ := run.xca.Network(name); n.Feed {
		case simulator.FeedATNA:
			atna.Listeners = append(atna.Listeners, ingest.Listener{Network: name, Addr: "127.0.0.1:0"})
		case simulator.FeedSOAP:
			fhir.Tokens[name] = []string{fhiringest.HashToken(demoSOAPToken)}
		}
	}
	for _, name := range fhirNets {
		fhir.Tokens[name] = []string{fhiringest.HashToken(demoFHIRToken)}
	}
	opts.ATNA, opts.FHIR = &atna, &fhir
	return opts, nil
}

func demoLogger(stderr io.Writer) zerolog.Logger {
	log := service.NewLogger("hinscore", stderr)
	if os.Getenv("HINSCORE_LOG_LEVEL") == "" {
		log = log.Level(zerolog.WarnLevel)
	}
	return log
}

// dropDatabase empties the demo's own database before a run.
func dropDatabase(ctx context.Context, d chstore.DSN) error {
	conn, err := chstore.Connect(ctx, d, "default")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer conn.Close()
	// d.Database was validated by ParseDSN ([A-Za-z0-9_]+) and is ours.
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d.Database); err != nil {
		return fmt.Errorf("demo: drop %s: %w", d.Database, err)
	}
	return nil
}

func portOf(dsn string) string {
	d, err := chstore.ParseDSN(dsn)
	if err != nil {
		return "?"
	}
	return fmt.Sprint(d.Port)
}

func databaseOf(dsn string) string {
	d, err := chstore.ParseDSN(dsn)
	if err != nil {
		return strings.TrimPrefix(dsn, "clickhouse://")
	}
	return d.Database
}

// screenshot renders the first network's scorecard page to a PNG with
// headless Chromium (HINSCORE_CHROMIUM, else chromium on the PATH; make demo
// installs it). Without a browser the demo goes on and says so.
func screenshot(ctx context.Context, out string, cards []*hinscorev1.Scorecard, stderr io.Writer) string {
	if len(cards) == 0 {
		return ""
	}
	c := cards[0]
	page := filepath.Join(out, c.GetPeriod(), c.GetNetwork()+".html")
	png := filepath.Join(out, "scorecard.png")
	msgs, err := scorecard.Screenshot(ctx, os.Getenv("HINSCORE_CHROMIUM"), page, png)
	if err != nil {
		fmt.Fprintf(stderr, "demo: no screenshot of %s: %v\n", page, err)
		return ""
	}
	for _, m := range msgs {
		fmt.Fprintf(stderr, "demo: %s console: %s\n", page, m)
	}
	return png
}
