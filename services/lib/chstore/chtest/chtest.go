// Package chtest gives each test its own ClickHouse database on the server
// named by HINSCORE_TEST_CLICKHOUSE_DSN, dropped when the test ends, so tests
// of different packages can run in parallel against one shared server.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/domain/testenv"
)

// EnvDSN names the variable that points tests at a ClickHouse server.
const EnvDSN = "HINSCORE_TEST_CLICKHOUSE_DSN"

// ServerDSN returns the test server's DSN. Without one the test fails under
// make test or CI (a run there must not pass by skipping: testenv) and is
// skipped otherwise.
func ServerDSN(t testing.TB) chstore.DSN {
	t.Helper()
	s := testenv.Getenv(t, EnvDSN, "start a server with scripts/clickhouse.sh start")
	d, err := chstore.ParseDSN(s)
	if err != nil {
		t.Fatalf("%s: %v", EnvDSN, err)
	}
	return d
}

// EmptyDatabase creates a fresh, empty database (no migrations) and returns
// a connection to it. Both are removed when the test ends.
func EmptyDatabase(t testing.TB) (driver.Conn, chstore.DSN) {
	t.Helper()
	d := ServerDSN(t)
	d.Database = "hinscore_test_" + randomHex(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := chstore.Connect(ctx, d, "default")
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	if err := admin.Exec(ctx, "CREATE DATABASE "+d.Database); err != nil {
		_ = admin.Close()
		t.Fatalf("chtest: create database %s: %v", d.Database, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+d.Database); err != nil {
			t.Errorf("chtest: drop database %s: %v", d.Database, err)
		}
		_ = admin.Close()
	})
	conn, err := chstore.Connect(ctx, d, d.Database)
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, d
}

// Database creates a fresh database through chstore.Open, so it carries
// every migration of the schemas module, and returns a connection to it.
func Database(t testing.TB) (driver.Conn, chstore.DSN) {
	t.Helper()
	d := ServerDSN(t)
	d.Database = "hinscore_test_" + randomHex(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := chstore.OpenDSN(ctx, d)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := chstore.Connect(ctx, d, "default")
		if err != nil {
			t.Errorf("chtest: %v", err)
			return
		}
		defer admin.Close()
		if err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+d.Database); err != nil {
			t.Errorf("chtest: drop database %s: %v", d.Database, err)
		}
	})
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, d
}

func randomHex(t testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("chtest: %v", err)
	}
	return hex.EncodeToString(b[:])
}
