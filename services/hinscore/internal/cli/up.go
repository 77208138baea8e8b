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
	"github.com/hinscore/hinscore/services/chwriter"
	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
	"github.com/hinscore/hinscore/services/hinscore/internal/pipeline"
	"github.com/hinscore/hinscore/services/lib/bus"
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
	fs.StringVar(&f.data, "data", ".data", "directory of the embedded JetStream store")
	fs.StringVar(&f.admin, "admin", "127.0.0.1:9100", "address of /metrics, /healthz, /readyz")
	fs.StringVar(&f.out, "out", "", "directory of the scorecard files, rebuilt every HINSCORE_SCORECARD_EVERY (default HINSCORE_SCORECARD_OUT, else out)")
	fs.StringVar(&f.fhir, "fhir", "", "FHIR listener HOST:PORT (network tokens from HINSCORE_FHIR_TOKENS[_FILE]); default: no FHIR listener")
	fs.StringVar(&f.api, "api", "", "API listener HOST:PORT (tokens from HINSCORE_API_TOKENS[_FILE]); default: no API")
	fs.StringVar(&f.nats, "nats", "127.0.0.1:4222", "client address of the embedded NATS (hinscore import and standalone services connect here)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var listeners []mllpingest.Listener
	if len(f.mllp) > 0 {
		var err error
		if listeners, err = parseListeners(f.mllp); err != nil {
			return err
		}
	}
	var fhir *fhiringest.Config
	if f.fhir != "" {
		cfg, err := fhiringest.ConfigFromEnv(service.NewEnvWith(map[string]string{"HINSCORE_FHIR_ADDR": f.fhir}))
		if err != nil {
			return fmt.Errorf("--fhir: %w", err)
		}
		fhir = &cfg
	}
	var apiCfg *api.Config
	if f.api != "" {
		cfg, err := api.ConfigFromEnv(service.NewEnvWith(map[string]string{"HINSCORE_API_ADDR": f.api}))
		if err != nil {
			return fmt.Errorf("--api: %w", err)
		}
		apiCfg = &cfg
	}
	log := service.NewLogger("hinscore", stderr)
	opts, err := pipelineOptions(ctx, f, log)
	if err != nil {
		return err
	}
	cards, err := scorecard.ServiceConfigFromEnv(service.NewEnv())
	if err != nil {
		return err
	}
	if f.out != "" {
		cards.Out = f.out
	}
	opts.Scorecard = &cards
	opts.FHIR = fhir
	if apiCfg != nil && os.Getenv("HINSCORE_API_AUDIT_LOG") == "" {
		// The audit log of raw accesses lives with the rest of the data.
		apiCfg.AuditLog = filepath.Join(opts.DataDir, "api-audit.jsonl")
	}
	opts.API = apiCfg
	if listeners != nil {
		// Flags win over HINSCORE_MLLP_LISTENERS (default: default=127.0.0.1:2575).
		opts.Ingest.Listeners = listeners
	}
	p, err := pipeline.Start(ctx, opts)
	if err != nil {
		return err
	}
	for network, addr := range p.MLLPAddrs() {
		fmt.Fprintf(stdout, "MLLP  %-12s %s\n", network, addr)
	}
	if a := p.FHIRAddr(); a != "" {
		fmt.Fprintf(stdout, "FHIR  http://%s/fhir/{network}/\n", a)
	}
	if a := p.APIAddr(); a != "" {
		fmt.Fprintf(stdout, "API   http://%s/ (OpenAPI at /openapi.json)\n", a)
	}
	_, dsn := p.ClickHouse()
	fmt.Fprintf(stdout, "NATS  %s\nClickHouse %s\nadmin http://%s/metrics\nscorecards %s/<period>/<network>.json, every %s\n",
		p.NATSURL(), dsn, p.AdminAddr(), cards.Out, cards.Every)
	<-ctx.Done()
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return p.Shutdown(sctx)
}

// pipelineOptions reads every service's configuration from the environment
// (as the standalone services do) and applies the command's flags.
func pipelineOptions(ctx context.Context, f upFlags, log zerolog.Logger) (pipeline.Options, error) {
	env := service.NewEnv()
	ingest, err := mllpingest.ConfigFromEnv(env)
	if err != nil {
		return pipeline.Options{}, err
	}
	link, err := linker.ConfigFromEnv(env)
	if err != nil {
		return pipeline.Options{}, err
	}
	writer, err := chwriter.ConfigFromEnv(env)
	if err != nil {
		return pipeline.Options{}, err
	}
	dsn := dsnFrom(f.clickhouse)
	if dsn == "" {
		if dsn, err = localClickHouse(ctx); err != nil {
			return pipeline.Options{}, err
		}
	}
	d, err := chstore.ParseDSN(dsn)
	if err != nil {
		return pipeline.Options{}, fmt.Errorf("%w: --clickhouse: %v", errUsage, err)
	}
	data, err := filepath.Abs(f.data)
	if err != nil {
		return pipeline.Options{}, fmt.Errorf("--data: %w", err)
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return pipeline.Options{}, fmt.Errorf("--data: %w", err)
	}
	return pipeline.Options{
		DataDir:    data,
		NATSAddr:   f.nats,
		ClickHouse: d,
		AdminAddr:  f.admin,
		Streams:    bus.DefaultStreamOptions(),
		Ingest:     ingest,
		Linker:     link,
		Writer:     writer,
		Log:        log,
	}, nil
}

func parseListeners(specs []string) ([]mllpingest.Listener, error) {
	ls, err := mllpingest.ParseListeners(strings.Join(specs, ","))
	if err != nil {
		return nil, fmt.Errorf("%w: --mllp: %v", errUsage, err)
	}
	return ls, nil
}
