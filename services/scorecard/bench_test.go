package scorecard

import (
	"context"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

// benchOutcomes inserts n outcomes server-side (INSERT ... SELECT from
// numbers()): 5 networks, 200 responders (40 per network) run by 8
// developers, over March and April 2024, with a class mix in which one
// responder in ten is a heavy offender, times to acknowledge and to fulfil,
// and the directory of the responders.
const benchOutcomes = `INSERT INTO exchange_outcomes (outcome_id, version, network, request_id, correlation_key,
 request_kind, requester_org, responder_org, outcome, exception_code, reason_codes, patient_token,
 requested_at, requested_at_ms, acknowledged_at_ms, answered_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms,
 decided_at_ms, rule_version, mapping_version, response_id, record_count, step_count)
SELECT
    toUUID(UUIDNumToString(toFixedString(concat(reinterpretAsString(sipHash64(i)), reinterpretAsString(i)), 16))),
    1,
    concat('net', toString(r % 5)),
    concat('R', toString(i)),
    concat('key', toString(i)),
    ['patient_query', 'document_query', 'referral'][i % 3 + 1],
    concat('req', toString(i % 50)),
    concat('resp', toString(r)),
    if(r % 10 = 0,
       ['fulfilled', 'fulfilled', 'fulfilled', 'refused_unjustified', 'redirected', 'unanswered', 'not_found', 'refused_exception'][intHash32(i) % 8 + 1],
       ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled',
        'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled_late', 'not_found', 'refused_exception', 'fulfilled',
        'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled',
        'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'not_found', 'unanswered'][intHash32(i) % 40 + 1]) AS cls,
    if(cls = 'refused_exception', ['171.204', '171.202', '171.205'][i % 3 + 1], if(cls = 'redirected', 'redirect-portal', '')),
    [],
    concat('tok', toString(i % 997)),
    toDateTime(1709251200 + (i % 5270400)),
    (1709251200 + (i % 5270400)) * 1000,
    0, 0,
    if(cls = 'unanswered', CAST(NULL AS Nullable(UInt64)), toNullable(toUInt64(intHash64(i) % 20000))),
    if(cls = 'unanswered', CAST(NULL AS Nullable(UInt64)), toNullable(toUInt64(intHash64(i) % 150000))),
    60000, 30000, 0, 'bench', 'bench', '', 0, 2
FROM (SELECT number + ? AS i, intHash32(number + ?) % 200 AS r FROM numbers(?))`

const benchDirectory = `INSERT INTO organizations (identifier, org_id, name, org_type, developer, networks, version, loaded_at)
SELECT concat('resp', toString(number)), concat('org', toString(number)), concat('Hospital ', toString(number)), 'provider',
       concat('Vendor ', toString(number % 8)), [concat('net', toString(number % 5))], 1, now()
FROM numbers(200)`

// BenchmarkMonthlyScorecards10M builds the monthly scorecards of every
// network, responder organisation and developer over 10 million outcomes,
// in a database of its own (dropped afterwards), from the outcomes_daily
// rollup (the evidence chains from exchange_outcomes) and from the view
// alone, next to the 10 s limit of issue 8.
func BenchmarkMonthlyScorecards10M(b *testing.B) {
	conn, _ := chtest.Database(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	const n = 10_000_000
	setup := time.Now()
	for from := uint64(0); from < n; from += 2_000_000 {
		if err := conn.Exec(ctx, benchOutcomes, from, from, uint64(2_000_000)); err != nil {
			b.Fatal(err)
		}
	}
	if err := conn.Exec(ctx, benchDirectory); err != nil {
		b.Fatal(err)
	}
	// The writer rebuilds the rollup in production; not part of the figure.
	rebuild := time.Now()
	if err := chstore.RebuildRollups(ctx, conn, time.Now(), time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d outcomes in %s, rollup rebuilt in %s", n, rebuild.Sub(setup).Round(time.Second), time.Since(rebuild).Round(time.Second))

	var rollup, view time.Duration
	var cards, responders, flags int
	for b.Loop() {
		start := time.Now()
		got, err := Build(ctx, conn, Query{Granularity: Month, Source: SourceRollup}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		rollup += time.Since(start)
		start = time.Now()
		if _, err := Build(ctx, conn, Query{Granularity: Month, Source: SourceView}, time.Now()); err != nil {
			b.Fatal(err)
		}
		view += time.Since(start)
		cards, responders, flags = len(got), 0, 0
		for _, c := range got {
			responders += len(c.GetResponders())
			for _, e := range c.GetResponders() {
				flags += len(e.GetFlags())
			}
		}
	}
	b.ReportMetric(rollup.Seconds()/float64(b.N), "rollup_s/op")
	b.ReportMetric(view.Seconds()/float64(b.N), "view_s/op")
	b.ReportMetric(10, "limit_s")
	b.ReportMetric(float64(cards), "cards")
	b.ReportMetric(float64(responders), "responder_cards")
	b.ReportMetric(float64(flags), "responder_flags")
}
