// Package classtable reads the versioned classification tables that turn
// the codes an answer carries (an HTTP status, an OperationOutcome issue
// code, an ebXML RegistryError code, a SOAP fault subcode, ...) into an
// ExchangeEvent's role and status: CSV files analysts read and networks
// may override, one row per code with the reasoning beside it. Each format
// declares its sources (the kinds of code it looks up) in a Spec; the
// mechanism is the same for all of them (fhirmap's table, lib/soap's).
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

// Spec is the form of one format's table.
type Spec struct {
	// Name prefixes every parse error ("fhirmap.ParseTable").
	Name string
	// Sources are the values the first column may take.
	Sources []string
	// Exception adds a column after status: the 45 CFR 171 exception (or
	// redirect) a row's code cites (exception.Valid), or empty.
	Exception bool
}

// Rule is one row of a table.
type Rule struct {
	Source, Match string
	Role          hinscorev1.Role
	Status        hinscorev1.Status
	Exception     string // only in tables whose Spec has the column
	Note          string
}

// Table is a versioned classification table.
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

// Parse reads a table of spec's form: '#' comments, a "version,<name>"
// line, then one row per line: source, match, role, status, [exception,]
// note. Errors name the line.
func Parse(r io.Reader, spec Spec) (*Table, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	columns := 5
	if spec.Exception {
		columns = 6
	}
	t := &Table{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Name, err)
		}
		line, _ := cr.FieldPos(0)
		if t.Version == "" {
			if len(rec) != 2 || rec[0] != "version" || rec[1] == "" {
				return nil, fmt.Errorf("%s: line %d: want \"version,<name>\" first", spec.Name, line)
			}
			t.Version = rec[1]
			continue
		}
		if len(rec) != columns {
			return nil, fmt.Errorf("%s: line %d: want %d columns, got %d", spec.Name, line, columns, len(rec))
		}
		rule, err := spec.row(rec)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", spec.Name, line, err)
		}
		t.Rules = append(t.Rules, rule)
	}
	if t.Version == "" {
		return nil, fmt.Errorf("%s: no version line", spec.Name)
	}
	return t, nil
}

func (spec Spec) row(rec []string) (Rule, error) {
	if !slices.Contains(spec.Sources, rec[0]) {
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
	r := Rule{Source: rec[0], Match: rec[1], Role: role, Status: status, Note: rec[len(rec)-1]}
	if spec.Exception {
		r.Exception = rec[4]
		if r.Exception != "" && !exception.Valid(r.Exception) {
			return Rule{}, fmt.Errorf("unknown exception %q", r.Exception)
		}
	}
	return r, nil
}

// Lookup returns the first rule of source matching value. A rule "4xx"
// matches any three-digit value starting with 4 (HTTP status classes).
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
		if len(r.Match) == 3 && strings.HasSuffix(r.Match, "xx") && isDigit(r.Match[0]) &&
			len(value) == 3 && value[0] == r.Match[0] && isDigit(value[1]) && isDigit(value[2]) {
			return r, true
		}
	}
	return Rule{}, false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Over returns the table a network with its own rows uses: t's rows are
// tried first, then base's, so a network's file holds only the rows that
// differ. Its version names both ("neta-class/1+fhir-class/2"): every
// event records which rows could have classified it.
func (t *Table) Over(base *Table) *Table {
	rules := make([]Rule, 0, len(t.Rules)+len(base.Rules))
	rules = append(append(rules, t.Rules...), base.Rules...)
	return &Table{Version: t.Version + "+" + base.Version, Rules: rules}
}
