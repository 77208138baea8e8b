// Command linker runs the request↔answer join alone, configured from the
// environment (see services/linker/README.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/linker"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := service.Main(ctx, "linker", linker.ConfigFromEnv, newLinker)
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// newLinker is linker.New over what service.Main opened.
func newLinker(cfg linker.Config, d service.Deps) (*linker.Linker, error) {
	return linker.New(cfg, d.JetStream, d.Log, d.Metrics, d.Clock)
}
