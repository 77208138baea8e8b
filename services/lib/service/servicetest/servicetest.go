// Package servicetest holds what the services' configuration tests share.
package servicetest

import (
	"path/filepath"
	"testing"

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
