// Command api serves hinscore's investigator and operator API and web
// views, configured from the environment (see services/api/README.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hinscore/hinscore/services/api"
	"github.com/hinscore/hinscore/services/lib/service"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := service.Main(ctx, "api", api.ConfigFromEnv, api.New)
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
