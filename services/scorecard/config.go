package scorecard

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
)

// The variables of ServiceConfig and RunCLI, by name (for the command's
// flags, which override them).
const (
	EnvEvery      = "HINSCORE_SCORECARD_EVERY"
	EnvOut        = "HINSCORE_SCORECARD_OUT"
	EnvPeriods    = "HINSCORE_SCORECARD_PERIODS"
	EnvClickHouse = chstore.EnvDSN
	EnvAdminAddr  = service.EnvAdminAddr
	EnvCloseAfter = "HINSCORE_SCORECARD_CLOSE_AFTER"
)

// Bounds of ServiceConfig.Every: below the lower one runs would follow each
// other back to back; a service that runs less than daily is a cron job.
const (
	minEvery = 10 * time.Millisecond
	maxEvery = 24 * time.Hour
	// CloseAfter is a margin on top of the SLAs; a month of it would be a
	// mistake.
	maxCloseAfter = 720 * time.Hour
)

// ServiceConfig is the configuration of the scorecard service: its own
// settings, then those it shares (ClickHouse, NATS, the process).
type ServiceConfig struct {
	// Every is the time between the starts of two runs. A run that takes
	// longer delays the next one rather than overlapping it.
	Every time.Duration `env:"HINSCORE_SCORECARD_EVERY" default:"1m" help:"interval between run starts, 10ms–24h (the standalone binary takes it from --every)"`
	// Out is the directory the cards are written under as
	// <period>/<network>.json.
	Out string `env:"HINSCORE_SCORECARD_OUT" default:"out" help:"output directory; --out overrides"`
	// Granularities are the periods built on every run, each of day, week
	// and month at most once. Their labels differ (2026-11-22, 2026-W47,
	// 2026-11), so their files never collide.
	Granularities []string `env:"HINSCORE_SCORECARD_PERIODS" default:"day,week,month" help:"granularities, each at most once; --period overrides"`
	// CloseAfter is the margin, in event time (the latest requested_at
	// seen), between the moment every request of a period is decided and
	// the period's close: a period closes when the event time reaches its
	// end + the longest SLA + grace of the stored outcomes + CloseAfter. It
	// covers the linker's lateness and the pipeline's lag; the SLAs
	// themselves (up to 30 days for patient access) come from the outcomes.
	// A closed period's cards are final, stored in the scorecards table and
	// published.
	CloseAfter time.Duration `env:"HINSCORE_SCORECARD_CLOSE_AFTER" default:"10m" help:"margin, in event time, after a period's end + the longest SLA + grace of the outcomes before it closes (the linker's lateness, the pipeline's lag), 0–720h"`

	// ClickHouse has no default here: the command asks for it (--clickhouse).
	chstore.ClickHouse `defaults:"HINSCORE_CLICKHOUSE_DSN=" note:"HINSCORE_CLICKHOUSE_DSN=required, --clickhouse overrides"`
	// NATS: the service (--every) publishes every closed card on
	// scorecards.<network>; the one-shot command does not connect.
	bus.NATS        `note:"NATS_URL=with --every, every closed card is published on scorecards.<network> (stream SCORECARDS): the one-shot command does not connect"`
	service.Process `defaults:"HINSCORE_ADMIN_ADDR=127.0.0.1:9104" note:"HINSCORE_ADMIN_ADDR=with --every, --admin overrides"`
}

// DefaultServiceConfig returns the documented defaults.
func DefaultServiceConfig() ServiceConfig {
	var c ServiceConfig
	service.Defaults(&c)
	return c
}

// ServiceConfigFromEnv reads the service configuration; the error names
// every bad variable.
func ServiceConfigFromEnv(env *service.Env) (ServiceConfig, error) {
	return service.LoadOver(env, DefaultServiceConfig(), "scorecard.ServiceConfigFromEnv")
}

// Validate checks the service's own settings, naming each variable (a
// variable that did not parse left its default, so the loader's error
// names it once).
func (c ServiceConfig) Validate() error {
	return c.validate(map[string]string{"Every": EnvEvery, "Out": EnvOut, "Granularities": EnvPeriods, "CloseAfter": EnvCloseAfter})
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
