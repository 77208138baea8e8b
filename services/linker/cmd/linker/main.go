// Command linker runs the request↔answer join alone, configured from the
// environment (see services/linker/README.md).
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
	"github.com/hinscore/hinscore/services/linker"
	"github.com/hinscore/hinscore/services/service"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx)
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, "linker:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context) error {
	log := service.NewLogger("linker", os.Stderr)
	env := service.NewEnv()
	natsURL := env.String("NATS_URL", "nats://127.0.0.1:4222")
	adminAddr := env.String("HINSCORE_ADMIN_ADDR", "127.0.0.1:9102")
	cfg, err := linker.ConfigFromEnv(env)
	if err != nil {
		return err
	}
	nc, err := bus.Connect(natsURL, "linker")
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
	l, err := linker.New(cfg, js, log, admin.Registry(), service.SystemClock{})
	if err != nil {
		return err
	}
	admin.AddReadiness("linker", l.Ready)
	return service.Run(ctx, log, 30*time.Second, admin, l)
}
