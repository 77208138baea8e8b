// Command scorecard builds per-network scorecards from the outcomes in
// ClickHouse: once (write the JSON files, print the table), or with --every
// as a service. Flags and environment: services/scorecard/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hinscore/hinscore/services/scorecard"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := scorecard.RunCLI(ctx, os.Args[1:], os.Stdout, os.Stderr)
	done()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, scorecard.ErrUsage):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
