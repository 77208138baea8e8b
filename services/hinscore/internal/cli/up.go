package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/api"
	atnaingest "github.com/hinscore/hinscore/services/atna-ingest"
	"github.com/hinscore/hinscore/services/chwriter"
	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
	"github.com/hinscore/hinscore/services/hinscore/internal/pipeline"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/linker"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
	"github.com/hinscore/hinscore/services/scorecard"
)

// upFlags are the flags `up` and `demo` share.
type upFlags struct {
	clickhouse string
	data       string
	admin      string
	mllp       listenerFlag
	atna       listenerFlag
	fhir       string
	api        string
	out        string
	nats       string
}

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("up", stderr)
	var f upFlags
	fs.StringVar(&f.clickhouse, "clickhouse", "", "ClickHouse DSN clickhouse://HOST:PORT/DATABASE (default HINSCORE_CLICKHOUSE_DSN, else a local server)")
	fs.Var(&f.mllp, "mllp", "MLLP listener NETWORK=HOST:PORT, repeatable (default HINSCORE_MLLP_LISTENERS, else default=127.0.0.1:2575)")
	fs.Var(&f.atna, "atna", "syslog (ATNA audit record) listener NETWORK=HOST:PORT, repeatable: TLS with HINSCORE_ATNA_TLS_CERT/KEY, else TCP; UDP from HINSCORE_ATNA_UDP; default: no audit-record listener")
	fs.StringVar(&f.data, "data", ".data", "directory of the embedded JetStream store")
	fs.StringVar(&f.admin, "admin", "127.0.0.1:9100", "address of /metrics, /healthz, /readyz")
	fs.StringVar(&f.out, "out", "", "directory of the scorecard files, rebuilt every HINSCORE_SCORECARD_EVERY (default HINSCORE_SCORECARD_OUT, else out)")
	fs.StringVar(&f.fhir, "fhir", "", "FHIR listener HOST:PORT (network tokens from HINSCORE_FHIR_TOKENS[_FILE]); default: no FHIR listener")
	fs.StringVar(&f.api, "api", "", "API listener HOST:PORT (tokens from HINSCORE_API_TOKENS[_FILE]); default: no API")
	fs.StringVar(&f.nats, "nats", "127.0.0.1:4222", "client address of the embedded NATS (hinscore import and standalone services connect here)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(f.mllp) > 0 {
		if _, err := parseListeners(f.mllp); err != nil {
			return err
		}
	}
	if len(f.atna) > 0 {
		if _, err := ingest.ParseListeners(strings.Join(f.atna, ",")); err != nil {
			return fmt.Errorf("%w: --atna: %v", errUsage, err)
		}
	}
	log := service.NewLogger("hinscore", stderr)
	environment, err := service.EnvironmentOf(service.NewEnv())
	if err != nil {
		return err
	}
	opts, err := pipelineOptions(ctx, f, environment, log)
	if err != nil {
		return err
	}
	p, err := pipeline.Start(ctx, opts)
	if err != nil {
		return err
	}
	for network, addr := range p.MLLPAddrs() {
		fmt.Fprintf(stdout, "MLLP  %-12s %s\n", network, addr)
	}
	for network, addrs := range p.ATNAAddrs() {
		fmt.Fprintf(stdout, "ATNA  %-12s %s\n", network, strings.Join(addrs, " "))
	}
	if a := p.FHIRAddr(); a != "" {
		fmt.Fprintf(stdout, "FHIR  http://%s/fhir/{network}/\n", a)
	}
	if a := p.APIAddr(); a != "" {
		fmt.Fprintf(stdout, "API   http://%s/ (OpenAPI at /openapi.json)\n", a)
	}
	_, dsn := p.ClickHouse()
	fmt.Fprintf(stdout, "NATS  %s\nClickHouse %s\nadmin http://%s/metrics\nscorecards %s/<period>/<network>.json, every %s\n",
		p.NATSURL(), dsn, p.AdminAddr(), opts.Scorecard.Out, opts.Scorecard.Every)
	<-ctx.Done()
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return p.Shutdown(sctx)
}

// upEnv is the environment with the command's flags over it: each flag
// sets a variable of the components it configures, so that each one's
// configuration is read as the standalone service reads it.
func upEnv(f upFlags, data string) *service.Env {
	flags := map[string]string{}
	if len(f.mllp) > 0 {
		flags["HINSCORE_MLLP_LISTENERS"] = strings.Join(f.mllp, ",")
	}
	if len(f.atna) > 0 {
		flags["HINSCORE_ATNA_LISTENERS"] = strings.Join(f.atna, ",")
	}
	if f.fhir != "" {
		flags["HINSCORE_FHIR_ADDR"] = f.fhir
	}
	if f.api != "" {
		flags["HINSCORE_API_ADDR"] = f.api
		if _, set := service.NewEnv().Lookup("HINSCORE_API_AUDIT_LOG"); !set {
			// The audit log of raw accesses lives with the rest of the data.
			flags["HINSCORE_API_AUDIT_LOG"] = filepath.Join(data, "api-audit.jsonl")
		}
	}
	if f.out != "" {
		flags["HINSCORE_SCORECARD_OUT"] = f.out
	}
	if f.clickhouse != "" {
		flags[chstore.EnvDSN] = f.clickhouse
	}
	return service.NewEnvWith(flags)
}

// pipelineOptions reads every component's configuration, and the settings
// they share once, from the environment with the command's flags over it,
// and refuses in production what production forbids (refuseInProduction).
func pipelineOptions(ctx context.Context, f upFlags, environment string, log zerolog.Logger) (pipeline.Options, error) {
	data, err := filepath.Abs(f.data)
	if err != nil {
		return pipeline.Options{}, fmt.Errorf("--data: %w", err)
	}
	env := upEnv(f, data)
	dsn, _ := env.Lookup(chstore.EnvDSN)
	var d chstore.DSN
	if dsn != "" {
		if d, err = chstore.ParseDSN(dsn); err != nil {
			return pipeline.Options{}, fmt.Errorf("%w: --clickhouse: %v", errUsage, err)
		}
	}
	opts := pipeline.Options{DataDir: data, NATSAddr: f.nats, ClickHouse: d, AdminAddr: f.admin, Streams: bus.DefaultStreamOptions(), Log: log}
	if err := readConfigs(env, f, &opts); err != nil {
		return pipeline.Options{}, err
	}
	if err := refuseInProduction(environment, opts); err != nil {
		return pipeline.Options{}, err
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return pipeline.Options{}, fmt.Errorf("--data: %w", err)
	}
	if dsn == "" {
		if dsn, err = localClickHouse(ctx); err != nil {
			return pipeline.Options{}, err
		}
		if opts.ClickHouse, err = chstore.ParseDSN(dsn); err != nil {
			return pipeline.Options{}, fmt.Errorf("local ClickHouse: %w", err)
		}
	}
	return opts, nil
}

// readConfigs reads the shared settings and each component's
// configuration from env into opts: the FHIR ingest and the api only with
// their flag.
func readConfigs(env *service.Env, f upFlags, opts *pipeline.Options) error {
	if err := service.Load(env, &opts.Shared); err != nil {
		return err
	}
	var err error
	if opts.Ingest, err = mllpingest.ConfigFromEnv(env); err != nil {
		return err
	}
	if opts.Linker, err = linker.ConfigFromEnv(env); err != nil {
		return err
	}
	if opts.Writer, err = chwriter.ConfigFromEnv(env); err != nil {
		return err
	}
	cards, err := scorecard.ServiceConfigFromEnv(env)
	if err != nil {
		return err
	}
	opts.Scorecard = &cards
	if len(f.atna) > 0 {
		cfg, err := atnaingest.ConfigFromEnv(env)
		if err != nil {
			return fmt.Errorf("--atna: %w", err)
		}
		opts.ATNA = &cfg
	}
	if f.fhir != "" {
		cfg, err := fhiringest.ConfigFromEnv(env)
		if err != nil {
			return fmt.Errorf("--fhir: %w", err)
		}
		opts.FHIR = &cfg
	}
	if f.api != "" {
		cfg, err := api.ConfigFromEnv(env)
		if err != nil {
			return fmt.Errorf("--api: %w", err)
		}
		opts.API = &cfg
	}
	return nil
}

// refuseInProduction returns, in production, what production forbids of
// every component's configuration (service.Refuse) and of the embedded
// NATS.
func refuseInProduction(environment string, opts pipeline.Options) error {
	return service.Refuse(environment, &opts.Shared, &opts.Ingest, opts.ATNA, opts.FHIR, opts.API, &embeddedNATS{flag: "--nats", addr: opts.NATSAddr})
}

func parseListeners(specs []string) ([]mllpingest.Listener, error) {
	ls, err := mllpingest.ParseListeners(strings.Join(specs, ","))
	if err != nil {
		return nil, fmt.Errorf("%w: --mllp: %v", errUsage, err)
	}
	return ls, nil
}
