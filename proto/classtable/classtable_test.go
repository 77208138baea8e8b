package classtable

import (
	"strings"
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// TestParse: a table's rows may name only its own sources, roles and
// statuses by name, and errors name the line.
func TestParse(t *testing.T) {
	tb, err := Parse(strings.NewReader("# comment\nversion,x/1\nhttp,404,response,not_found,gone\nhttp,4xx,response,error_permanent,\n"), "http")
	if err != nil {
		t.Fatal(err)
	}
	if tb.Version != "x/1" || len(tb.Rules) != 2 || tb.Rules[0].Note != "gone" {
		t.Errorf("table %+v", tb)
	}
	for _, tc := range []struct{ csv, err string }{
		{"http,404,response,ok,\n", "line 1: want \"version,<name>\" first"},
		{"version,x/1\nissue,x,response,ok,\n", "line 2: unknown source \"issue\""},
		{"version,x/1\nhttp,1,reply,ok,\n", "line 2: unknown role \"reply\""},
		{"version,x/1\nhttp,1,response,blocked,\n", "line 2: unknown status \"blocked\""},
		{"version,x/1\nhttp,,response,ok,\n", "line 2: empty match"},
		{"version,x/1\nhttp,1,response\n", "line 2: want 5 columns, got 3"},
		{"# nothing\n", "no version line"},
	} {
		if _, err := Parse(strings.NewReader(tc.csv), "http"); err == nil || err.Error() != tc.err {
			t.Errorf("%q: %v, want %s", tc.csv, err, tc.err)
		}
	}
}

// TestLookup: the first matching row wins, "4xx" matches three digits
// starting with 4 and nothing else.
func TestLookup(t *testing.T) {
	tb, err := Parse(strings.NewReader("version,x/1\nhttp,404,response,not_found,\nhttp,4xx,response,error_permanent,\nind,0,response,ok,\n"), "http", "ind")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		source, value string
		want          hinscorev1.Status
		ok            bool
	}{
		{"http", "404", hinscorev1.Status_STATUS_NOT_FOUND, true},
		{"http", " 403 ", hinscorev1.Status_STATUS_ERROR_PERMANENT, true},
		{"http", "4ab", 0, false},
		{"http", "4000", 0, false},
		{"http", "", 0, false},
		{"ind", "0", hinscorev1.Status_STATUS_OK, true},
		{"http", "0", 0, false},
	}
	for _, tc := range cases {
		r, ok := tb.Lookup(tc.source, tc.value)
		if ok != tc.ok || r.Status != tc.want {
			t.Errorf("%s %q: %v %v, want %v %v", tc.source, tc.value, r.Status, ok, tc.want, tc.ok)
		}
	}
}

// TestParseCiting: a table with the exception column reads the cited
// exception of each row and refuses a code that is no exception.
func TestParseCiting(t *testing.T) {
	tb, err := ParseCiting(strings.NewReader("version,s/1\nfault,Consent,response,refused,171.202,privacy\nfault,Busy,response,error_transient,,\"busy, retry\"\n"), "fault")
	if err != nil {
		t.Fatal(err)
	}
	r, ok := tb.Lookup("fault", "Consent")
	if !ok || r.Exception != "171.202" || r.Status != hinscorev1.Status_STATUS_REFUSED || r.Note != "privacy" {
		t.Errorf("Consent: %+v", r)
	}
	if r, _ := tb.Lookup("fault", "Busy"); r.Exception != "" || r.Note != "busy, retry" {
		t.Errorf("Busy: %+v", r)
	}
	for _, tc := range []struct{ csv, err string }{
		{"version,s/1\nfault,x,response,refused,171.999,n\n", "line 2: unknown exception \"171.999\""},
		{"version,s/1\nfault,x,response,refused,n\n", "line 2: want 6 columns, got 5"},
	} {
		if _, err := ParseCiting(strings.NewReader(tc.csv), "fault"); err == nil || err.Error() != tc.err {
			t.Errorf("%q: %v, want %s", tc.csv, err, tc.err)
		}
	}
}
