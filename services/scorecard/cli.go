package scorecard

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
)

// ErrUsage is wrapped by every RunCLI error the command line itself caused
// (an unknown or malformed flag, a bad period, a missing DSN); callers exit
// with status 2 on it.
var ErrUsage = errors.New("usage")

// cliFlags is the parsed command line of RunCLI.
type cliFlags struct {
	dsn     chstore.DSN
	dsnText string   // as given, password included, for the service's configuration
	periods []string // nil: the mode's default
	network string
	out     string
	outSet  bool
	from    time.Time
	to      time.Time
	every   time.Duration // 0: one-shot
	admin   string
	source  string
	// label is the one period asked for (--period 2026-10), "" for none.
	label string
}

// RunCLI is the scorecard command line, shared by the standalone binary and
// `hinscore scorecard`. Without --every it builds the cards once, writes
// them, stores the closed ones and prints the table on stdout (no NATS:
// the service publishes what the command stored). With --every it runs as
// a service until ctx ends (SIGTERM): a run right away and then one every
// interval, closed cards published on SCORECARDS (NATS_URL), logs on
// stderr, /metrics, /healthz and /readyz on --admin. Errors caused
// by the command line wrap ErrUsage; -h returns flag.ErrHelp.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	env := service.NewEnv()
	f, err := parseCLI(args, env, stderr)
	if err != nil {
		return err
	}
	if f.every == 0 {
		return runOneShot(ctx, f, env, stdout)
	}
	return runService(ctx, f, stderr)
}

func parseCLI(args []string, env *service.Env, stderr io.Writer) (cliFlags, error) {
	fs := flag.NewFlagSet("scorecard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("clickhouse", env.String(EnvClickHouse, ""), "ClickHouse DSN clickhouse://HOST:PORT/DATABASE (default $"+EnvClickHouse+")")
	period := fs.String("period", "", "one period to (re)generate: 2026-10, 2026-W43 or 2026-10-05; or day, week, month or a comma-separated list of them (default day; with --every $"+EnvPeriods+" or day,week,month)")
	source := fs.String("source", SourceView, "view (exact as of now) or rollup (outcomes_daily: faster over long periods, exact as of its last rebuild)")
	network := fs.String("network", "", "one network (default: all; not with --every)")
	out := fs.String("out", "out", "directory for <period>/<network>.json (with --every default $"+EnvOut+" or out)")
	from := fs.String("from", "", "first requested_at to include, RFC 3339 (default: everything; not with --every)")
	to := fs.String("to", "", "requested_at to stop before, RFC 3339 (default: everything; not with --every)")
	every := fs.Duration("every", 0, "run as a service, rebuilding every DURATION (e.g. 1m) until SIGTERM")
	admin := fs.String("admin", env.String(EnvAdminAddr, DefaultServiceConfig().AdminAddr), "with --every: address of /metrics, /healthz, /readyz ($"+EnvAdminAddr+")")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cliFlags{}, err
		}
		return cliFlags{}, fmt.Errorf("scorecard: %w: %w", ErrUsage, err)
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	f := cliFlags{network: *network, out: *out, outSet: set["out"], every: *every, admin: *admin, source: *source}
	if f.source != SourceView && f.source != SourceRollup {
		bad("--source: %q: want view or rollup", f.source)
	}
	if fs.NArg() > 0 {
		bad("unexpected arguments %q", fs.Args())
	}
	if *dsn == "" {
		bad("--clickhouse or %s: required", EnvClickHouse)
	} else if d, err := chstore.ParseDSN(*dsn); err != nil {
		bad("--clickhouse: %w", err)
	} else {
		f.dsn, f.dsnText = d, *dsn
	}
	if g, start, err := ParsePeriod(strings.TrimSpace(*period)); set["period"] && err == nil {
		// One period: regenerate it (and read the earlier ones its trend and
		// flags need).
		_, end, _ := Period(g, start)
		f.periods, f.label, f.from, f.to = []string{g}, *period, start, end
		for _, name := range []string{"from", "to", "every"} {
			if set[name] {
				bad("--%s: not allowed with --period %s", name, *period)
			}
		}
	} else if set["period"] {
		f.periods = splitList(*period)
		if err := checkGranularities(f.periods); err != nil {
			bad("--period: %w (or one period: 2026-10, 2026-W43, 2026-10-05)", err)
		}
	}
	if strings.TrimSpace(f.out) == "" {
		bad("--out: empty")
	}
	for _, p := range []struct {
		name, s string
		t       *time.Time
	}{{"--from", *from, &f.from}, {"--to", *to, &f.to}} {
		if p.s == "" || f.label != "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, p.s)
		if err != nil {
			bad("%s: %q is not RFC 3339 (2026-11-01T00:00:00Z)", p.name, p.s)
			continue
		}
		*p.t = t
	}
	if !f.from.IsZero() && !f.to.IsZero() && !f.from.Before(f.to) && f.label == "" {
		bad("--to: %s is not after --from %s", *to, *from)
	}
	if set["every"] {
		if f.every < minEvery || f.every > maxEvery {
			bad("--every: %s is outside %s-%s", f.every, minEvery, maxEvery)
		}
		// The service rebuilds everything it is configured for; a filtered
		// service would leave the other networks' files silently stale.
		for _, name := range []string{"network", "from", "to"} {
			if set[name] {
				bad("--%s: not allowed with --every", name)
			}
		}
	} else if set["admin"] {
		bad("--admin: only with --every")
	}
	if err := errors.Join(errs...); err != nil {
		return cliFlags{}, fmt.Errorf("scorecard: %w: %w", ErrUsage, err)
	}
	return f, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// runOneShot builds the cards once, writes them, records the closed ones
// in the scorecards table (a regeneration is a new run of the history;
// scorecards_latest shows it) and prints the table. With --network only
// that network's cards are written, stored and printed, but the cards of
// every network are built: the offenders list of each period written is
// the analysts' list of all networks, so it is rewritten from all of them
// (the same bytes as a full run's when the data has not changed).
func runOneShot(ctx context.Context, f cliFlags, env *service.Env, stdout io.Writer) error {
	periods := f.periods
	if periods == nil {
		periods = []string{Day}
	}
	cfg, err := ServiceConfigFromEnv(env)
	if err != nil {
		return fmt.Errorf("scorecard: %w", err)
	}
	conn, err := chstore.OpenDSN(ctx, f.dsn)
	if err != nil {
		return fmt.Errorf("scorecard: %w", err)
	}
	defer conn.Close()
	before, _, err := closedBefore(ctx, conn, cfg.CloseAfter)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	var all, own []*hinscorev1.Scorecard
	checks, err := runChecks(ctx, conn, f.from, f.to, now)
	if err != nil {
		return fmt.Errorf("scorecard: %w", err)
	}
	for _, p := range periods {
		cards, err := build(ctx, conn, Query{Granularity: p, From: f.from, To: f.to, Source: f.source, ClosedBefore: before}, now, checks)
		if err != nil {
			return fmt.Errorf("scorecard: %w", err)
		}
		var mine, closed []*hinscorev1.Scorecard
		written := map[string]bool{} // periods of mine
		for _, c := range cards {
			if f.network != "" && c.GetNetwork() != f.network {
				continue
			}
			mine = append(mine, c)
			written[c.GetPeriod()] = true
			if c.GetClosed() {
				closed = append(closed, c)
			}
		}
		if err := Deliver(ctx, conn, nil, p, closed); err != nil {
			return fmt.Errorf("scorecard: %w", err)
		}
		for _, c := range cards {
			if written[c.GetPeriod()] {
				all = append(all, c)
			}
		}
		own = append(own, mine...)
	}
	if err := writeCards(f.out, own); err != nil {
		return fmt.Errorf("scorecard: %w", err)
	}
	if err := writeOffenders(f.out, all); err != nil {
		return fmt.Errorf("scorecard: %w", err)
	}
	return PrintTable(stdout, own)
}

// runService runs the standalone service until ctx ends, composed as
// every service is (service.Serve): the configuration from the
// environment with the flags over it, ClickHouse, NATS (closed cards are
// published on SCORECARDS), the admin endpoints.
func runService(ctx context.Context, f cliFlags, stderr io.Writer) error {
	flags := map[string]string{EnvEvery: f.every.String(), EnvClickHouse: f.dsnText, EnvAdminAddr: f.admin}
	if f.outSet {
		flags[EnvOut] = f.out
	}
	if f.periods != nil {
		flags[EnvPeriods] = strings.Join(f.periods, ",")
	}
	return service.Serve(ctx, "scorecard", service.NewEnvWith(flags), stderr, ServiceConfigFromEnv, NewService)
}
