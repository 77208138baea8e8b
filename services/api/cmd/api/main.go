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
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := service.Main(ctx, "api", api.DefaultAdminAddr, build)
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func build(ctx context.Context, p *service.Process) ([]service.Component, error) {
	cfg, err := api.ConfigFromEnv(p.Env)
	if err != nil {
		return nil, err
	}
	conn, dsn, closeCH, err := chstore.OpenFromEnv(ctx, p.Env)
	if err != nil {
		return nil, err
	}
	js, nats, err := bus.ConnectFromEnv(ctx, p.Env, "api")
	if err != nil {
		return []service.Component{closeCH}, err
	}
	s, err := api.New(cfg, conn, js, p.Log, p.Admin.Registry(), service.SystemClock{})
	if err != nil {
		return []service.Component{closeCH, nats}, err
	}
	p.Admin.AddReadiness("api", s.Ready)
	p.Log.Info().Str("clickhouse", dsn.String()).Msg("api configured")
	return []service.Component{closeCH, nats, s}, nil
}
