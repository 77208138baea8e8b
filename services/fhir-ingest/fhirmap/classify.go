package fhirmap

import (
	_ "embed"
	"io"
	"strings"

	"github.com/hinscore/hinscore/services/lib/classtable"
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

// Rule is one row of the classification table (classtable.Rule; FHIR's
// rows cite no exception).
type Rule = classtable.Rule

// Table is the versioned classification table (classification.csv). It is
// data so that analysts can read it and a network can bring its own; the
// mechanism (parsing, Lookup, Over) is lib/classtable's, which lib/soap's
// table shares.
type Table = classtable.Table

// tableSpec is the form of classification.csv.
var tableSpec = classtable.Spec{
	Name:    "fhirmap.ParseTable",
	Sources: []string{SourceHTTP, SourceIssue, SourceNote, SourceMessage, SourceAudit, SourceTask},
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
func ParseTable(r io.Reader) (*Table, error) { return classtable.Parse(r, tableSpec) }
