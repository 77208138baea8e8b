// Package classtable is the mechanism of hinscore's classification tables:
// versioned CSV data that turns what a format says about an answer (an HTTP
// status, an OperationOutcome issue code, an audit's EventOutcomeIndicator
// ...) into an ExchangeEvent role and status, one row each with its
// reasoning. The rows belong to each mapping (fhirmap's classification.csv,
// lib/atna/toevent's outcome.csv); the form, the parser, the lookup and the
// per-network overlay are shared here.
//
// The form: '#' comments; first "version,<name>"; then rows of
// source, match, role, status, note; a table read with ParseCiting has an
// exception column after status (lib/soap/toevent's classification.csv).
package classtable

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/exception"
)

// Rule is one row of a table.
type Rule struct {
	Source, Match string
	Role          hinscorev1.Role
	Status        hinscorev1.Status
	// Exception is the 45 CFR 171 exception (or redirect) the row's code
	// cites, in tables read with ParseCiting; "" otherwise.
	Exception string
	Note      string
}

// Table is a versioned classification table. It is data so that analysts
// can read it and a network can bring its own.
type Table struct {
	Version string
	Rules   []Rule
}

// roleNames are the names a table gives roles in.
var roleNames = map[string]hinscorev1.Role{
	"request": hinscorev1.Role_ROLE_REQUEST, "response": hinscorev1.Role_ROLE_RESPONSE,
	"interim": hinscorev1.Role_ROLE_INTERIM, "cancel": hinscorev1.Role_ROLE_CANCEL,
	"notification": hinscorev1.Role_ROLE_NOTIFICATION,
}

// statusNames are the names a table gives statuses in ("-" for none).
var statusNames = map[string]hinscorev1.Status{
	"-": hinscorev1.Status_STATUS_UNSPECIFIED, "ok": hinscorev1.Status_STATUS_OK,
	"partial": hinscorev1.Status_STATUS_PARTIAL, "not_found": hinscorev1.Status_STATUS_NOT_FOUND,
	"refused": hinscorev1.Status_STATUS_REFUSED, "redirected": hinscorev1.Status_STATUS_REDIRECTED,
	"error_transient": hinscorev1.Status_STATUS_ERROR_TRANSIENT,
	"error_permanent": hinscorev1.Status_STATUS_ERROR_PERMANENT,
	"accepted":        hinscorev1.Status_STATUS_ACCEPTED, "cancelled": hinscorev1.Status_STATUS_CANCELLED,
}

// Parse reads a table whose rows may name only the given sources. Errors
// name the line.
func Parse(r io.Reader, sources ...string) (*Table, error) { return parse(r, false, sources) }

// ParseCiting reads a table whose rows have an exception column after
// the status: source, match, role, status, exception, note. An exception
// is empty or a code of lib/domain/exception (exception.Valid).
func ParseCiting(r io.Reader, sources ...string) (*Table, error) { return parse(r, true, sources) }

func parse(r io.Reader, citing bool, sources []string) (*Table, error) {
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
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if t.Version == "" {
			if len(rec) != 2 || rec[0] != "version" || rec[1] == "" {
				return nil, fmt.Errorf("line %d: want \"version,<name>\" first", line)
			}
			t.Version = rec[1]
			continue
		}
		rule, err := parseRule(rec, citing, sources)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		t.Rules = append(t.Rules, rule)
	}
	if t.Version == "" {
		return nil, fmt.Errorf("no version line")
	}
	return t, nil
}

func parseRule(rec []string, citing bool, sources []string) (Rule, error) {
	var cited string
	if citing {
		if len(rec) != 6 {
			return Rule{}, fmt.Errorf("want 6 columns, got %d", len(rec))
		}
		cited, rec = rec[4], append(rec[:4:4], rec[5])
		if cited != "" && !exception.Valid(cited) {
			return Rule{}, fmt.Errorf("unknown exception %q", cited)
		}
	}
	if len(rec) != 5 {
		return Rule{}, fmt.Errorf("want 5 columns, got %d", len(rec))
	}
	if !slices.Contains(sources, rec[0]) {
		return Rule{}, fmt.Errorf("unknown source %q", rec[0])
	}
	role, ok := roleNames[rec[2]]
	if !ok {
		return Rule{}, fmt.Errorf("unknown role %q", rec[2])
	}
	status, ok := statusNames[rec[3]]
	if !ok {
		return Rule{}, fmt.Errorf("unknown status %q", rec[3])
	}
	if rec[1] == "" {
		return Rule{}, fmt.Errorf("empty match")
	}
	return Rule{Source: rec[0], Match: rec[1], Role: role, Status: status, Exception: cited, Note: rec[4]}, nil
}

// Lookup returns the first rule of source matching value. A match of a
// digit and "xx" ("4xx") matches any three-digit value starting with that
// digit, so exact codes come before classes.
func (t *Table) Lookup(source, value string) (Rule, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return Rule{}, false
	}
	for _, r := range t.Rules {
		if r.Source != source {
			continue
		}
		if r.Match == value || classMatch(r.Match, value) {
			return r, true
		}
	}
	return Rule{}, false
}

func classMatch(match, value string) bool {
	if len(match) != 3 || match[1:] != "xx" || len(value) != 3 || value[0] != match[0] {
		return false
	}
	for i := 1; i < 3; i++ {
		if value[i] < '0' || value[i] > '9' {
			return false
		}
	}
	return true
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
