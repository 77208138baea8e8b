package service

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env reads configuration from environment variables, collecting every bad
// value so that validation reports them all at once, each by name.
type Env struct {
	lookup func(string) (string, bool)
	errs   []error
}

// NewEnv reads from the process environment.
func NewEnv() *Env { return &Env{lookup: os.LookupEnv} }

// MapEnv reads from a map (tests and testdata).
func MapEnv(m map[string]string) *Env {
	return &Env{lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

// String returns the variable or def when unset or empty.
func (e *Env) String(name, def string) string {
	if v, ok := e.Lookup(name); ok {
		return v
	}
	return def
}

// Int returns the variable as an int.
func (e *Env) Int(name string, def int) int {
	v := e.String(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %q is not an integer", name, v))
		return def
	}
	return n
}

// Duration returns the variable as a time.Duration ("90s", "5m").
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v := e.String(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %q is not a duration", name, v))
		return def
	}
	return d
}

// List returns a comma-separated variable as a list.
func (e *Env) List(name string, def []string) []string {
	v := e.String(name, "")
	if v == "" {
		return def
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Fail records a validation error for a variable.
func (e *Env) Fail(name, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// Err returns every problem found, or nil.
func (e *Env) Err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return fmt.Errorf("config: %w", errors.Join(e.errs...))
}

// EnvFile reads an env file (KEY=VALUE lines, blank lines and # comments
// skipped), the form operators and testdata/ configurations are written in.
func EnvFile(path string) (*Env, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("service.EnvFile: %w", err)
	}
	m := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("service.EnvFile: %s:%d: %q is not KEY=VALUE", path, i+1, line)
		}
		m[strings.TrimSpace(k)] = v
	}
	return MapEnv(m), nil
}

// NewEnvWith reads overrides first, then the process environment: a
// command's flags over the variables of the services it runs.
func NewEnvWith(overrides map[string]string) *Env {
	return &Env{lookup: func(k string) (string, bool) {
		if v, ok := overrides[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}}
}

// Lookup returns the variable, trimmed, and whether it is set (not blank).
func (e *Env) Lookup(name string) (string, bool) {
	v, ok := e.lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}
