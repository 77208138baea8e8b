package scorecard

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/lib/domain/exceptionrule"
)

// TestMigrationHoldsTheTable: the exception_rules table the migrations fill
// holds the Go table of the current version, field by field, so analysts
// join flags to the rules that raised them. A rule changed without a new
// version and a migration inserting it fails here.
func TestMigrationHoldsTheTable(t *testing.T) {
	conn := testDatabase(t)
	rows, err := conn.Query(context.Background(), `SELECT rule_id, codes, condition, window, window_ms, business_days,
    threshold, margin, min_others, reasoning FROM exception_rules FINAL WHERE rule_version = ? ORDER BY rule_id`, exceptionrule.Version)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []exceptionrule.Rule
	for rows.Next() {
		var r exceptionrule.Rule
		var windowMs int64
		var days, minOthers uint32
		if err := rows.Scan(&r.ID, &r.Codes, &r.Condition, &r.Window, &windowMs, &days, &r.Threshold, &r.Margin, &minOthers, &r.Reasoning); err != nil {
			t.Fatal(err)
		}
		r.WindowAround, r.BusinessDays, r.MinOthers = time.Duration(windowMs)*time.Millisecond, int(days), int(minOthers)
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := exceptionrule.Table()
	slices.SortFunc(want, func(a, b exceptionrule.Rule) int { return strings.Compare(a.ID, b.ID) })
	if len(got) != len(want) {
		t.Fatalf("exception_rules holds %d rules of %s, the Go table %d", len(got), exceptionrule.Version, len(want))
	}
	for i := range want {
		if !ruleEqual(got[i], want[i]) {
			t.Errorf("rule %s:\n table %+v\n Go    %+v", want[i].ID, got[i], want[i])
		}
	}
}

func ruleEqual(a, b exceptionrule.Rule) bool {
	return a.ID == b.ID && slices.Equal(a.Codes, b.Codes) && a.Condition == b.Condition && a.Window == b.Window &&
		a.WindowAround == b.WindowAround && a.BusinessDays == b.BusinessDays && a.Threshold == b.Threshold &&
		a.Margin == b.Margin && a.MinOthers == b.MinOthers && a.Reasoning == b.Reasoning
}

// storedCheck is one exception_flags row.
type storedCheck struct {
	checked, flagged  bool
	others, fulfilled uint64
}

// storedChecks reads what a rule found for each chain, by outcome id.
func storedChecks(t *testing.T, ctx context.Context, conn driver.Conn, rule string) map[string]storedCheck {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT toString(outcome_id), checked, flagged, others, others_fulfilled FROM exception_flags WHERE rule_id = ?`, rule)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]storedCheck{}
	for rows.Next() {
		var id string
		var checked, flagged uint8
		var c storedCheck
		if err := rows.Scan(&id, &checked, &flagged, &c.others, &c.fulfilled); err != nil {
			t.Fatal(err)
		}
		c.checked, c.flagged = checked == 1, flagged == 1
		out[id] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkLine returns the line of a rule.
func checkLine(lines []*hinscorev1.ExceptionCheck, rule string) *hinscorev1.ExceptionCheck {
	for _, l := range lines {
		if l.GetRuleId() == rule {
			return l
		}
	}
	return nil
}

func dirOf(t *testing.T, ctx context.Context, conn driver.Conn) directory {
	t.Helper()
	d, err := loadDirectory(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRunCLIStoresTheChecks: the command checks the cited exceptions once
// and stores what each rule found for each citing chain: the fixture's
// 171.204 refusal never answered (flagged, its ten business days long
// past) and its portal redirect (too few other requesters: not checked).
func TestRunCLIStoresTheChecks(t *testing.T) {
	clearEnv(t)
	conn, d := chtest.Database(t)
	insert(t, conn, fixture())
	var stdout, stderr bytes.Buffer
	if err := RunCLI(context.Background(), []string{"--clickhouse", dsnString(d), "--out", t.TempDir(), "--period", "day,month"}, &stdout, &stderr); err != nil {
		t.Fatalf("RunCLI: %v\n%s", err, stderr.String())
	}
	written := storedChecks(t, context.Background(), conn, "171.204-written-answer")
	manner := storedChecks(t, context.Background(), conn, "171.301-electronic")
	if len(written) != 1 || len(manner) != 1 {
		t.Fatalf("stored %d checks of 171.204 and %d of 171.301, want 1 and 1", len(written), len(manner))
	}
	for _, c := range written {
		if !c.checked || !c.flagged {
			t.Errorf("171.204 without an answer: %+v", c)
		}
	}
	for _, c := range manner {
		if c.checked || c.flagged || c.others != 0 {
			t.Errorf("a lone redirect: %+v", c)
		}
	}
	var rows uint64
	if err := conn.QueryRow(context.Background(), `SELECT count() FROM exception_checks`).Scan(&rows); err != nil || rows != 2 {
		t.Errorf("%d rows written for two granularities (%v), want 2: the checks run once", rows, err)
	}
}

// TestOrphansAreNotChecked: an answer that matched no request is no
// request refused; the exception it names is not checked.
func TestOrphansAreNotChecked(t *testing.T) {
	conn := testDatabase(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	insert(t, conn, []row{
		{id(1), 1, "alpha", "", "orphan", "171.205", at, nil},
		{id(2), 1, "alpha", "patient_query", "refused_exception", "171.205", at, nil},
	})
	checks, err := checkExceptions(ctx, conn, Query{Granularity: Month, Params: DefaultParams()}, dirOf(t, ctx, conn), at)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1 || checks[0].row.outcomeID != id(2).String() {
		t.Fatalf("%d checks, want the refusal's alone", len(checks))
	}
}
