package fhirmap

import (
	_ "embed"
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

//go:embed classification.csv
var defaultTableCSV string

// Sources of a classification row.
const (
	SourceHTTP    = "http"       // HTTP status code of an answer (entry.response.status)
	SourceIssue   = "issue"      // OperationOutcome.issue.code of an error or fatal issue
	SourceNote    = "issue-note" // OperationOutcome.issue.code of a warning or information
	SourceMessage = "message"    // MessageHeader.response.code
	SourceAudit   = "audit"      // AuditEvent.outcome
	SourceTask    = "task"       // Task.status
)

// Rule is one row of the classification table.
type Rule struct {
	Source, Match string
	Role          hinscorev1.Role
	Status        hinscorev1.Status
	Note          string
}

// Table is the versioned classification table (classification.csv). It is
// data so that analysts can read it and a network can bring its own.
type Table struct {
	Version string
	Rules   []Rule
}

var roleNames = map[string]hinscorev1.Role{
	"request": hinscorev1.Role_ROLE_REQUEST, "response": hinscorev1.Role_ROLE_RESPONSE,
	"interim": hinscorev1.Role_ROLE_INTERIM, "cancel": hinscorev1.Role_ROLE_CANCEL,
	"notification": hinscorev1.Role_ROLE_NOTIFICATION,
}

var statusNames = map[string]hinscorev1.Status{
	"-": hinscorev1.Status_STATUS_UNSPECIFIED, "ok": hinscorev1.Status_STATUS_OK,
	"partial": hinscorev1.Status_STATUS_PARTIAL, "not_found": hinscorev1.Status_STATUS_NOT_FOUND,
	"refused": hinscorev1.Status_STATUS_REFUSED, "redirected": hinscorev1.Status_STATUS_REDIRECTED,
	"error_transient": hinscorev1.Status_STATUS_ERROR_TRANSIENT,
	"error_permanent": hinscorev1.Status_STATUS_ERROR_PERMANENT,
	"accepted":        hinscorev1.Status_STATUS_ACCEPTED, "cancelled": hinscorev1.Status_STATUS_CANCELLED,
}

// DefaultTable parses the built-in table. It is parsed per call (no
// package-level mutable state); callers keep the result.
func DefaultTable() *Table {
	t, err := ParseTable(strings.NewReader(defaultTableCSV))
	if err != nil {
		panic("fhirmap: built-in classification.csv: " + err.Error()) // caught by every test
	}
	return t
}

// ParseTable reads a table in the form of classification.csv. Errors name
// the line.
func ParseTable(r io.Reader) (*Table, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	t := &Table{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("fhirmap.ParseTable: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if t.Version == "" {
			if len(rec) != 2 || rec[0] != "version" || rec[1] == "" {
				return nil, fmt.Errorf("fhirmap.ParseTable: line %d: want \"version,<name>\" first", line)
			}
			t.Version = rec[1]
			continue
		}
		if len(rec) != 5 {
			return nil, fmt.Errorf("fhirmap.ParseTable: line %d: want 5 columns, got %d", line, len(rec))
		}
		switch rec[0] {
		case SourceHTTP, SourceIssue, SourceNote, SourceMessage, SourceAudit, SourceTask:
		default:
			return nil, fmt.Errorf("fhirmap.ParseTable: line %d: unknown source %q", line, rec[0])
		}
		role, ok := roleNames[rec[2]]
		if !ok {
			return nil, fmt.Errorf("fhirmap.ParseTable: line %d: unknown role %q", line, rec[2])
		}
		status, ok := statusNames[rec[3]]
		if !ok {
			return nil, fmt.Errorf("fhirmap.ParseTable: line %d: unknown status %q", line, rec[3])
		}
		if rec[1] == "" {
			return nil, fmt.Errorf("fhirmap.ParseTable: line %d: empty match", line)
		}
		t.Rules = append(t.Rules, Rule{Source: rec[0], Match: rec[1], Role: role, Status: status, Note: rec[4]})
	}
	if t.Version == "" {
		return nil, fmt.Errorf("fhirmap.ParseTable: no version line")
	}
	return t, nil
}

// Lookup returns the first rule of source matching value. An http rule
// "4xx" matches any three-digit code starting with 4.
func (t *Table) Lookup(source, value string) (Rule, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return Rule{}, false
	}
	for _, r := range t.Rules {
		if r.Source != source {
			continue
		}
		if r.Match == value {
			return r, true
		}
		if source == SourceHTTP && len(r.Match) == 3 && strings.HasSuffix(r.Match, "xx") &&
			len(value) == 3 && value[0] == r.Match[0] {
			return r, true
		}
	}
	return Rule{}, false
}

// Over returns the table a network with its own rows uses: t's rows are
// tried first, then base's, so a network's file holds only the rows that
// differ. Its version names both ("neta-class/1+fhir-class/2"): every
// event records which rows could have classified it.
func (t *Table) Over(base *Table) *Table {
	rules := make([]Rule, 0, len(t.Rules)+len(base.Rules))
	rules = append(append(rules, t.Rules...), base.Rules...)
	return &Table{Version: t.Version + "+" + base.Version, Rules: rules}
}
