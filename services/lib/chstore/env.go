package chstore

import (
	"context"
	"errors"

	"github.com/hinscore/hinscore/services/lib/service"
)

// EnvDSN names the variable of ClickHouse.DSN.
const EnvDSN = "HINSCORE_CLICKHOUSE_DSN"

// ClickHouse is where a service's ClickHouse database is, the setting of
// every service that reads or writes it. It opens the service's
// connection (service.Opener).
type ClickHouse struct {
	DSN DSN `env:"HINSCORE_CLICKHOUSE_DSN" default:"clickhouse://127.0.0.1:9000/hinscore" help:"clickhouse://[user[:pass]@]host:port/database (native protocol); ?schema=check only checks the schema (a cluster's, applied by an administrator) instead of creating and migrating the database; secure=true for TLS (port 9440 by default) with ca_file=PATH or the system's CAs (skip_verify=true: unverified, tests only); password_file=PATH reads the password from a file"`
}

// UnmarshalText parses a DSN (ParseDSN).
func (d *DSN) UnmarshalText(b []byte) error {
	parsed, err := ParseDSN(string(b))
	if err != nil {
		return err
	}
	*d = parsed
	return nil
}

// Open opens the database (OpenDSN: created and migrated when needed, or
// only checked) and puts the connection in deps; /readyz pings it.
func (c ClickHouse) Open(ctx context.Context, name string, cfg any, deps *service.Deps) (service.Connection, error) {
	if c.DSN.Host == "" {
		return service.Connection{}, errors.New("chstore.ClickHouse.Open: " + EnvDSN + " is not set")
	}
	conn, err := OpenDSN(ctx, c.DSN)
	if err != nil {
		return service.Connection{}, err
	}
	deps.ClickHouse = conn
	deps.Log.Info().Str("clickhouse", c.DSN.String()).Msg("ClickHouse open")
	return service.Connection{Name: "clickhouse", Ready: conn.Ping, Close: func(context.Context) error { return conn.Close() }}, nil
}
