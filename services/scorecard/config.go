package scorecard

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/service"
)

// Environment variables read by ServiceConfigFromEnv and RunCLI.
const (
	EnvEvery      = "HINSCORE_SCORECARD_EVERY"
	EnvOut        = "HINSCORE_SCORECARD_OUT"
	EnvPeriods    = "HINSCORE_SCORECARD_PERIODS"
	EnvClickHouse = "HINSCORE_CLICKHOUSE_DSN"
	EnvAdminAddr  = "HINSCORE_ADMIN_ADDR"
	EnvCloseAfter = "HINSCORE_SCORECARD_CLOSE_AFTER"
)

// DefaultAdminAddr is where the standalone service serves /metrics,
// /healthz and /readyz unless HINSCORE_ADMIN_ADDR or --admin says otherwise.
const DefaultAdminAddr = "127.0.0.1:9104"

// Bounds of ServiceConfig.Every: below the lower one runs would follow each
// other back to back; a service that runs less than daily is a cron job.
const (
	minEvery = 10 * time.Millisecond
	maxEvery = 24 * time.Hour
	// CloseAfter is a margin on top of the SLAs; a month of it would be a
	// mistake.
	maxCloseAfter = 720 * time.Hour
)

// ServiceConfig is the configuration of the scorecard service.
type ServiceConfig struct {
	// Every is the time between the starts of two runs
	// (HINSCORE_SCORECARD_EVERY, default 1m). A run that takes longer
	// delays the next one rather than overlapping it.
	Every time.Duration
	// Out is the directory the cards are written under as
	// <period>/<network>.json (HINSCORE_SCORECARD_OUT, default "out").
	Out string
	// Granularities are the periods built on every run, each of day, week
	// and month at most once (HINSCORE_SCORECARD_PERIODS, comma-separated,
	// default day,week,month). Their labels differ (2026-11-22, 2026-W47,
	// 2026-11), so their files never collide.
	Granularities []string
	// CloseAfter is the margin, in event time (the latest requested_at
	// seen), between the moment every request of a period is decided and
	// the period's close (HINSCORE_SCORECARD_CLOSE_AFTER, default 10m,
	// 0-720h): a period closes when the event time reaches its end + the
	// longest SLA + grace of the stored outcomes + CloseAfter. It covers the
	// linker's lateness and the pipeline's lag; the SLAs themselves (up to
	// 30 days for patient access) come from the outcomes. A closed period's
	// cards are final, stored in the scorecards table and published.
	CloseAfter time.Duration
	// JetStream, when set, receives every closed card (the operator's copy,
	// protobuf) on scorecards.<network> (stream SCORECARDS). Nil: cards are
	// stored and written but not published.
	JetStream jetstream.JetStream
}

// DefaultServiceConfig returns the documented defaults.
func DefaultServiceConfig() ServiceConfig {
	return ServiceConfig{Every: time.Minute, Out: "out", Granularities: []string{Day, Week, Month}, CloseAfter: 10 * time.Minute}
}

// ServiceConfigFromEnv reads the service configuration; the error names
// every bad variable.
func ServiceConfigFromEnv(env *service.Env) (ServiceConfig, error) {
	d := DefaultServiceConfig()
	c := ServiceConfig{
		Every:         env.Duration(EnvEvery, d.Every),
		Out:           env.String(EnvOut, d.Out),
		Granularities: env.List(EnvPeriods, d.Granularities),
		CloseAfter:    env.Duration(EnvCloseAfter, d.CloseAfter),
	}
	// A variable that did not parse left its default in c, so validating c
	// adds only the problems of the variables that did parse.
	if err := errors.Join(env.Err(), c.validate(map[string]string{
		"Every": EnvEvery, "Out": EnvOut, "Granularities": EnvPeriods, "CloseAfter": EnvCloseAfter,
	})); err != nil {
		return ServiceConfig{}, fmt.Errorf("scorecard.ServiceConfigFromEnv: %w", err)
	}
	return c, nil
}

// validate checks every field; names maps a field to the name to report
// (its environment variable when the config came from there).
func (c ServiceConfig) validate(names map[string]string) error {
	name := func(field string) string {
		if n, ok := names[field]; ok {
			return n
		}
		return field
	}
	var errs []error
	if c.Every < minEvery || c.Every > maxEvery {
		errs = append(errs, fmt.Errorf("%s: %s is outside %s-%s", name("Every"), c.Every, minEvery, maxEvery))
	}
	if strings.TrimSpace(c.Out) == "" {
		errs = append(errs, fmt.Errorf("%s: empty, want a directory", name("Out")))
	}
	if c.CloseAfter < 0 || c.CloseAfter > maxCloseAfter {
		errs = append(errs, fmt.Errorf("%s: %s is outside 0-%s", name("CloseAfter"), c.CloseAfter, maxCloseAfter))
	}
	if err := checkGranularities(c.Granularities); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name("Granularities"), err))
	}
	return errors.Join(errs...)
}

// checkGranularities accepts a non-empty list of day, week and month, each
// at most once (twice would build and write the same cards twice).
func checkGranularities(gs []string) error {
	if len(gs) == 0 {
		return errors.New("empty, want some of day, week, month")
	}
	for i, g := range gs {
		if _, ok := periodExprs[g]; !ok {
			return fmt.Errorf("%q: want day, week or month", g)
		}
		if slices.Contains(gs[:i], g) {
			return fmt.Errorf("%q appears twice", g)
		}
	}
	return nil
}
