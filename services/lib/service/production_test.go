package service

import (
	"context"
	"strings"
	"testing"
)

// refusingConfig is a configuration with the patient key and a setting of
// its own that production refuses.
type refusingConfig struct {
	Open bool `env:"T_OPEN" help:"anyone may write"`
	PatientTokens
}

func (c refusingConfig) ProductionRefusals(ps *Problems) {
	if c.Open {
		ps.Add("T_OPEN", "anyone may write")
	}
}

// TestCheckProduction: unset or "production", the public development key
// and what the configuration itself refuses are named, each once; in
// "development" nothing is refused; another value is an error.
func TestCheckProduction(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want []string // nil: accepted
	}{
		{map[string]string{}, []string{"HINSCORE_PATIENT_KEY", "T_OPEN"}},
		{map[string]string{EnvEnvironment: Production}, []string{"HINSCORE_PATIENT_KEY", "T_OPEN"}},
		{map[string]string{"T_OPEN": "false"}, []string{"HINSCORE_PATIENT_KEY"}},
		{map[string]string{"T_OPEN": "false", "HINSCORE_PATIENT_KEY": "a key of sixteen bytes or more"}, nil},
		{map[string]string{EnvEnvironment: Development}, nil},
		{map[string]string{EnvEnvironment: "staging"}, []string{"HINSCORE_ENV"}},
	} {
		env := MapEnv(c.env)
		cfg := refusingConfig{Open: true}
		Defaults(&cfg)
		if err := Load(env, &cfg); err != nil {
			t.Fatal(err)
		}
		err := CheckProduction(env, &cfg, (*refusingConfig)(nil))
		if (err == nil) != (c.want == nil) {
			t.Errorf("%v: %v", c.env, err)
			continue
		}
		for _, w := range c.want {
			if strings.Count(err.Error(), w+":") != 1 {
				t.Errorf("%v: %v, want %s named once", c.env, err, w)
			}
		}
	}
}

// TestServeRefusesInProduction: a service whose configuration production
// refuses is not built.
func TestServeRefusesInProduction(t *testing.T) {
	built := false
	load := func(env *Env) (refusingConfig, error) {
		var c refusingConfig
		Defaults(&c)
		return c, Load(env, &c)
	}
	build := func(refusingConfig, Deps) (Component, error) { built = true; return OnShutdown(nil), nil }
	err := Serve(context.Background(), "t", MapEnv(map[string]string{"T_OPEN": "true"}), &strings.Builder{}, load, build)
	if err == nil || !strings.Contains(err.Error(), "t: refusing to start in production") || built {
		t.Errorf("Serve: %v (built %v)", err, built)
	}
}
