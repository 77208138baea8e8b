// Command simulator generates simulated network traffic with its ground
// truth, writes the truth files and sends the traffic to hinscore over MLLP.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/service"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx, os.Args[1:])
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, "simulator:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context, args []string) error {
	env := service.NewEnv()
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	requests := fs.Int("requests", env.Int("HINSCORE_SIM_REQUESTS", 20000), "total requests across networks (HINSCORE_SIM_REQUESTS)")
	seed := fs.Int("seed", env.Int("HINSCORE_SIM_SEED", 1), "random seed (HINSCORE_SIM_SEED)")
	out := fs.String("out", env.String("HINSCORE_SIM_OUT", "out/simulator"), "directory for truth.csv and truth.json (HINSCORE_SIM_OUT)")
	targets := fs.String("targets", env.String("HINSCORE_SIM_TARGETS", ""), "NETWORK=HOST:PORT,... ; empty = only write the truth (HINSCORE_SIM_TARGETS)")
	start := fs.String("start", env.String("HINSCORE_SIM_START", ""), "first request time, RFC 3339 (default yesterday 00:00 UTC) (HINSCORE_SIM_START)")
	span := fs.String("span", env.String("HINSCORE_SIM_SPAN", "24h"), "how long requests keep arriving: a duration (36h), days (30d) or months (6mo); without --start the span ends today 00:00 UTC (HINSCORE_SIM_SPAN)")
	patterns := fs.Bool("patterns", env.String("HINSCORE_SIM_PATTERNS", "") == "true", "every HL7 v2 and FHIR pattern (PatternNetworks: northstar, bayview, prairie over MLLP, lakeshore FHIR over HTTP) instead of patient queries only (HINSCORE_SIM_PATTERNS)")
	fhirToken := fs.String("fhir-token", env.String("HINSCORE_SIM_FHIR_TOKEN", ""), "bearer token of the FHIR networks' POSTs (HINSCORE_SIM_FHIR_TOKEN)")
	rate := fs.Float64("rate", envFloat(env, "HINSCORE_SIM_RATE"), "frames/s in total, 0 = as fast as acknowledged (HINSCORE_SIM_RATE)")
	networkRate := fs.Float64("network-rate", envFloat(env, "HINSCORE_SIM_NETWORK_RATE"), "frames/s per network instead of --rate (HINSCORE_SIM_NETWORK_RATE)")
	reconnect := fs.Duration("reconnect-within", env.Duration("HINSCORE_SIM_RECONNECT_WITHIN", 60*time.Second), "longest outage of a connection before giving up (HINSCORE_SIM_RECONNECT_WITHIN)")
	xcaJourneys := fs.Int("xca-journeys", env.Int("HINSCORE_SIM_XCA_JOURNEYS", 0), "cross-community (XCPD/XCA) patient journeys, 0 = none (HINSCORE_SIM_XCA_JOURNEYS)")
	xcaTargets := fs.String("xca-targets", env.String("HINSCORE_SIM_XCA_TARGETS", ""), "NETWORK=HOST:PORT (syslog-TLS) or NETWORK=URL (SOAP copies),... ; empty = only write the truth (HINSCORE_SIM_XCA_TARGETS)")
	xcaCA := fs.String("xca-ca", env.String("HINSCORE_SIM_XCA_CA", ""), "PEM file of the CA that signed the syslog-TLS listeners' certificates; empty = system roots (HINSCORE_SIM_XCA_CA)")
	xcaToken := fs.String("xca-token", env.String("HINSCORE_SIM_XCA_TOKEN", ""), "bearer token of the SOAP copies (HINSCORE_SIM_XCA_TOKEN)")
	progress := fs.Duration("progress", env.Duration("HINSCORE_SIM_PROGRESS", 2*time.Second), "interval of the progress line on stderr (HINSCORE_SIM_PROGRESS)")
	if err := env.Err(); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := simulator.Config{
		Requests: *requests, Seed: int64(*seed),
		Rate: *rate, NetworkRate: *networkRate, ReconnectWithin: *reconnect,
		Progress: os.Stderr, ProgressEvery: *progress, FHIRToken: *fhirToken,
	}
	if *patterns {
		cfg.Networks = simulator.PatternNetworks()
	}
	if err := spanAndStart(&cfg, *span, *start, time.Now()); err != nil {
		return err
	}
	tg, err := simulator.ParseTargets(*targets)
	if err != nil {
		return fmt.Errorf("--targets: %w", err)
	}
	tlsConfig, err := caConfig(*xcaCA)
	if err != nil {
		return fmt.Errorf("--xca-ca: %w", err)
	}
	xtg, err := simulator.ParseXCATargets(*xcaTargets, tlsConfig, *xcaToken)
	if err != nil {
		return fmt.Errorf("--xca-targets: %w", err)
	}
	if err := runHL7(ctx, cfg, tg, *out); err != nil {
		return err
	}
	if *xcaJourneys <= 0 {
		return nil
	}
	return runXCA(ctx, simulator.XCAConfig{Journeys: *xcaJourneys, Seed: cfg.Seed, Start: cfg.Start, Span: cfg.Span}, xtg, *out)
}

func runHL7(ctx context.Context, cfg simulator.Config, tg map[string]string, out string) error {
	plan, err := simulator.Generate(cfg)
	if err != nil {
		return err
	}
	if err := plan.WriteTruth(out); err != nil {
		return err
	}
	fmt.Printf("generated %d requests, %d valid messages, %d exact duplicates and %d malformed frames; truth in %s\n",
		len(plan.Requests()), plan.ValidMessages(), plan.Duplicates(), plan.MalformedMessages(), out)
	if len(tg) == 0 {
		return nil
	}
	stats, err := plan.Send(ctx, tg)
	for _, n := range stats.Networks {
		fmt.Printf("%-10s sent=%d accepted=%d rejected=%d retried=%d failed=%d unexpected=%d reconnects=%d resent=%d\n",
			n.Network, n.Sent, n.Accepted, n.Rejected, n.Retried, n.Failed, n.Unexpected, n.Reconnects, n.Resent)
	}
	fmt.Println("total     ", stats)
	return err
}

func runXCA(ctx context.Context, cfg simulator.XCAConfig, tg map[string]simulator.XCATarget, out string) error {
	plan, err := simulator.GenerateXCA(cfg)
	if err != nil {
		return err
	}
	if err := plan.WriteTruth(out); err != nil {
		return err
	}
	fmt.Printf("generated %d cross-community transactions, %d records and SOAP copies, %d re-sent; truth in %s\n",
		len(plan.Requests()), plan.MessageCount(), plan.Duplicates(), out)
	if len(tg) == 0 {
		return nil
	}
	stats, err := plan.Send(ctx, tg)
	for _, g := range stats.Gateways {
		fmt.Printf("%-14s %-18s sent=%d accepted=%d rejected=%d retried=%d reconnects=%d\n",
			g.Network, g.Gateway, g.Sent, g.Accepted, g.Rejected, g.Retried, g.Reconnects)
	}
	fmt.Println("total (XCA)   ", stats)
	return err
}

// spanAndStart sets the run's span and start: from --start when given,
// else the span that ends today 00:00 UTC.
func spanAndStart(cfg *simulator.Config, span, start string, now time.Time) error {
	sp, err := simulator.ParseSpan(span)
	if err != nil {
		return fmt.Errorf("--span: %w", err)
	}
	cfg.Start = sp.Before(now.UTC().Truncate(24 * time.Hour))
	if start != "" {
		if cfg.Start, err = time.Parse(time.RFC3339, start); err != nil {
			return fmt.Errorf("--start: %w", err)
		}
	}
	cfg.Span = sp.From(cfg.Start)
	return nil
}

// caConfig trusts the CA certificates of a PEM file (nil = the system's roots).
func caConfig(file string) (*tls.Config, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// envFloat reads a non-negative number (default 0).
func envFloat(env *service.Env, name string) float64 {
	v := env.String(name, "")
	if v == "" {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		env.Fail(name, "%q is not a non-negative number", v)
		return 0
	}
	return f
}
