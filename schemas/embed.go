// Package schemas ships the ClickHouse migrations in the binaries that apply them.
package schemas

import "embed"

// ClickHouse holds clickhouse/NNN_name.sql, applied in order of NNN.
//
//go:embed clickhouse/*.sql
var ClickHouse embed.FS
