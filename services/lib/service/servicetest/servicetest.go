// Package servicetest holds what the services' configuration tests share.
package servicetest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/service"
)

// ConfigFile reads testdata/config/<name>, an env file (KEY=VALUE lines)
// of the package under test, failing the test when it cannot.
func ConfigFile(t testing.TB, name string) *service.Env {
	t.Helper()
	env, err := service.EnvFile(filepath.Join("testdata", "config", name))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// Start starts a component for a test and shuts it down, within 10 s,
// when the test ends.
func Start(t testing.TB, c service.Component) {
	t.Helper()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Shutdown(ctx)
	})
}
