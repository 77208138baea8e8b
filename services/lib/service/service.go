// Package service holds what every hinscore service shares at run time: the
// component lifecycle, logging, the admin endpoints (/metrics, /healthz,
// /readyz), configuration from the environment and the clock.
package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// Component is one running part of a service. Start returns once the
// component is running; Shutdown stops it, flushes what it holds, is safe to
// call before Start and more than once.
type Component interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// Clock gives the time; services take one so tests control it.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current wall-clock time.
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits for d, or until ctx ends (its error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run starts the components in order, waits until ctx is done (SIGTERM in
// main), then shuts down what started, in reverse order, within
// shutdownTimeout. A component that fails to start stops the run.
func Run(ctx context.Context, log zerolog.Logger, shutdownTimeout time.Duration, comps ...Component) error {
	started := make([]Component, 0, len(comps))
	var runErr error
	for _, c := range comps {
		if err := c.Start(ctx); err != nil {
			runErr = fmt.Errorf("service.Run: start %T: %w", c, err)
			break
		}
		started = append(started, c)
	}
	if runErr == nil {
		log.Info().Msg("running")
		<-ctx.Done()
		log.Info().Msg("shutting down")
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	return errors.Join(runErr, ShutdownAll(sctx, started...))
}

// drainer is a component that can say "not ready" before anything stops
// (the admin server's /readyz).
type drainer interface{ Draining() }

// ShutdownAll shuts the components down in reverse order and joins their
// errors. Components that can drain are told first, so /readyz turns false
// before the others stop.
func ShutdownAll(ctx context.Context, comps ...Component) error {
	for _, c := range comps {
		if d, ok := c.(drainer); ok {
			d.Draining()
		}
	}
	var errs []error
	for i := len(comps) - 1; i >= 0; i-- {
		if err := comps[i].Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown %T: %w", comps[i], err))
		}
	}
	return errors.Join(errs...)
}
