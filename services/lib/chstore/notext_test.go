package chstore_test

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/hinscore/hinscore/schemas"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

// migrationsBefore returns the migrations of the schemas module older than
// version, as a database that stopped there has them.
func migrationsBefore(t *testing.T, version string) fstest.MapFS {
	t.Helper()
	files, err := fs.Glob(schemas.ClickHouse, "clickhouse/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	out := fstest.MapFS{}
	for _, f := range files {
		if strings.TrimPrefix(f, "clickhouse/") >= version {
			continue
		}
		b, err := fs.ReadFile(schemas.ClickHouse, f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = &fstest.MapFile{Data: b}
	}
	return out
}

// rowsContaining returns the rows of query (dump) that hold needle.
func rowsContaining(t *testing.T, conn driver.Conn, query, needle string) []string {
	t.Helper()
	var hits []string
	for _, r := range dump(t, conn, query) {
		if strings.Contains(r, needle) {
			hits = append(hits, r)
		}
	}
	return hits
}

// TestMigrationRemovesMessageText writes an event the way the chwriter did
// before 009, with the sender's reason text (a name and a birth date), on a
// database migrated to 008; migrating to the current schema leaves no
// column of that name in any table or view, and no cell of the event holds
// the text, while its codes, cited exception and status stay.
func TestMigrationRemovesMessageText(t *testing.T) {
	conn, d := chtest.EmptyDatabase(t)
	ctx := ctxT(t)
	if err := chstore.Migrate(ctx, conn, d.Database, migrationsBefore(t, "009")); err != nil {
		t.Fatalf("Migrate to 008: %v", err)
	}
	const words = "Jane Q Doe DOB 1961-04-02 asked for her records"
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	id := uuid.New()
	b, err := conn.PrepareBatch(ctx, `INSERT INTO exchange_events (event_id, network, format, message_id, role, event_time,
		event_time_ms, ingest_time, status, ack_code, reason_codes, reason_text, exception_code)`)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(id, "north", "hl7v2", "MSG1", "response", at, at.UnixMilli(), at, "refused", "AR",
		[]string{"HL70357|207", "urn:hinscore:ib-exception|171.202"}, words, "171.202"); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatalf("insert as before 009: %v", err)
	}
	if hits := rowsContaining(t, conn, "SELECT * FROM exchange_events", "Jane"); len(hits) != 1 {
		t.Fatalf("before 009 the text is in one row, found %q", hits)
	}
	if err := chstore.Migrate(ctx, conn, d.Database, schemas.ClickHouse); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	var columns uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND name = 'reason_text'", d.Database).Scan(&columns); err != nil {
		t.Fatal(err)
	}
	if columns != 0 {
		t.Errorf("%d tables or views still have a reason_text column", columns)
	}
	for _, q := range []string{"SELECT * FROM exchange_events", "SELECT * FROM events"} {
		if hits := rowsContaining(t, conn, q, "Jane"); len(hits) != 0 {
			t.Errorf("%s: the sender's text is still there: %q", q, hits)
		}
	}
	var status, exception string
	var codes []string
	if err := conn.QueryRow(ctx, "SELECT status, reason_codes, exception_code FROM events WHERE event_id = ?", id).Scan(&status, &codes, &exception); err != nil {
		t.Fatal(err)
	}
	if status != "refused" || exception != "171.202" || len(codes) != 2 {
		t.Errorf("the event lost its classification: %s %q %s", status, codes, exception)
	}
}
