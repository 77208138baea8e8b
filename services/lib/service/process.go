package service

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// ShutdownTimeout bounds the final flush on SIGTERM (Kubernetes' default
// grace period is 30s).
const ShutdownTimeout = 25 * time.Second

// Main runs one service as its own process until ctx ends (SIGTERM): its
// configuration read from the environment by load and refused when it
// holds what production forbids (CheckProduction), JSON logs to stderr,
// the connections the configuration declares (its Openers), the admin
// endpoints of its Process settings, and the service build makes of the
// configuration and those dependencies. A service with a Ready method
// answers /readyz through it.
func Main[C any, S Component](ctx context.Context, name string, load func(*Env) (C, error), build func(C, Deps) (S, error)) error {
	return Serve(ctx, name, NewEnv(), os.Stderr, load, build)
}

// Serve is Main with the environment and the log's writer given: a command
// whose flags override variables passes NewEnvWith.
func Serve[C any, S Component](ctx context.Context, name string, env *Env, logTo io.Writer, load func(*Env) (C, error), build func(C, Deps) (S, error)) error {
	cfg, err := load(env)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := CheckProduction(env, &cfg); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	proc := processOf(&cfg)
	log := newLogger(name, logTo, proc.LogLevel)
	admin := NewAdmin(proc.AdminAddr, log)
	deps := Deps{Log: log, Metrics: admin.Registry(), Clock: SystemClock{}}
	var opened []Component
	fail := func(err error) error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
		defer cancel()
		_ = ShutdownAll(sctx, opened...)
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, o := range openers(&cfg) {
		c, err := o.Open(ctx, name, cfg, &deps)
		if err != nil {
			return fail(err)
		}
		opened = append(opened, c)
		if c.Ready != nil {
			admin.AddReadiness(c.Name, c.Ready)
		}
	}
	s, err := build(cfg, deps)
	if err != nil {
		return fail(err)
	}
	if r, ok := any(s).(interface{ Ready(context.Context) error }); ok {
		admin.AddReadiness(name, r.Ready)
	}
	return Run(ctx, log, ShutdownTimeout, append(append([]Component{admin}, opened...), s)...)
}

// OnShutdown is a component that only releases something at shutdown (a
// connection the other components use: list it before them).
type OnShutdown func(ctx context.Context) error

// Start does nothing: what OnShutdown releases is already open.
func (OnShutdown) Start(context.Context) error { return nil }

// Shutdown releases.
func (f OnShutdown) Shutdown(ctx context.Context) error { return f(ctx) }
