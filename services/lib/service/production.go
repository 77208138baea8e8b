package service

import (
	"fmt"
	"reflect"
)

// EnvEnvironment names the variable that says where a process runs:
// "production" (also when unset) or "development" (the demo, the tests, a
// developer's machine). Production refuses what only development may use
// (the public development keys, listeners anyone may write to); the demo
// and the tests say "development" explicitly.
const EnvEnvironment = "HINSCORE_ENV"

// The environments.
const (
	Production  = "production"
	Development = "development"
)

// ProductionChecker is a group of settings that knows what production
// forbids of it: ProductionProblems adds each under its variable's name.
type ProductionChecker interface {
	ProductionProblems(ps *Problems)
}

// ProductionRefuser is a whole configuration that knows what production
// forbids of its own settings (a name of its own, as the configuration
// would otherwise inherit ProductionProblems from a group it embeds).
type ProductionRefuser interface {
	ProductionRefusals(ps *Problems)
}

// EnvironmentOf reads HINSCORE_ENV: production when unset, an error for a
// value that is neither.
func EnvironmentOf(env *Env) (string, error) {
	v, _ := env.Lookup(EnvEnvironment)
	switch v {
	case "", Production:
		return Production, nil
	case Development:
		return Development, nil
	}
	return "", fmt.Errorf("%s: %q: want %s or %s", EnvEnvironment, v, Production, Development)
}

// CheckProduction returns, in production, an error naming everything the
// configurations cfgs (pointers to configurations; nil ones skipped) hold
// that production forbids: each of their groups that is a
// ProductionChecker and each configuration that is a ProductionRefuser
// are asked. In development it returns nil.
func CheckProduction(env *Env, cfgs ...any) error {
	environment, err := EnvironmentOf(env)
	if err != nil {
		return err
	}
	return Refuse(environment, cfgs...)
}

// Refuse is CheckProduction in the environment given: a command that is
// development by nature (the demo) says so here.
func Refuse(environment string, cfgs ...any) error {
	if environment == Development {
		return nil
	}
	var ps Problems
	for _, cfg := range cfgs {
		v := reflect.ValueOf(cfg)
		if !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() {
			continue
		}
		v = v.Elem()
		eachGroup(v, func(g reflect.Value) {
			if c, ok := g.Interface().(ProductionChecker); ok {
				c.ProductionProblems(&ps)
			}
		})
		if c, ok := v.Interface().(ProductionRefuser); ok {
			c.ProductionRefusals(&ps)
		}
	}
	if err := dedupe(ps).Err(); err != nil {
		return fmt.Errorf("refusing to start in production (%s unset or %s; the demo and the tests say %s): %w",
			EnvEnvironment, Production, Development, err)
	}
	return nil
}

// ProductionProblems refuses the public development key.
func (p PatientTokens) ProductionProblems(ps *Problems) {
	if p.IsDev() {
		ps.Add("HINSCORE_PATIENT_KEY", "unset: the public development key would make every patient token reversible by anyone")
	}
}

// dedupe drops repeated problems: a group embedded in another group is
// asked twice, once through the outer one's promoted method.
func dedupe(ps Problems) Problems {
	seen := map[string]bool{}
	var out Problems
	for _, p := range ps {
		if !seen[p.Error()] {
			seen[p.Error()] = true
			out = append(out, p)
		}
	}
	return out
}
