// Command mllp-ingest runs the MLLP ingest alone, configured from the
// environment (see the service README).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/bus"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
	"github.com/hinscore/hinscore/services/service"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx)
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mllp-ingest:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context) error {
	log := service.NewLogger("mllp-ingest", os.Stderr)
	env := service.NewEnv()
	natsURL := env.String("NATS_URL", "nats://127.0.0.1:4222")
	adminAddr := env.String("HINSCORE_ADMIN_ADDR", "127.0.0.1:9101")
	cfg, err := mllpingest.ConfigFromEnv(env)
	if err != nil {
		return err
	}
	nc, err := bus.Connect(natsURL, "mllp-ingest")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := bus.EnsureStreams(ctx, js, bus.DefaultStreamOptions()); err != nil {
		return err
	}
	admin := service.NewAdmin(adminAddr, log)
	srv, err := mllpingest.New(cfg, js, log, admin.Registry(), service.SystemClock{})
	if err != nil {
		return err
	}
	admin.AddReadiness("mllp", srv.Ready)
	return service.Run(ctx, log, 30*time.Second, admin, srv)
}
