package chstore

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hinscore/hinscore/services/lib/service"
)

// EnvDSN names the variable that points a standalone service at ClickHouse.
const EnvDSN = "HINSCORE_CLICKHOUSE_DSN"

// OpenFromEnv opens HINSCORE_CLICKHOUSE_DSN (default
// clickhouse://127.0.0.1:9000/hinscore), creating and migrating the database
// when needed, and returns the connection with a component that closes it at
// shutdown (list it before the components that use it).
func OpenFromEnv(ctx context.Context, env *service.Env) (driver.Conn, DSN, service.Component, error) {
	conn, d, err := Open(ctx, env.String(EnvDSN, "clickhouse://127.0.0.1:9000/hinscore"))
	if err != nil {
		return nil, DSN{}, nil, err
	}
	return conn, d, service.OnShutdown(func(context.Context) error { return conn.Close() }), nil
}
