package chstore_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

var sqlBlock = regexp.MustCompile("(?s)```sql\n(.*?)```")

// TestReadyQueries runs every query of schemas/README.md against a migrated
// database holding generated outcomes, events, a directory, a scorecard and
// a dead letter, and expects each to return rows: the README promises they
// run on the server hinscore supports.
func TestReadyQueries(t *testing.T) {
	readme, err := os.ReadFile("../../../schemas/README.md")
	if err != nil {
		t.Fatal(err)
	}
	queries := sqlBlock.FindAllStringSubmatch(string(readme), -1)
	if len(queries) < 12 {
		t.Fatalf("schemas/README.md has %d ready queries, want at least a dozen", len(queries))
	}
	conn, _ := chtest.Database(t)
	ctx := ctxT(t)
	genOutcomes(ctx, t, conn, 1, 0, 20000)
	genOutcomes(ctx, t, conn, 2, 0, 12000)
	if err := conn.Exec(ctx, `INSERT INTO exchange_events (event_id, network, role, status, message_id, event_time, event_time_ms)
SELECT toUUID(UUIDNumToString(toFixedString(concat(reinterpretAsString(sipHash64(number)), reinterpretAsString(number)), 16))),
       concat('net', toString(number % 5)), ['request', 'response'][number % 2 + 1], '', concat('M', toString(number)),
       toDateTime(1709251200 + number * 60), (1709251200 + number * 60) * 1000
FROM numbers(2000)`); err != nil {
		t.Fatal(err)
	}
	// One feed of net1 numbering its messages (MSH-13), every seventh
	// number skipped: the feed views' queries have a gap to show.
	if err := conn.Exec(ctx, `INSERT INTO exchange_events (event_id, network, role, status, message_id, event_time, event_time_ms,
       feed, sequence_source, sequence_number)
SELECT toUUID(UUIDNumToString(toFixedString(concat(reinterpretAsString(sipHash64(number + 1000000)), reinterpretAsString(number)), 16))),
       'net1', 'request', '', concat('S', toString(number)), toDateTime(1709251200 + number * 600), (1709251200 + number * 600) * 1000,
       'mllp:10.1.2.3', 'hl7|A^B>C^D', number + intDiv(number, 6)
FROM numbers(3000)`); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, `INSERT INTO outcome_steps (outcome_id, version, network, event_id, message_id, role, event_time)
SELECT outcome_id, version, network, outcome_id, request_id, 'request', requested_at FROM outcomes WHERE request_id = 'R1234'`); err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("identifier,org_id,name,type,developer,networks\n")
	for i := range 200 {
		fmt.Fprintf(&csv, "resp%d,org%d,Responder %d,provider,%s,net%d\n", i, i, i, []string{"Epic", "Oracle Health", "Meditech"}[i%3], i%5)
	}
	// The requesters on networks of their own: exchanges that cross
	// networks, seen by one feed only, for the cross-network views.
	for i := range 50 {
		fmt.Fprintf(&csv, "req%d,rorg%d,Requester %d,provider,Epic,net%d\n", i, i, i, (i+1)%5)
	}
	if _, err := chstore.LoadOrganizations(ctx, conn, strings.NewReader(csv.String()), time.Now()); err != nil {
		t.Fatal(err)
	}
	march := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := chstore.InsertScorecards(ctx, conn, "month", []*hinscorev1.Scorecard{{
		Network: "net1", Period: "2024-03", PeriodStartMs: march.UnixMilli(), PeriodEndMs: march.AddDate(0, 1, 0).UnixMilli(),
		Requests: 10, GeneratedAtMs: march.AddDate(0, 1, 1).UnixMilli(), Suspect: &hinscorev1.Rate{Count: 1, Rate: 0.1},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, `INSERT INTO dead_letters (stage, network, reason, received_at, received_ms, stream, dlq_subject, dlq_seq, size)
SELECT 'mllp-ingest', 'net1', 'MSH segment missing', toDateTime('2024-03-02 00:00:00', 'UTC'), 1709337600000, 'DLQ', 'dlq.mllp-ingest', 7, 311`); err != nil {
		t.Fatal(err)
	}
	if err := chstore.RebuildRollups(ctx, conn, time.Now(), march, march.AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	for i, q := range queries {
		sql := q[1]
		t.Run(fmt.Sprint(i+1), func(t *testing.T) {
			if rows := dump(t, conn, sql); len(rows) == 0 {
				t.Errorf("no rows from\n%s", sql)
			}
		})
	}
}
