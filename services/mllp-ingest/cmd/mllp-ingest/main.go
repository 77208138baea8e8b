// Command mllp-ingest runs the MLLP ingest alone, configured from the
// environment (see services/mllp-ingest/README.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := service.Main(ctx, "mllp-ingest", "127.0.0.1:9101", build)
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func build(ctx context.Context, p *service.Process) ([]service.Component, error) {
	cfg, err := mllpingest.ConfigFromEnv(p.Env)
	if err != nil {
		return nil, err
	}
	js, nats, err := bus.ConnectFromEnv(ctx, p.Env, "mllp-ingest")
	if err != nil {
		return nil, err
	}
	srv, err := mllpingest.New(cfg, js, p.Log, p.Admin.Registry(), service.SystemClock{})
	if err != nil {
		return []service.Component{nats}, err
	}
	p.Admin.AddReadiness("mllp-ingest", srv.Ready)
	return []service.Component{nats, srv}, nil
}
