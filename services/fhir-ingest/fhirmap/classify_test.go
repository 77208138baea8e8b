package fhirmap

import (
	"strings"
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// TestTableOver: a network's rows come first, the built-in rows answer the
// rest, the version names both, and the built-in table is left as it was.
func TestTableOver(t *testing.T) {
	own, err := ParseTable(strings.NewReader("version,neta-class/1\nissue,throttled,response,error_transient,\nhttp,4xx,response,refused,\n"))
	if err != nil {
		t.Fatal(err)
	}
	base := DefaultTable()
	tb := own.Over(base)
	if tb.Version != "neta-class/1+fhir-class/2" {
		t.Errorf("version %q", tb.Version)
	}
	cases := []struct {
		table         *Table
		source, value string
		want          hinscorev1.Status
	}{
		{tb, SourceIssue, "throttled", hinscorev1.Status_STATUS_ERROR_TRANSIENT},
		{tb, SourceIssue, "suppressed", hinscorev1.Status_STATUS_REFUSED},
		{tb, SourceHTTP, "404", hinscorev1.Status_STATUS_REFUSED}, // the network's 4xx row comes before the built-in 404
		{tb, SourceTask, "completed", hinscorev1.Status_STATUS_OK},
		{base, SourceIssue, "throttled", hinscorev1.Status_STATUS_REFUSED},
		{base, SourceHTTP, "404", hinscorev1.Status_STATUS_NOT_FOUND},
	}
	for _, tc := range cases {
		r, ok := tc.table.Lookup(tc.source, tc.value)
		if !ok || r.Status != tc.want {
			t.Errorf("%s: %s %s = %v %v, want %v", tc.table.Version, tc.source, tc.value, r.Status, ok, tc.want)
		}
	}
}
