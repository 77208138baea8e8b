// Command scorecard builds per-network scorecards from the outcomes in
// ClickHouse, writes them as JSON files and prints a summary table.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hinscore/hinscore/services/chstore"
	"github.com/hinscore/hinscore/services/scorecard"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx, os.Args[1:])
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, "scorecard:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("scorecard", flag.ContinueOnError)
	dsn := fs.String("clickhouse", os.Getenv("HINSCORE_CLICKHOUSE_DSN"), "ClickHouse DSN clickhouse://HOST:PORT/DATABASE (HINSCORE_CLICKHOUSE_DSN)")
	period := fs.String("period", scorecard.Day, "day, week or month")
	network := fs.String("network", "", "one network (default: all)")
	out := fs.String("out", "out", "directory for <period>/<network>.json")
	from := fs.String("from", "", "first requested_at to include, RFC 3339 (default: everything)")
	to := fs.String("to", "", "requested_at to stop before, RFC 3339 (default: everything)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dsn == "" {
		return fmt.Errorf("HINSCORE_CLICKHOUSE_DSN or --clickhouse: required")
	}
	q := scorecard.Query{Granularity: *period, Network: *network}
	for name, p := range map[string]struct {
		s string
		t *time.Time
	}{"--from": {*from, &q.From}, "--to": {*to, &q.To}} {
		if p.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, p.s)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		*p.t = t
	}
	conn, _, err := chstore.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer conn.Close()
	cards, err := scorecard.Build(ctx, conn, q, time.Now())
	if err != nil {
		return err
	}
	if err := scorecard.WriteFiles(*out, cards); err != nil {
		return err
	}
	return scorecard.PrintTable(os.Stdout, cards)
}
