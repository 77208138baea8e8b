package chstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// genOutcomes inserts version v of outcomes [from, from+n) with one
// INSERT ... SELECT, so that tests and benchmarks build millions of rows
// server-side. Outcome i is deterministic: its id, network (5), responder
// (200), requester (50), patient (i % 997) and month (spread over 2024-03 and
// 2024-04, DateTime seconds) depend only on i. Version 1 leaves every
// outcome unanswered; a higher version gives it a final class chosen by i
// and a time to fulfil of up to 240 s. Inserting the same version again is
// what a writer retry does.
func genOutcomes(ctx context.Context, t testing.TB, conn driver.Conn, v uint64, from, n int) {
	t.Helper()
	class := `'unanswered'`
	ttf := `CAST(NULL AS Nullable(UInt64))`
	if v > 1 {
		class = `['fulfilled', 'fulfilled', 'fulfilled_late', 'refused_exception', 'refused_unjustified', 'redirected', 'not_found'][intHash32(i) % 7 + 1]`
		ttf = `toNullable(intHash64(i) % 240000)`
	}
	// A purpose, and the gateway sides of document queries (i % 3 = 1),
	// where the schema has the columns (migration 007).
	purposeCol, purpose := "", ""
	var has uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'exchange_outcomes' AND name = 'purpose'").Scan(&has); err != nil {
		t.Fatal(err)
	}
	if has == 1 {
		purposeCol = ", purpose, sides"
		purpose = ",\n    ['treatment', 'individual_access', 'payment', 'unknown'][i % 4 + 1]" +
			",\n    if(i % 3 = 1, ['both', 'initiating', 'responding'][intHash32(i) % 3 + 1], '')"
	}
	q := fmt.Sprintf(`INSERT INTO exchange_outcomes (outcome_id, version, network, request_id, correlation_key,
 request_kind, requester_org, responder_org, outcome, exception_code, reason_codes, patient_token,
 requested_at, requested_at_ms, acknowledged_at_ms, answered_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms,
 decided_at_ms, rule_version, mapping_version, response_id, record_count, step_count%s)
SELECT
    toUUID(UUIDNumToString(toFixedString(concat(reinterpretAsString(sipHash64(i)), reinterpretAsString(i)), 16))),
    %d,
    concat('net', toString(i %% 5)),
    concat('R', toString(i)),
    concat('key', toString(i)),
    ['patient_query', 'document_query', 'referral'][i %% 3 + 1],
    concat('req', toString(i %% 50)),
    concat('resp', toString(intHash32(i) %% 200)),
    %s AS cls,
    if(cls = 'refused_exception', '171.204', ''),
    [],
    concat('tok', toString(i %% 997)),
    toDateTime(1709251200 + (i %% 5270400)),
    (1709251200 + (i %% 5270400)) * 1000,
    0, 0, CAST(NULL AS Nullable(UInt64)),
    %s,
    60000, 30000, 0, 'gen-1', 'gen-1', '', 0, toUInt32(%d)%s
FROM (SELECT number + %d AS i FROM numbers(%d))`, purposeCol, v, class, ttf, v, purpose, from, n)
	if err := conn.Exec(ctx, q); err != nil {
		t.Fatalf("generate outcomes v%d [%d,%d): %v", v, from, from+n, err)
	}
}
