package api

import (
	"context"
	"fmt"

	"github.com/google/uuid"
)

// ExceptionCheck is what one rule checking a cited exception against the
// responder's behaviour found for the chain (the scorecard writes them to
// exception_checks; the rules are lib/domain/exceptionrule, mirrored in
// exception_rules), with the rule's reasoning.
type ExceptionCheck struct {
	RuleID        string `json:"rule_id"`
	RuleVersion   string `json:"rule_version"`
	ExceptionCode string `json:"exception_code"`
	// Checked is false when the rule had too little to compare with (too
	// few other chains, no time); Flagged when the responder's own
	// behaviour contradicts the citation.
	Checked bool `json:"checked"`
	Flagged bool `json:"flagged"`
	// Others are the chains the rule compared with, OthersFulfilled those
	// fulfilled (the other requesters' citations for the unequal-treatment
	// rules); Measure the share, z statistic or business days it compared.
	Others          uint64  `json:"others"`
	OthersFulfilled uint64  `json:"others_fulfilled"`
	Measure         float64 `json:"measure"`
	Parameters      string  `json:"parameters"`
	Reasoning       string  `json:"reasoning"`
	CheckedAtMs     int64   `json:"checked_at_ms"`
}

// exceptionChecks reads what every rule found for the chain, each with the
// reasoning of its rule and version; none when the chain cited nothing a
// rule checks, or the scorecard has not run over its month yet.
func (s *store) exceptionChecks(ctx context.Context, id uuid.UUID) ([]ExceptionCheck, error) {
	rows, err := s.conn.Query(ctx, `SELECT rule_id, rule_version, exception_code, checked, flagged, others, others_fulfilled,
    measure, parameters, checked_at_ms, reasoning
FROM
(
    SELECT rule_id, rule_version, exception_code, checked, flagged, others, others_fulfilled, measure, parameters, checked_at_ms
    FROM exception_flags WHERE outcome_id = toUUID(?)
)
ANY LEFT JOIN
(
    SELECT rule_id, rule_version, reasoning FROM exception_rules FINAL
) USING (rule_id, rule_version)
ORDER BY rule_id`, id.String())
	if err != nil {
		return nil, fmt.Errorf("api.store.exceptionChecks: %w", err)
	}
	defer rows.Close()
	out := []ExceptionCheck{}
	for rows.Next() {
		var c ExceptionCheck
		var checked, flagged uint8
		if err := rows.Scan(&c.RuleID, &c.RuleVersion, &c.ExceptionCode, &checked, &flagged, &c.Others, &c.OthersFulfilled,
			&c.Measure, &c.Parameters, &c.CheckedAtMs, &c.Reasoning); err != nil {
			return nil, fmt.Errorf("api.store.exceptionChecks: %w", err)
		}
		c.Checked, c.Flagged = checked == 1, flagged == 1
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("api.store.exceptionChecks: %w", err)
	}
	return out, nil
}
