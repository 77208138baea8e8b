package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how a test ended instead of
// ending the goroutine.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Skip(args ...any)                  { r.skip = args[0].(string) }

func TestMissingSkipsOrFails(t *testing.T) {
	for _, c := range []struct {
		require, ci string
		fails       bool
	}{
		{"", "", false},
		{"0", "", false},
		{"1", "", true},
		{"", "true", true},
		{"0", "1", true},
	} {
		t.Setenv(EnvRequire, c.require)
		t.Setenv("CI", c.ci)
		r := &recorder{TB: t}
		if v := Getenv(r, "HINSCORE_TEST_SURELY_UNSET", "start one"); v != "" {
			t.Errorf("value %q of an unset variable", v)
		}
		switch {
		case c.fails && !strings.Contains(r.fatal, "HINSCORE_TEST_SURELY_UNSET is not set; start one ("+EnvRequire+" or CI is set"):
			t.Errorf("%s=%q CI=%q: skipped (%q), want a failure", EnvRequire, c.require, c.ci, r.skip)
		case !c.fails && (r.skip == "" || r.fatal != ""):
			t.Errorf("%s=%q CI=%q: fatal %q, want a skip", EnvRequire, c.require, c.ci, r.fatal)
		case !c.fails && !strings.Contains(r.skip, "HINSCORE_TEST_SURELY_UNSET is not set; start one"):
			t.Errorf("skip message %q", r.skip)
		}
	}
	t.Setenv("HINSCORE_TEST_SURELY_SET", "x")
	if v := Getenv(&recorder{TB: t}, "HINSCORE_TEST_SURELY_SET", ""); v != "x" {
		t.Errorf("Getenv = %q", v)
	}
}
