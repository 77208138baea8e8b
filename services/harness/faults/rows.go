package faults

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// OutcomeRow is one row of the outcomes view: every column in the view's
// order, each value as text.
type OutcomeRow []Cell

// Cell is one column of a row.
type Cell struct{ Column, Value string }

// Get returns a column's value ("" when the row has no such column).
func (r OutcomeRow) Get(column string) string {
	for _, c := range r {
		if c.Column == column {
			return c.Value
		}
	}
	return ""
}

func (r OutcomeRow) String() string {
	parts := make([]string, len(r))
	for i, c := range r {
		parts[i] = c.Column + "=" + c.Value
	}
	return strings.Join(parts, " ")
}

// NotCompared are the columns of an outcome that may differ between two
// runs of the same traffic: the version (a replay after a fault may
// publish the same outcome under a later version) and the wall-clock time
// the linker decided it. Every other column follows from event time and
// the messages alone.
var NotCompared = []string{"version", "decided_at_ms"}

// ReadOutcomeRows reads every row of the outcomes view (every column, so
// a column added by a migration is compared without a change here), keyed
// by outcome_id.
func ReadOutcomeRows(ctx context.Context, conn driver.Conn) (map[string]OutcomeRow, error) {
	rows, err := conn.Query(ctx, "SELECT * FROM outcomes")
	if err != nil {
		return nil, fmt.Errorf("faults.ReadOutcomeRows: %w", err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	ptrs := make([]any, len(types))
	for i, ct := range types {
		ptrs[i] = reflect.New(ct.ScanType()).Interface()
	}
	out := map[string]OutcomeRow{}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("faults.ReadOutcomeRows: %w", err)
		}
		row := make(OutcomeRow, len(types))
		for i, ct := range types {
			row[i] = Cell{ct.Name(), formatValue(reflect.ValueOf(ptrs[i]).Elem())}
		}
		id := row.Get("outcome_id")
		if id == "" {
			return nil, fmt.Errorf("faults.ReadOutcomeRows: the outcomes view has no outcome_id")
		}
		out[id] = row
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("faults.ReadOutcomeRows: %w", err)
	}
	return out, nil
}

// formatValue writes a scanned value as text: NULL for a nil pointer,
// times in UTC to the millisecond, slices as [a b].
func formatValue(v reflect.Value) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "NULL"
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.000Z")
	case fmt.Stringer:
		return x.String()
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8 {
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprintf("%q", formatValue(v.Index(i)))
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprint(v.Interface())
}

// maxDiffs bounds the differences DiffRows lists.
const maxDiffs = 10

// DiffRows lists (at most maxDiffs, then a count of the rest) every way
// got differs from want (the no-fault run): an outcome missing or extra,
// or a column (other than NotCompared) with another value, naming the
// outcome, the column and both values, and printing the whole row.
func DiffRows(want, got map[string]OutcomeRow) []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[id]
		if !ok {
			out = append(out, fmt.Sprintf("outcome %s: missing; the no-fault run has %s", id, want[id]))
			continue
		}
		for _, d := range diffRow(want[id], g) {
			out = append(out, fmt.Sprintf("outcome %s: %s\n\trow:         %s\n\tno-fault run: %s", id, d, g, want[id]))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[id]; !ok {
			out = append(out, fmt.Sprintf("outcome %s: absent from the no-fault run: %s", id, got[id]))
		}
	}
	if len(out) > maxDiffs {
		out = append(out[:maxDiffs], fmt.Sprintf("… and %d more differences", len(out)-maxDiffs))
	}
	return out
}

// diffRow names each compared column whose value differs, and each column
// only one of the rows has.
func diffRow(want, got OutcomeRow) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range want {
		seen[c.Column] = true
		if slices.Contains(NotCompared, c.Column) {
			continue
		}
		if !slices.ContainsFunc(got, func(g Cell) bool { return g.Column == c.Column }) {
			out = append(out, fmt.Sprintf("column %s missing (no-fault run %s)", c.Column, c.Value))
		} else if v := got.Get(c.Column); v != c.Value {
			out = append(out, fmt.Sprintf("column %s = %s, no-fault run %s", c.Column, v, c.Value))
		}
	}
	for _, c := range got {
		if !seen[c.Column] && !slices.Contains(NotCompared, c.Column) {
			out = append(out, fmt.Sprintf("column %s = %s, which the no-fault run does not have", c.Column, c.Value))
		}
	}
	return out
}
