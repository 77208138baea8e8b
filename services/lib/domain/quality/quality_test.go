package quality

import (
	"slices"
	"testing"
)

func TestFlags(t *testing.T) {
	for _, c := range []struct {
		codes []string
		want  []string
	}{
		{nil, nil},
		{[]string{"HL70357|207", "171.204"}, nil},
		{[]string{"HL70357|207", Code(BadTimestamp), Code(NoControlID)}, []string{BadTimestamp, NoControlID}},
		{[]string{"dq", "xdq|a", "dq|"}, []string{""}},
	} {
		if got := Flags(c.codes); !slices.Equal(got, c.want) {
			t.Errorf("Flags(%q) = %q, want %q", c.codes, got, c.want)
		}
	}
}
