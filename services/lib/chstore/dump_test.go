package chstore_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// dump runs a query and renders each row as one string, values printed by
// the Go type the driver scans them into, so two queries compare row by row.
func dump(t *testing.T, conn driver.Conn, query string) []string {
	t.Helper()
	rows, err := conn.Query(ctxT(t), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out []string
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		var s string
		for _, d := range dest {
			s += fmt.Sprintf("%v|", reflect.ValueOf(d).Elem().Interface())
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}
