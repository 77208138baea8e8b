package chstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hinscore/hinscore/schemas"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "empty", in: "", want: nil},
		{name: "comments only", in: "-- a\n  -- b\n\n", want: nil},
		{name: "two statements", in: "-- header\nCREATE TABLE a (x UInt8)\nENGINE = Memory;\n\nSELECT 1;\n",
			want: []string{"CREATE TABLE a (x UInt8)\nENGINE = Memory", "SELECT 1"}},
		{name: "semicolon mid-line stays", in: "SELECT ';' AS s, 1\n  ;  \n",
			want: []string{"SELECT ';' AS s, 1"}},
		{name: "comment inside statement", in: "SELECT\n-- the answer\n42;\n",
			want: []string{"SELECT\n42"}},
		{name: "last without semicolon", in: "SELECT 1;\nSELECT 2\n", want: []string{"SELECT 1", "SELECT 2"}},
		{name: "crlf", in: "SELECT 1;\r\nSELECT 2;\r\n", want: []string{"SELECT 1", "SELECT 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := chstore.SplitStatements(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("SplitStatements(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMigrateRejectsBadFileSets(t *testing.T) {
	tests := []struct {
		name  string
		files fstest.MapFS
		want  string
	}{
		{name: "no directory", files: fstest.MapFS{"other/001_a.sql": {Data: []byte("SELECT 1;")}}, want: "read clickhouse"},
		{name: "bad name", files: fstest.MapFS{"clickhouse/1-a.sql": {Data: []byte("SELECT 1;")}}, want: "1-a.sql: name must be"},
		{name: "upper case", files: fstest.MapFS{"clickhouse/001_Core.sql": {Data: []byte("SELECT 1;")}}, want: "001_Core.sql"},
		{name: "version zero", files: fstest.MapFS{"clickhouse/000_a.sql": {Data: []byte("SELECT 1;")}}, want: "000_a.sql: version"},
		{name: "duplicate version", files: fstest.MapFS{
			"clickhouse/001_a.sql": {Data: []byte("SELECT 1;")},
			"clickhouse/1_b.sql":   {Data: []byte("SELECT 1;")},
		}, want: "already used by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The file set is checked before the connection is used.
			err := chstore.Migrate(context.Background(), nil, "hinscore", tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Migrate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if err := chstore.Migrate(context.Background(), nil, "a;b", fstest.MapFS{}); err == nil {
		t.Fatal("Migrate accepted database name a;b")
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func migrationCount(t *testing.T, ctx context.Context, conn driver.Conn, db string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".schema_migrations").Scan(&n); err != nil {
		t.Fatalf("count schema_migrations: %v", err)
	}
	return n
}

func tables(t *testing.T, ctx context.Context, conn driver.Conn, db string) []string {
	t.Helper()
	var names []string
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? ORDER BY name", db)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func TestMigrateFreshThenNoop(t *testing.T) {
	conn, d := chtest.EmptyDatabase(t)
	ctx := ctxT(t)
	if err := chstore.Migrate(ctx, conn, d.Database, schemas.ClickHouse); err != nil {
		t.Fatalf("first Migrate: %v", err)
	}
	files, err := fs.Glob(schemas.ClickHouse, "clickhouse/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("schemas.ClickHouse holds no migrations: %v", err)
	}
	applied, err := chstore.Applied(ctx, conn, d.Database)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(files) {
		t.Fatalf("applied %v, want one per file of %v", applied, files)
	}
	// Each record carries the file's name and sha256.
	rows, err := conn.Query(ctx, "SELECT name, checksum FROM schema_migrations")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, sum string
		if err := rows.Scan(&name, &sum); err != nil {
			t.Fatal(err)
		}
		b, err := fs.ReadFile(schemas.ClickHouse, "clickhouse/"+name)
		if err != nil {
			t.Fatalf("recorded %q is not a migration file: %v", name, err)
		}
		if want := sha256.Sum256(b); sum != hex.EncodeToString(want[:]) {
			t.Errorf("%s: recorded checksum %s, file has %x", name, sum, want)
		}
	}
	rows.Close()
	got := tables(t, ctx, conn, d.Database)
	for _, want := range []string{"events", "exchange_events", "exchange_outcomes", "outcome_steps", "outcomes", "schema_migrations"} {
		if !slices.Contains(got, want) {
			t.Errorf("table %s missing after Migrate; have %v", want, got)
		}
	}

	before := migrationCount(t, ctx, conn, d.Database)
	if err := chstore.Migrate(ctx, conn, d.Database, schemas.ClickHouse); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if after := migrationCount(t, ctx, conn, d.Database); after != before {
		t.Errorf("second Migrate recorded %d more rows, want none", after-before)
	}
}

func TestMigrateRefusesChangedFile(t *testing.T) {
	conn, d := chtest.EmptyDatabase(t)
	ctx := ctxT(t)
	v1 := fstest.MapFS{"clickhouse/001_first.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Memory;\n")}}
	if err := chstore.Migrate(ctx, conn, d.Database, v1); err != nil {
		t.Fatalf("Migrate v1: %v", err)
	}
	v2 := fstest.MapFS{
		"clickhouse/001_first.sql":  {Data: []byte("CREATE TABLE IF NOT EXISTS a (x UInt16) ENGINE = Memory;\n")},
		"clickhouse/002_second.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS b (x UInt8) ENGINE = Memory;\n")},
	}
	err := chstore.Migrate(ctx, conn, d.Database, v2)
	if !errors.Is(err, chstore.ErrChecksumMismatch) {
		t.Fatalf("Migrate of a changed file = %v, want ErrChecksumMismatch", err)
	}
	if !strings.Contains(err.Error(), "clickhouse/001_first.sql") {
		t.Errorf("error %q does not name the changed file", err)
	}
	if slices.Contains(tables(t, ctx, conn, d.Database), "b") {
		t.Error("002_second.sql was applied on top of a changed 001")
	}
}

func TestMigrateReportsFailingStatement(t *testing.T) {
	conn, d := chtest.EmptyDatabase(t)
	ctx := ctxT(t)
	bad := fstest.MapFS{"clickhouse/001_bad.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Memory;\nCREATE TABLE oops (;\n")}}
	err := chstore.Migrate(ctx, conn, d.Database, bad)
	if err == nil || !strings.Contains(err.Error(), "001_bad.sql statement 2") {
		t.Fatalf("Migrate = %v, want an error naming 001_bad.sql statement 2", err)
	}
	applied, err := chstore.Applied(ctx, conn, d.Database)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Errorf("a failed migration was recorded: %v", applied)
	}
}

func TestMigrateWrongDatabase(t *testing.T) {
	conn, _ := chtest.EmptyDatabase(t)
	err := chstore.Migrate(ctxT(t), conn, "hinscore_not_this_one", schemas.ClickHouse)
	if err == nil || !strings.Contains(err.Error(), "hinscore_not_this_one") {
		t.Fatalf("Migrate = %v, want an error naming the database mismatch", err)
	}
}

func TestMigrateConcurrent(t *testing.T) {
	conn, d := chtest.EmptyDatabase(t)
	ctx := ctxT(t)
	other, err := chstore.Connect(ctx, d, d.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, c := range []driver.Conn{conn, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = chstore.Migrate(ctx, c, d.Database, schemas.ClickHouse)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migration %d: %v", i, err)
		}
	}
	files, _ := fs.Glob(schemas.ClickHouse, "clickhouse/*.sql")
	applied, err := chstore.Applied(ctx, conn, d.Database)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(files) {
		t.Errorf("applied %v, want %d versions", applied, len(files))
	}
	// A third run after the race must still be a no-op, duplicates or not.
	if err := chstore.Migrate(ctx, conn, d.Database, schemas.ClickHouse); err != nil {
		t.Errorf("Migrate after a concurrent run: %v", err)
	}
}

func TestOpenCreatesAndMigrates(t *testing.T) {
	d := chtest.ServerDSN(t)
	d.Database = "hinscore_test_open_" + strings.ReplaceAll(t.Name(), "/", "_")
	ctx := ctxT(t)
	admin, err := chstore.Connect(ctx, d, "default")
	if err != nil {
		t.Fatal(err)
	}
	_ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+d.Database)
	t.Cleanup(func() {
		if err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+d.Database); err != nil {
			t.Errorf("drop %s: %v", d.Database, err)
		}
		_ = admin.Close()
	})

	conn, err := chstore.OpenDSN(ctx, d)
	if err != nil {
		t.Fatalf("OpenDSN: %v", err)
	}
	defer conn.Close()
	if got := tables(t, ctx, conn, d.Database); !slices.Contains(got, "outcomes") {
		t.Errorf("tables after Open: %v, want the migrated schema", got)
	}
	major, minor, err := chstore.ServerVersion(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if major < 18 || (major == 18 && minor < 16) {
		t.Errorf("ServerVersion = %d.%d, older than the oldest supported 18.16", major, minor)
	}
	// Opening again is a no-op on an existing, migrated database.
	again, err := chstore.OpenDSN(ctx, d)
	if err != nil {
		t.Fatalf("second OpenDSN: %v", err)
	}
	_ = again.Close()
}

func TestOpenRejectsBadDSN(t *testing.T) {
	_, _, err := chstore.Open(context.Background(), "clickhouse://h:9000/x;y")
	if !errors.Is(err, chstore.ErrBadDSN) {
		t.Fatalf("Open = %v, want ErrBadDSN", err)
	}
}

// TestOpenCheckSchema: with ?schema=check Open creates and migrates
// nothing. On an empty database it names every missing table and view and
// leaves the database empty; once the schema is applied it opens.
func TestOpenCheckSchema(t *testing.T) {
	conn, d := chtest.EmptyDatabase(t)
	ctx := ctxT(t)
	want, err := chstore.SchemaObjects(schemas.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"exchange_events", "exchange_outcomes", "outcome_steps", "organizations", "scorecards", "dead_letters", "outcomes", "events", "outcomes_daily", "outcomes_by_id_mv"} {
		if !slices.Contains(want, n) {
			t.Errorf("SchemaObjects misses %s: %v", n, want)
		}
	}
	check := d
	check.CheckSchema = true
	_, err = chstore.OpenDSN(ctx, check)
	if err == nil {
		t.Fatal("check on an empty database opened")
	}
	for _, n := range want {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("the error does not name %s: %v", n, err)
		}
	}
	if got := tables(t, ctx, conn, d.Database); len(got) != 0 {
		t.Fatalf("check created %v", got)
	}
	missingDB := check
	missingDB.Database = d.Database + "_absent"
	if _, err := chstore.OpenDSN(ctx, missingDB); err == nil {
		t.Fatal("check opened a database that does not exist")
	}
	if err := chstore.Migrate(ctx, conn, d.Database, schemas.ClickHouse); err != nil {
		t.Fatal(err)
	}
	ok, err := chstore.OpenDSN(ctx, check)
	if err != nil {
		t.Fatalf("check after the migrations: %v", err)
	}
	_ = ok.Close()
	if err := conn.Exec(ctx, "DROP TABLE "+d.Database+".outcome_steps"); err != nil {
		t.Fatal(err)
	}
	if _, err := chstore.OpenDSN(ctx, check); err == nil || !strings.Contains(err.Error(), "missing outcome_steps") {
		t.Fatalf("check with outcome_steps dropped: %v", err)
	}
}
