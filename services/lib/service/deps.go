package service

import (
	"context"
	"reflect"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Deps are what a service is built from besides its configuration: the
// connections it uses, its log, where its metrics go and its clock. A
// standalone process opens the connections from its configuration (Main);
// `hinscore up` and the tests share theirs among the services they
// compose. Each service's constructor says which it needs and what it
// does with a zero value.
type Deps struct {
	JetStream  jetstream.JetStream
	ClickHouse driver.Conn
	Log        zerolog.Logger
	Metrics    prometheus.Registerer
	Clock      Clock
}

// Opener is a group of settings that opens a connection for a standalone
// service (bus.NATS, chstore.ClickHouse). Main opens every one the
// configuration holds, in declaration order, and puts the connection in
// deps; the service's components come after it. name is the service's;
// cfg its whole configuration, for a setting that depends on another (the
// partition count the NATS set-up records).
type Opener interface {
	Open(ctx context.Context, name string, cfg any, deps *Deps) (Connection, error)
}

// Connection is what an Opener opened: a component that closes it at
// shutdown and, when Ready is set, answers /readyz under Name.
type Connection struct {
	Name  string
	Ready ReadinessCheck
	Close func(ctx context.Context) error
}

// Start does nothing: the connection is open.
func (Connection) Start(context.Context) error { return nil }

// Shutdown closes the connection.
func (c Connection) Shutdown(ctx context.Context) error { return c.Close(ctx) }

// openers returns the groups of cfg (a pointer to a configuration) that
// open connections, outermost and first declared first.
func openers(cfg any) []Opener {
	var out []Opener
	eachGroup(reflect.ValueOf(cfg).Elem(), func(v reflect.Value) {
		if o, ok := v.Interface().(Opener); ok {
			out = append(out, o)
		}
	})
	return out
}

// processOf returns the Process settings of cfg (a pointer to a
// configuration), zero when it has none.
func processOf(cfg any) Process {
	var p Process
	eachGroup(reflect.ValueOf(cfg).Elem(), func(v reflect.Value) {
		if v.Type() == reflect.TypeFor[Process]() {
			p = v.Interface().(Process)
		}
	})
	return p
}

// eachGroup calls fn with every group of settings nested in the struct v.
func eachGroup(v reflect.Value, fn func(reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if _, ok := f.Tag.Lookup("env"); ok || !f.IsExported() || !isGroup(f.Type) {
			continue
		}
		fn(v.Field(i))
		eachGroup(v.Field(i), fn)
	}
}
