package scorecard

import (
	"fmt"
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// exceptionChecksHeader are the last columns of a network's CSV
// (scorecard/5), on every row.
var exceptionChecksHeader = []string{"exception_rules_version", "exception_checks"}

// exceptionChecksCSV gives the CSV columns of scorecard/5: the rules'
// version and each rule's figures as rule=cited/checked/flagged;...
func exceptionChecksCSV(p *hinscorev1.FormulaParams, e *hinscorev1.Entity) []string {
	var lines []string
	for _, x := range e.GetExceptionChecks() {
		lines = append(lines, fmt.Sprintf("%s=%d/%d/%d", x.GetRuleId(), x.GetCited(), x.GetChecked(), x.GetFlagged().GetCount()))
	}
	return []string{p.GetExceptionRulesVersion(), strings.Join(lines, ";")}
}
