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
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := service.Main(ctx, "fhir-ingest", "127.0.0.1:9106", build)
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func build(ctx context.Context, p *service.Process) ([]service.Component, error) {
	cfg, err := fhiringest.ConfigFromEnv(p.Env)
	if err != nil {
		return nil, err
	}
	js, nats, err := bus.ConnectFromEnv(ctx, p.Env, "fhir-ingest")
	if err != nil {
		return nil, err
	}
	srv, err := fhiringest.New(cfg, js, p.Log, p.Admin.Registry(), service.SystemClock{})
	if err != nil {
		return []service.Component{nats}, err
	}
	p.Admin.AddReadiness("fhir-ingest", srv.Ready)
	return []service.Component{nats, srv}, nil
}
