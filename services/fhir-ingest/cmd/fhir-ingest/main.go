// Command fhir-ingest runs the FHIR ingest alone, configured from the
// environment (see services/fhir-ingest/README.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
	"github.com/hinscore/hinscore/services/lib/service"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := service.Main(ctx, "fhir-ingest", fhiringest.ConfigFromEnv, fhiringest.New)
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
