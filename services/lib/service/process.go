package service

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// EnvAdminAddr names the variable that sets a standalone service's admin address.
const EnvAdminAddr = "HINSCORE_ADMIN_ADDR"

// ShutdownTimeout bounds the final flush on SIGTERM (Kubernetes' default
// grace period is 30s).
const ShutdownTimeout = 25 * time.Second

// Process is what a standalone service's components are built from.
type Process struct {
	Env   *Env
	Log   zerolog.Logger
	Admin *Admin
}

// BuildFunc builds a standalone service's components, in start order.
type BuildFunc func(ctx context.Context, p *Process) ([]Component, error)

// Main runs one service as its own process until ctx ends (SIGTERM): JSON
// logs to stderr, configuration from the environment, the admin endpoints on
// HINSCORE_ADMIN_ADDR (default defaultAdmin) and the components build returns.
func Main(ctx context.Context, name, defaultAdmin string, build BuildFunc) error {
	log := NewLogger(name, os.Stderr)
	env := NewEnv()
	p := &Process{Env: env, Log: log, Admin: NewAdmin(env.String(EnvAdminAddr, defaultAdmin), log)}
	comps, err := build(ctx, p)
	if err == nil {
		err = env.Err()
	}
	if err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
		defer cancel()
		_ = ShutdownAll(sctx, comps...)
		return fmt.Errorf("%s: %w", name, err)
	}
	return Run(ctx, log, ShutdownTimeout, append([]Component{p.Admin}, comps...)...)
}

// OnShutdown is a component that only releases something at shutdown (a
// connection the other components use: list it before them).
type OnShutdown func(ctx context.Context) error

// Start does nothing: what OnShutdown releases is already open.
func (OnShutdown) Start(context.Context) error { return nil }

// Shutdown releases.
func (f OnShutdown) Shutdown(ctx context.Context) error { return f(ctx) }
