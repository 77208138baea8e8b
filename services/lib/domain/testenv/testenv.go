// Package testenv decides what a test does when something it needs from
// the machine is missing (a ClickHouse server, Chromium, a program on the
// PATH): it is skipped on a developer's machine, and it fails where a
// passing run must mean every test ran, that is under `make test`
// (scripts/test.sh sets HINSCORE_TEST_REQUIRE=1) or in CI (CI set). It is
// imported by tests only.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// EnvRequire names the variable that turns a missing dependency from a
// skip into a failure. scripts/test.sh sets it.
const EnvRequire = "HINSCORE_TEST_REQUIRE"

// Required reports whether a missing dependency fails the test:
// HINSCORE_TEST_REQUIRE or CI is set (to anything but "" or "0").
func Required() bool {
	for _, name := range []string{EnvRequire, "CI"} {
		if v := os.Getenv(name); v != "" && v != "0" {
			return true
		}
	}
	return false
}

// Missing ends a test that cannot run without something: with Fatal when
// Required, else with Skip. The message says what is missing and how to
// get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (%s or CI is set: this test may not be skipped)", msg, EnvRequire)
	}
	t.Skip(msg)
}

// Getenv returns the value of a variable the test needs (a server's
// address, a program's path), or ends the test through Missing when it is
// unset; hint says how to provide it.
func Getenv(t testing.TB, name, hint string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, "%s is not set; %s", name, hint)
	}
	return v
}
