// Command linker runs the request↔answer join alone, configured from the
// environment (see services/linker/README.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/linker"
)

func main() {
	ctx, done := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := service.Main(ctx, "linker", "127.0.0.1:9102", build)
	done()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func build(ctx context.Context, p *service.Process) ([]service.Component, error) {
	cfg, err := linker.ConfigFromEnv(p.Env)
	if err != nil {
		return nil, err
	}
	js, nats, err := bus.ConnectFromEnv(ctx, p.Env, "linker")
	if err != nil {
		return nil, err
	}
	l, err := linker.New(cfg, js, p.Log, p.Admin.Registry(), service.SystemClock{})
	if err != nil {
		return []service.Component{nats}, err
	}
	p.Admin.AddReadiness("linker", l.Ready)
	return []service.Component{nats, l}, nil
}
