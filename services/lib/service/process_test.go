package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Dialer stands for bus.NATS in a configuration: it records its opening
// and closing, and gives the service its dependency.
type Dialer struct {
	Addr string `env:"T_OPENER" default:"here"`
}

func (o Dialer) Open(_ context.Context, name string, cfg any, deps *Deps) (Connection, error) {
	log := cfg.(mainConfig).log
	*log = append(*log, "open "+o.Addr+" for "+name)
	deps.Clock = fixedClock{}
	return Connection{Name: "opener", Ready: func(context.Context) error { return nil },
		Close: func(context.Context) error { *log = append(*log, "close"); return nil }}, nil
}

type fixedClock struct{}

func (fixedClock) Now() time.Time { return time.Unix(0, 0) }

type mainConfig struct {
	Dialer
	Process `defaults:"HINSCORE_ADMIN_ADDR=127.0.0.1:0"`
	log     *[]string
}

// TestServe composes a service as every standalone one is: the
// configuration loaded, its connections opened (the service gets them in
// its Deps), the service built and run, and all of it closed in reverse.
func TestServe(t *testing.T) {
	var log []string
	load := func(env *Env) (mainConfig, error) {
		c := mainConfig{log: &log}
		return c, Load(env, &c)
	}
	build := func(c mainConfig, d Deps) (recorder, error) {
		if d.Clock != (fixedClock{}) || d.Metrics == nil {
			t.Errorf("deps %+v: want the opener's clock and the admin registry", d)
		}
		return recorder{"svc", c.log, false}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Serve(ctx, "test", MapEnv(map[string]string{"T_OPENER": "there"}), &strings.Builder{}, load, build); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(log, ","); got != "open there for test,start svc,stop svc,close" {
		t.Fatalf("order = %s", got)
	}
	if err := Serve(ctx, "test", MapEnv(map[string]string{"HINSCORE_LOG_LEVEL": "debug", "T_OPENER": ""}), &strings.Builder{}, load,
		func(mainConfig, Deps) (recorder, error) { return recorder{}, errors.New("no") }); err == nil || !strings.HasPrefix(err.Error(), "test: no") {
		t.Fatalf("a build error: %v", err)
	}
}

func TestProcessVariables(t *testing.T) {
	if s := Describe(Process{}); len(s) != 2 || s[0].Name != EnvAdminAddr {
		t.Fatalf("declared %+v, want %s first", s, EnvAdminAddr)
	}
}
