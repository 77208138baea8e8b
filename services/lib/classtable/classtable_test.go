package classtable

import (
	"strings"
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

var spec = Spec{Name: "test.Parse", Sources: []string{"http", "fault"}, Exception: true}

// TestParse: a table with the exception column, rows looked up by exact
// code and by an HTTP class, the exception column read.
func TestParse(t *testing.T) {
	tb, err := Parse(strings.NewReader("# c\nversion,t/1\nfault,Consent,response,refused,171.202,privacy\nhttp,404,response,not_found,,n\nhttp,4xx,response,error_permanent,,c\n"), spec)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		source, value string
		status        hinscorev1.Status
		exception     string
		ok            bool
	}{
		{"fault", "Consent", hinscorev1.Status_STATUS_REFUSED, "171.202", true},
		{"http", "404", hinscorev1.Status_STATUS_NOT_FOUND, "", true},
		{"http", "418", hinscorev1.Status_STATUS_ERROR_PERMANENT, "", true},
		{"http", "4a1", 0, "", false},
		{"fault", "404", 0, "", false},
		{"fault", " ", 0, "", false},
	}
	for _, c := range cases {
		r, ok := tb.Lookup(c.source, c.value)
		if ok != c.ok || r.Status != c.status || r.Exception != c.exception {
			t.Errorf("%s %q: %+v %v", c.source, c.value, r, ok)
		}
	}
}

// TestParseErrors: each malformed table is refused naming its line.
func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"fault,x,response,refused,,n\n":                       "line 1: want \"version,<name>\" first",
		"version,t/1\nfault,x,response,refused,n\n":           "line 2: want 6 columns, got 5",
		"version,t/1\nother,x,response,refused,,n\n":          "line 2: unknown source \"other\"",
		"version,t/1\nfault,x,asker,refused,,n\n":             "line 2: unknown role \"asker\"",
		"version,t/1\nfault,x,response,blocked,,n\n":          "line 2: unknown status \"blocked\"",
		"version,t/1\nfault,,response,refused,,n\n":           "line 2: empty match",
		"version,t/1\nfault,x,response,refused,171.999,n\n":   "line 2: unknown exception \"171.999\"",
		"# only a comment\n":                                  "no version line",
		"version,t/1\nfault,\"x,response,refused,171.202,n\n": "parse error",
	}
	for in, want := range cases {
		_, err := Parse(strings.NewReader(in), spec)
		if err == nil || !strings.HasPrefix(err.Error(), "test.Parse: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
