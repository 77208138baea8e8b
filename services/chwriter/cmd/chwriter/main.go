// Command chwriter writes the EVENTS and OUTCOMES streams into ClickHouse,
// configured from the environment (see services/chwriter/README.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := service.Main(ctx, "chwriter", "127.0.0.1:9103", build)
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func build(ctx context.Context, p *service.Process) ([]service.Component, error) {
	cfg, err := chwriter.ConfigFromEnv(p.Env)
	if err != nil {
		return nil, err
	}
	conn, dsn, closeCH, err := chstore.OpenFromEnv(ctx, p.Env)
	if err != nil {
		return nil, err
	}
	js, nats, err := bus.ConnectFromEnv(ctx, p.Env, "chwriter")
	if err != nil {
		return []service.Component{closeCH}, err
	}
	w, err := chwriter.New(cfg, js, conn, p.Log, p.Admin.Registry())
	if err != nil {
		return []service.Component{closeCH, nats}, err
	}
	p.Admin.AddReadiness("chwriter", w.Ready)
	p.Log.Info().Str("clickhouse", dsn.String()).Msg("chwriter configured")
	return []service.Component{closeCH, nats, w}, nil
}
