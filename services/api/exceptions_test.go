package api

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/lib/domain/exceptionrule"
)

// TestChainExceptionChecks: the chain view's exception checks are the
// chain's rows of exception_checks, the latest of each rule, with the
// reasoning of the rule's version from exception_rules.
func TestChainExceptionChecks(t *testing.T) {
	conn, _ := chtest.Database(t)
	ctx := context.Background()
	id, other := uuid.New(), uuid.New()
	at := time.Date(2026, 3, 10, 14, 0, 0, 0, time.UTC)
	rule, _ := exceptionrule.Lookup("171.205-serving")
	insert := func(id uuid.UUID, flagged uint8, checkedAt int64) {
		t.Helper()
		if err := conn.Exec(ctx, `INSERT INTO exception_checks (outcome_id, network, responder, requester_org, request_kind, purpose,
            exception_code, rule_id, rule_version, requested_at, requested_at_ms, checked, flagged, others, others_fulfilled,
            measure, parameters, checked_at_ms)
            SELECT toUUID(?), 'net', 'H1', 'C1', 'patient_query', 'treatment', '171.205', ?, ?, toDateTime(?, 'UTC'), ?, 1, ?, 12, 10,
            0.8333, ?, ?`, id.String(), rule.ID, exceptionrule.Version, uint32(at.Unix()), at.UnixMilli(), flagged,
			rule.Parameters(), checkedAt); err != nil {
			t.Fatal(err)
		}
	}
	insert(id, 0, 1)
	insert(id, 1, 2) // a later run: its row is the one shown
	insert(other, 0, 1)
	s := &store{conn: conn}
	got, err := s.exceptionChecks(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d checks, want 1: %+v", len(got), got)
	}
	c := got[0]
	if c.RuleID != rule.ID || !c.Checked || !c.Flagged || c.Others != 12 || c.OthersFulfilled != 10 || c.Reasoning != rule.Reasoning ||
		!strings.Contains(c.Parameters, "5 minutes") || c.CheckedAtMs != 2 {
		t.Errorf("check %+v", c)
	}
	none, err := s.exceptionChecks(ctx, uuid.New())
	if err != nil || none == nil || len(none) != 0 {
		t.Errorf("a chain without checks: %v, %v (want an empty list)", none, err)
	}
}

// TestChainPageShowsExceptionChecks: the chain page lists each rule's
// finding, and the reasoning of a flagged one.
func TestChainPageShowsExceptionChecks(t *testing.T) {
	v, err := newViews()
	if err != nil {
		t.Fatal(err)
	}
	rule, _ := exceptionrule.Lookup("171.205-serving")
	view := ChainView{ExceptionChecks: []ExceptionCheck{
		{RuleID: rule.ID, RuleVersion: exceptionrule.Version, ExceptionCode: "171.205", Checked: true, Flagged: true,
			Others: 12, OthersFulfilled: 10, Measure: 10.0 / 12, Parameters: rule.Parameters(), Reasoning: rule.Reasoning},
		{RuleID: "171.204-written-answer", ExceptionCode: "171.204", Parameters: "p204", Reasoning: "never shown unless flagged"},
	}}
	w := httptest.NewRecorder()
	if err := v.render(w, http.StatusOK, "chain", "chain.html", "token", view); err != nil {
		t.Fatal(err)
	}
	page := html.UnescapeString(w.Body.String())
	for _, want := range []string{`id="exception-checks"`, "171.205-serving", "flagged", "0.833", rule.Reasoning, "not checked", "p204"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "never shown unless flagged") {
		t.Error("the reasoning of an unflagged check is shown")
	}
}
