package chstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hinscore/hinscore/schemas"
)

// Open connects to the database a DSN names over the native protocol,
// creating the database when it is missing (through the "default" database,
// which every server has) and applying the migrations of schemas.ClickHouse.
// The caller closes the returned connection.
func Open(ctx context.Context, dsn string) (driver.Conn, DSN, error) {
	d, err := ParseDSN(dsn)
	if err != nil {
		return nil, DSN{}, fmt.Errorf("chstore.Open: %w", err)
	}
	conn, err := OpenDSN(ctx, d)
	if err != nil {
		return nil, d, err
	}
	return conn, d, nil
}

// OpenDSN is Open for a parsed DSN.
func OpenDSN(ctx context.Context, d DSN) (driver.Conn, error) {
	if !validIdent(d.Database) {
		return nil, fmt.Errorf("chstore.Open: database %q must be [A-Za-z0-9_]+", d.Database)
	}
	if d.CheckSchema {
		conn, err := Connect(ctx, d, d.Database)
		if err != nil {
			return nil, fmt.Errorf("chstore.Open: %w", err)
		}
		if err := CheckSchema(ctx, conn, schemas.ClickHouse); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("chstore.Open: %w", err)
		}
		return conn, nil
	}
	conn, err := Connect(ctx, d, "default")
	if err != nil {
		return nil, fmt.Errorf("chstore.Open: %w", err)
	}
	// The name passed validIdent, so splicing it into DDL is safe.
	err = conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+d.Database)
	_ = conn.Close()
	if err != nil {
		return nil, fmt.Errorf("chstore.Open: create database %s: %w", d.Database, err)
	}
	conn, err = Connect(ctx, d, d.Database)
	if err != nil {
		return nil, fmt.Errorf("chstore.Open: %w", err)
	}
	if err := Migrate(ctx, conn, d.Database, schemas.ClickHouse); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("chstore.Open: %w", err)
	}
	return conn, nil
}

// Connect opens a connection pool to one database of the server d names and
// checks that the server answers. It neither creates nor migrates anything.
func Connect(ctx context.Context, d DSN, database string) (driver.Conn, error) {
	tlsConfig, err := d.TLSConfig()
	if err != nil {
		return nil, fmt.Errorf("chstore.Connect %s: %w", d, err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		TLS:      tlsConfig,
		Protocol: clickhouse.Native,
		Addr:     []string{d.Addr()},
		Auth:     clickhouse.Auth{Database: database, Username: d.User, Password: d.Password},
		ClientInfo: clickhouse.ClientInfo{Products: []struct{ Name, Version string }{
			{Name: "hinscore", Version: "1"},
		}},
		Compression:     &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		DialTimeout:     5 * time.Second,
		ConnMaxLifetime: time.Hour,
		MaxOpenConns:    8,
		MaxIdleConns:    4,
	})
	if err != nil {
		return nil, fmt.Errorf("chstore.Connect %s: %w", d, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("chstore.Connect %s: %w", d, err)
	}
	return conn, nil
}

// TLSConfig is the client TLS of a secure DSN (nil for plain TCP): the
// server's certificate verified for its host name against the system's
// CAs or only CAFile's, unless SkipVerify.
func (d DSN) TLSConfig() (*tls.Config, error) {
	if !d.Secure {
		return nil, nil
	}
	c := &tls.Config{ServerName: d.Host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: d.SkipVerify}
	if d.CAFile == "" {
		return c, nil
	}
	pem, err := readFileAtMost(d.CAFile, 4<<20)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	c.RootCAs = x509.NewCertPool()
	if !c.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", d.CAFile)
	}
	return c, nil
}

// ServerVersion returns the major and minor version of the server, for
// features that only newer servers have (18.16 is the oldest supported).
func ServerVersion(ctx context.Context, conn driver.Conn) (major, minor int, err error) {
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return 0, 0, fmt.Errorf("chstore.ServerVersion: %w", err)
	}
	major, minor, err = parseVersion(v)
	if err != nil {
		return 0, 0, fmt.Errorf("chstore.ServerVersion: %w", err)
	}
	return major, minor, nil
}

// parseVersion reads the major and minor numbers of "18.16.1" or "24.8.4.13".
func parseVersion(v string) (major, minor int, err error) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("version %q: want major.minor[...]", v)
	}
	if major, err = strconv.Atoi(parts[0]); err != nil || major < 0 {
		return 0, 0, fmt.Errorf("version %q: bad major", v)
	}
	if minor, err = strconv.Atoi(parts[1]); err != nil || minor < 0 {
		return 0, 0, fmt.Errorf("version %q: bad minor", v)
	}
	return major, minor, nil
}
