// Command e2ebench measures hinscore end to end with each service in its
// own process: simulated HL7 v2 traffic at increasing steady rates until
// the pipeline falls behind, the latency from an answer's acknowledgement
// to its outcome row in ClickHouse, and each service's peak RSS. It then
// merges these figures with the benchmark lines of scripts/bench.sh
// (limits first) into out/bench.json and prints a table.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx, os.Args[1:])
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2ebench:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("e2ebench", flag.ContinueOnError)
	var cfg config
	fs.StringVar(&cfg.bin, "bin", "bin", "directory of hinscore, mllp-ingest, fhir-ingest, atna-ingest, linker, chwriter")
	fs.StringVar(&cfg.dsn, "clickhouse", os.Getenv("HINSCORE_TEST_CLICKHOUSE_DSN"), "ClickHouse server clickhouse://HOST:PORT/DB (one database per step is created and dropped)")
	fs.StringVar(&cfg.benchTxt, "bench-txt", "out/bench.txt", "benchmark lines of scripts/bench.sh to merge (limits included)")
	fs.IntVar(&cfg.clickhousePID, "clickhouse-pid", 0, "the local ClickHouse server's PID, to count its CPU per event (0: not counted)")
	fs.StringVar(&cfg.out, "out", "out/bench.json", "where the JSON report goes")
	fs.Float64Var(&cfg.startRate, "start-rate", 2000, "first step's frames/s; each next step doubles it")
	fs.IntVar(&cfg.maxSteps, "max-steps", 6, "most rate steps before giving up finding the limit")
	fs.DurationVar(&cfg.stepTime, "step", 12*time.Second, "how long each step sends")
	fs.DurationVar(&cfg.maxLag, "max-lag", 5*time.Second, "a step falls behind when its events are not all stored this long after the sending ends")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.dsn == "" {
		return fmt.Errorf("--clickhouse: no ClickHouse DSN (or HINSCORE_TEST_CLICKHOUSE_DSN)")
	}
	if cfg.startRate <= 0 || cfg.maxSteps < 1 || cfg.stepTime < time.Second {
		return fmt.Errorf("--start-rate, --max-steps, --step: %g, %d, %s are out of range", cfg.startRate, cfg.maxSteps, cfg.stepTime)
	}
	e2e, err := measure(ctx, cfg)
	if err != nil {
		return err
	}
	rep, err := buildReport(cfg.benchTxt, e2e)
	if err != nil {
		return err
	}
	if err := rep.write(cfg.out); err != nil {
		return err
	}
	rep.table(os.Stdout)
	fmt.Printf("e2ebench: figures in %s\n", cfg.out)
	return nil
}

type config struct {
	bin, dsn, benchTxt, out string
	clickhousePID           int
	startRate               float64
	maxSteps                int
	stepTime, maxLag        time.Duration
}
