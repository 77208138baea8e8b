package outcome

import "testing"

func TestParseAndSuspect(t *testing.T) {
	seen := map[Class]bool{}
	for _, c := range All {
		if c == "" || seen[c] {
			t.Fatalf("class %q empty or repeated", c)
		}
		seen[c] = true
		if back, err := Parse(string(c)); err != nil || back != c {
			t.Fatalf("Parse(%q) = %q, %v", c, back, err)
		}
	}
	if _, err := Parse("FULFILLED"); err == nil {
		t.Fatal("Parse accepted a name that is not DOMAIN.md's")
	}
	var suspect []Class
	for _, c := range All {
		if c.Suspect() {
			suspect = append(suspect, c)
		}
	}
	if len(suspect) != 3 || suspect[0] != RefusedUnjustified || suspect[1] != Redirected || suspect[2] != Unanswered {
		t.Fatalf("suspect classes %v", suspect)
	}
}
