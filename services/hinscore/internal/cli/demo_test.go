package cli

import (
	"strings"
	"testing"
)

// TestPrintTruthCheck: a network passes when every class's rate is within
// the tolerance of the truth's, orphans aside; a class off by more fails
// it even when the refusal and unanswered rates agree.
func TestPrintTruthCheck(t *testing.T) {
	truth := map[string]map[string]int{"carequal-east": {"fulfilled": 90, "partial": 5, "refused_unjustified": 5}}
	cases := []struct {
		name     string
		measured map[string]map[string]uint64
		ok       bool
	}{
		{"equal, orphans aside", map[string]map[string]uint64{"carequal-east": {"fulfilled": 90, "partial": 5, "refused_unjustified": 5, "orphan": 40}}, true},
		{"within 2 points", map[string]map[string]uint64{"carequal-east": {"fulfilled": 91, "partial": 4, "refused_unjustified": 5}}, true},
		{"partial read as fulfilled", map[string]map[string]uint64{"carequal-east": {"fulfilled": 95, "refused_unjustified": 5}}, false},
		{"network missing", map[string]map[string]uint64{}, false},
	}
	for _, c := range cases {
		var b strings.Builder
		if got := printTruthCheck(&b, truth, c.measured); got != c.ok {
			t.Errorf("%s: %v, want %v\n%s", c.name, got, c.ok, b.String())
		}
		if !strings.Contains(b.String(), "carequal-east") {
			t.Errorf("%s: the network's line is missing:\n%s", c.name, b.String())
		}
	}
}
