package exceptionrule

import (
	"strings"
	"testing"

	"github.com/hinscore/hinscore/services/lib/domain/exception"
)

func TestTable(t *testing.T) {
	conditions := map[string]bool{ServingWhileCiting: true, NoTimelyWrittenAnswer: true, RedirectedWhileElectronic: true, CitedUnequally: true}
	seen := map[string]bool{}
	for _, r := range Table() {
		if r.ID == "" || seen[r.ID] {
			t.Errorf("rule id %q empty or repeated", r.ID)
		}
		seen[r.ID] = true
		if !conditions[r.Condition] {
			t.Errorf("%s: unknown condition %q", r.ID, r.Condition)
		}
		for _, c := range r.Codes {
			if !exception.Valid(c) {
				t.Errorf("%s: %q is no exception or redirect code", r.ID, c)
			}
		}
		if r.Reasoning == "" || r.Window == "" || len(r.Codes) == 0 {
			t.Errorf("%s: reasoning, window and codes are required", r.ID)
		}
		if r.Condition == ServingWhileCiting && r.WindowAround <= 0 {
			t.Errorf("%s: a window either side is required", r.ID)
		}
		if r.Condition == NoTimelyWrittenAnswer && r.BusinessDays <= 0 {
			t.Errorf("%s: business days are required", r.ID)
		}
		if !strings.Contains(r.Parameters(), r.Condition) {
			t.Errorf("%s: parameters %q lack the condition", r.ID, r.Parameters())
		}
	}
	// DOMAIN.md's four checks: 171.205, 171.204, 171.301 (with the
	// redirects), 171.202 and 171.203.
	for _, code := range []string{"171.202", "171.203", "171.204", "171.205", "171.301", exception.RedirectFax, exception.RedirectPortal} {
		if len(ForCode(code)) != 1 {
			t.Errorf("%s: %d rules, want 1", code, len(ForCode(code)))
		}
	}
	if r, ok := Lookup("171.205-serving"); !ok || r.WindowAround.Minutes() != 5 || r.Threshold != 0.5 {
		t.Errorf("171.205-serving: %+v", r)
	}
	tab := Table()
	tab[0].Codes[0] = "changed"
	if Table()[0].Codes[0] == "changed" {
		t.Error("Table shares its rows")
	}
}
