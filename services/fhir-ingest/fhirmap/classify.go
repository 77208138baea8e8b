package fhirmap

import (
	_ "embed"
	"fmt"
	"io"
	"strings"

	"github.com/hinscore/hinscore/proto/classtable"
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

// Rule is one row of the classification table; Table is the versioned
// table (classification.csv). Both are proto/classtable's, the mechanism
// every format's table shares.
type (
	Rule  = classtable.Rule
	Table = classtable.Table
)

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
	t, err := classtable.Parse(r, SourceHTTP, SourceIssue, SourceNote, SourceMessage, SourceAudit, SourceTask)
	if err != nil {
		return nil, fmt.Errorf("fhirmap.ParseTable: %w", err)
	}
	return t, nil
}
