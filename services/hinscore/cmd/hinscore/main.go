// Command hinscore composes every hinscore service in one process (up,
// demo) and carries the operator and investigator tools.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hinscore/hinscore/services/hinscore/internal/cli"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	done()
	os.Exit(code)
}
