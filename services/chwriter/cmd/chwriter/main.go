// Command chwriter writes the EVENTS and OUTCOMES streams into ClickHouse.
// Configuration: see services/chwriter/README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/service"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	log := service.NewLogger("chwriter", os.Stderr)
	err := chwriter.Main(ctx, service.NewEnv(), log)
	done()
	if err != nil {
		log.Fatal().Err(err).Msg("chwriter stopped")
	}
}
