package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/rs/zerolog"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/hinscore/internal/pipeline"
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
	requests := fs.Int("requests", 20000, "simulated requests across the three networks")
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
	log := demoLogger(stderr)
	began := time.Now()

	plan, err := simulator.Generate(simulator.Config{Requests: *requests, Seed: *seed})
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
	opts, err := demoOptions(ctx, f, plan, log)
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
	fmt.Fprintf(stdout, "hinscore demo: %d requests, seed %d, %d networks; NATS %s, ClickHouse %s\n",
		*requests, *seed, len(plan.Networks()), p.NATSURL(), dsn)

	if err := demoSend(ctx, p, plan, *timeout, stdout, began); err != nil {
		return err
	}

	cards, err := demoScorecards(ctx, p, plan, *out)
	if err != nil {
		return err
	}
	truthDir := filepath.Join(*out, "truth")
	if err := plan.WriteTruth(truthDir); err != nil {
		return err
	}
	if err := scorecard.PrintTable(stdout, cards); err != nil {
		return err
	}
	shot := screenshot(ctx, *out, cards, stderr)
	measured, err := p.ClassCounts(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	ok := printTruthCheck(stdout, plan.Truth(), measured)
	fmt.Fprintf(stdout, "\nScorecards: %s/<period>/<network>.{json,csv,html}, offenders: %s/<period>/offenders.{csv,html}   ground truth: %s\n", *out, *out, truthDir)
	if shot != "" {
		fmt.Fprintf(stdout, "Screenshot of a scorecard page: %s\n", shot)
	}
	fmt.Fprintf(stdout, "Analysts: clickhouse-client --port %s --database %s --query 'SELECT network, outcome, count() FROM outcomes GROUP BY network, outcome'\n",
		portOf(dsn), databaseOf(dsn))
	if localServer {
		fmt.Fprintln(stdout, "The local ClickHouse keeps running for your queries; scripts/clickhouse.sh stop ends it.")
	}
	fmt.Fprintf(stdout, "Finished in %s.\n", time.Since(began).Round(time.Millisecond))
	if !ok {
		return fmt.Errorf("demo: a measured rate is more than %.0f points from the simulator's truth", truthTolerancePoints)
	}
	return nil
}

// demoSend sends the plan's traffic over MLLP and waits, at most timeout,
// until ClickHouse holds every event and outcome of it.
func demoSend(ctx context.Context, p *pipeline.Pipeline, plan *simulator.Plan, timeout time.Duration, stdout io.Writer, began time.Time) error {
	sendStart := time.Now()
	stats, err := plan.Send(ctx, p.MLLPAddrs())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sent %d messages over MLLP in %s (%s)\n", stats.Sent, time.Since(sendStart).Round(time.Millisecond), stats)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := pipeline.Counts{Events: uint64(plan.ValidMessages()), Outcomes: uint64(len(plan.Requests()))}
	got, err := p.WaitStored(wctx, want)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stored %d events and %d outcomes in ClickHouse, %s after the start\n\n",
		got.Events, got.Outcomes, time.Since(began).Round(time.Millisecond))
	return nil
}

// demoScorecards loads the simulated organisations (so that scorecards
// name each responder's developer), then builds the day cards and writes
// them under out.
func demoScorecards(ctx context.Context, p *pipeline.Pipeline, plan *simulator.Plan, out string) ([]*hinscorev1.Scorecard, error) {
	conn, _ := p.ClickHouse()
	directory, err := plan.DirectoryCSV()
	if err != nil {
		return nil, err
	}
	if _, err := chstore.LoadOrganizations(ctx, conn, bytes.NewReader(directory), time.Now().UTC()); err != nil {
		return nil, err
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

// demoOptions are `hinscore up`'s options for the plan's networks, with
// the demo's own keys unless some are configured.
func demoOptions(ctx context.Context, f upFlags, plan *simulator.Plan, log zerolog.Logger) (pipeline.Options, error) {
	opts, err := pipelineOptions(ctx, f, log)
	if err != nil {
		return pipeline.Options{}, err
	}
	// A short idleness: when the simulated feeds stop, the requests left
	// without an answer are declared unanswered a few seconds later.
	opts.Linker.Idle = 3 * time.Second
	// Set once for every component (pipeline.Shared).
	if opts.Shared.PatientTokens.IsDev() {
		// Simulated patients: a key of the demo's own, named so in every token.
		opts.Shared.PatientKey, opts.Shared.PatientKeyID = []byte("hinscore demo patient key"), "demo"
	}
	if opts.Shared.RawKeys.IsDev() {
		// The messages' bytes in EVENTS: sealed with a key of the demo's
		// own, which the ingests and the api share, as the patient key.
		opts.Shared.RawKeys = seal.MustParseRawKeys(demoRawKeys)
	}
	opts.Ingest.Listeners = nil
	for _, n := range plan.Networks() {
		opts.Ingest.Listeners = append(opts.Ingest.Listeners, mllpingest.Listener{Network: n, Addr: "127.0.0.1:0"})
	}
	return opts, nil
}

// truthTolerancePoints is how far (percentage points) a measured rate may be
// from the simulator's truth before the demo reports a failure.
const truthTolerancePoints = 2.0

// printTruthCheck compares each network's refusal and unanswered rates with
// the simulator's truth and reports whether all are within tolerance.
func printTruthCheck(w io.Writer, truth map[string]map[string]int, measured map[string]map[string]uint64) bool {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "network\trequests\trefused truth\trefused measured\tunanswered truth\tunanswered measured\twithin 2 pts\t")
	networks := make([]string, 0, len(truth))
	for n := range truth {
		networks = append(networks, n)
	}
	sort.Strings(networks)
	all := true
	for _, n := range networks {
		tTotal, mTotal := 0.0, 0.0
		for _, c := range truth[n] {
			tTotal += float64(c)
		}
		for class, c := range measured[n] {
			if class != "orphan" {
				mTotal += float64(c)
			}
		}
		rate := func(num, den float64) float64 {
			if den == 0 {
				return 0
			}
			return 100 * num / den
		}
		tRef := rate(float64(truth[n]["refused_exception"]+truth[n]["refused_unjustified"]), tTotal)
		mRef := rate(float64(measured[n]["refused_exception"]+measured[n]["refused_unjustified"]), mTotal)
		tUn := rate(float64(truth[n]["unanswered"]), tTotal)
		mUn := rate(float64(measured[n]["unanswered"]), mTotal)
		ok := math.Abs(tRef-mRef) <= truthTolerancePoints && math.Abs(tUn-mUn) <= truthTolerancePoints
		all = all && ok
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f%%\t%.2f%%\t%.2f%%\t%.2f%%\t%s\t\n", n, mTotal, tRef, mRef, tUn, mUn, yesNo(ok))
	}
	_ = tw.Flush()
	return all
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
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
