package faults

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/testenv"
)

// sampleRows is a row set shaped like the outcomes view's.
func sampleRows() map[string]OutcomeRow {
	out := map[string]OutcomeRow{}
	for i := range 3 {
		id := fmt.Sprintf("00000000-0000-0000-0000-00000000000%d", i)
		out[id] = OutcomeRow{
			{"outcome_id", id}, {"version", "3"}, {"network", "net-a"}, {"request_kind", "patient_query"},
			{"responder_org", "org-b"}, {"outcome", "fulfilled"}, {"exception_code", ""},
			{"reason_codes", "[]"}, {"requested_at_ms", "1700000000000"}, {"ttf_ms", fmt.Sprint(1000 * i)},
			{"tta_ms", "NULL"}, {"decided_at_ms", "1700000005000"}, {"record_count", "1"},
		}
	}
	return out
}

func cloneRows(in map[string]OutcomeRow) map[string]OutcomeRow {
	out := map[string]OutcomeRow{}
	for id, r := range in {
		out[id] = slices.Clone(r)
	}
	return out
}

// TestDiffRowsFindsEveryColumn alters one column of one row at a time:
// every column but the version and the decision time is reported, with
// the outcome, the column and the row. (The comparison it replaces looked
// at network and class only: every column but those two went unseen.)
func TestDiffRowsFindsEveryColumn(t *testing.T) {
	want := sampleRows()
	id := "00000000-0000-0000-0000-000000000001"
	for i, c := range want[id] {
		got := cloneRows(want)
		got[id][i].Value += "x"
		diffs := DiffRows(want, got)
		if slices.Contains(NotCompared, c.Column) {
			if len(diffs) != 0 {
				t.Errorf("%s altered: %q, want no difference (not compared)", c.Column, diffs)
			}
			continue
		}
		if len(diffs) != 1 {
			t.Fatalf("%s altered: %d differences %q, want 1", c.Column, len(diffs), diffs)
		}
		for _, part := range []string{id, "column " + c.Column + " = " + c.Value + "x", "no-fault run " + c.Value, got[id].String()} {
			if !strings.Contains(diffs[0], part) {
				t.Errorf("%s altered: %q does not say %q", c.Column, diffs[0], part)
			}
		}
	}
}

func TestDiffRowsMissingAndExtra(t *testing.T) {
	want := sampleRows()
	got := cloneRows(want)
	delete(got, "00000000-0000-0000-0000-000000000000")
	got["00000000-0000-0000-0000-000000000009"] = slices.Clone(want["00000000-0000-0000-0000-000000000002"])
	diffs := DiffRows(want, got)
	if len(diffs) != 2 || !strings.Contains(diffs[0], "000000000000: missing") || !strings.Contains(diffs[1], "000000000009: absent from the no-fault run") {
		t.Errorf("diffs %q, want one missing and one extra", diffs)
	}
	if d := DiffRows(want, cloneRows(want)); len(d) != 0 {
		t.Errorf("equal row sets: %q", d)
	}
	// A column only one side has.
	got = cloneRows(want)
	got["00000000-0000-0000-0000-000000000002"] = append(got["00000000-0000-0000-0000-000000000002"], Cell{"sides", "both"})
	if d := DiffRows(want, got); len(d) != 1 || !strings.Contains(d[0], "column sides = both, which the no-fault run does not have") {
		t.Errorf("extra column: %q", d)
	}
}

func TestDiffRowsBounded(t *testing.T) {
	want, got := map[string]OutcomeRow{}, map[string]OutcomeRow{}
	for i := range 25 {
		want[fmt.Sprint(i)] = OutcomeRow{{"outcome_id", fmt.Sprint(i)}, {"outcome", "fulfilled"}}
		got[fmt.Sprint(i)] = OutcomeRow{{"outcome_id", fmt.Sprint(i)}, {"outcome", "unanswered"}}
	}
	d := DiffRows(want, got)
	if len(d) != maxDiffs+1 || d[maxDiffs] != "… and 15 more differences" {
		t.Errorf("%d lines, last %q", len(d), d[len(d)-1])
	}
}

// TestReadOutcomeRowsAgainstClickHouse stores the same rows in two
// databases, and in a third the same outcome with one column altered (a
// latency off by a second, as a linker bug would make it) under another
// version and decision time: ReadOutcomeRows reads every column type the
// view has (UUID, String, Array, Nullable, DateTime, integers) and
// DiffRows names the altered column and nothing else.
func TestReadOutcomeRowsAgainstClickHouse(t *testing.T) {
	server, err := ParseDSN(testenv.Getenv(t, envClickHouse, "scripts/clickhouse.sh start"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// INSERT … SELECT: the server builds the rows (over the native
	// protocol a VALUES list is not part of the query).
	const (
		first = "toUUID('6ba7b810-9dad-11d1-80b4-00c04fd430c8'), 1, 'net-a', ['dq|no-timestamp','late'], " +
			"toDateTime('2026-12-06 10:00:00', 'UTC'), toNullable(toUInt64(4000)), 1765000000000, 2, 0"
		second = "toUUID('6ba7b811-9dad-11d1-80b4-00c04fd430c8'), 2, 'net-b', emptyArrayString(), " +
			"toDateTime('2026-12-06 10:00:01', 'UTC'), CAST(NULL AS Nullable(UInt64)), 1765000001000, 0, 1"
	)
	read := func(name, row string) map[string]OutcomeRow {
		d := server.WithDatabase(fmt.Sprintf("hinscore_faults_rows_%s_%d", name, time.Now().UnixNano()%1e9))
		t.Cleanup(func() { _ = DropDatabase(context.Background(), d) })
		conn, err := Connect(ctx, d, "default")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, q := range []string{
			"CREATE DATABASE " + d.Database,
			"CREATE TABLE " + d.Database + ".outcomes (outcome_id UUID, version UInt64, network String, reason_codes Array(String), " +
				"requested_at DateTime('UTC'), ttf_ms Nullable(UInt64), decided_at_ms Int64, record_count UInt32, untimed UInt8) ENGINE = Memory",
			"INSERT INTO " + d.Database + ".outcomes SELECT " + row,
			"INSERT INTO " + d.Database + ".outcomes SELECT " + second,
		} {
			if err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		db, err := Connect(ctx, d, d.Database)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := ReadOutcomeRows(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	want := read("want", first)
	if got := want["6ba7b810-9dad-11d1-80b4-00c04fd430c8"].String(); got != `outcome_id=6ba7b810-9dad-11d1-80b4-00c04fd430c8 version=1 network=net-a `+
		`reason_codes=["dq|no-timestamp" "late"] requested_at=2026-12-06T10:00:00.000Z ttf_ms=4000 decided_at_ms=1765000000000 record_count=2 untimed=0` {
		t.Errorf("row read as %s", got)
	}
	if v := want["6ba7b811-9dad-11d1-80b4-00c04fd430c8"].Get("ttf_ms"); v != "NULL" {
		t.Errorf("a NULL ttf_ms read as %q", v)
	}
	if d := DiffRows(want, read("same", first)); len(d) != 0 {
		t.Fatalf("the same rows differ: %q", d)
	}
	got := read("got", strings.NewReplacer("4000", "5000", "1765000000000", "1765000009000", "'), 1,", "'), 2,").Replace(first))
	d := DiffRows(want, got)
	if len(d) != 1 || !strings.Contains(d[0], "column ttf_ms = 5000, no-fault run 4000") {
		t.Errorf("differences %q, want the one of ttf_ms", d)
	}
}
