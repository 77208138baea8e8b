package outcomeclass

import "testing"

func TestNamesRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range All {
		n := Name(c)
		if n == "" || seen[n] {
			t.Fatalf("class %v: name %q empty or repeated", c, n)
		}
		seen[n] = true
		back, err := Parse(n)
		if err != nil || back != c {
			t.Fatalf("Parse(%q) = %v, %v; want %v", n, back, err, c)
		}
	}
	if len(seen) != 12 {
		t.Fatalf("%d classes named, DOMAIN.md has 12", len(seen))
	}
	if _, err := Parse("blocked"); err == nil {
		t.Fatal("Parse accepted an unknown class")
	}
}
