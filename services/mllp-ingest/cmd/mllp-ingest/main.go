// Command mllp-ingest runs the MLLP ingest alone, configured from the
// environment (see services/mllp-ingest/README.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hinscore/hinscore/services/lib/service"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := service.Main(ctx, "mllp-ingest", mllpingest.ConfigFromEnv, mllpingest.New)
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
