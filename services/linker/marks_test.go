package linker

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/hinscore/hinscore/services/lib/domain/ids"
)

func TestMarkRoundTrip(t *testing.T) {
	cases := []struct {
		name     string
		afterSeq uint64
		moves    []idleAdvance
	}{
		{"one network", 7, []idleAdvance{{"netA", 1_700_000_000_000}}},
		{"several networks", 1 << 40, []idleAdvance{{"netA", 5}, {"netB", -5}, {"n", math.MaxInt64}}},
		{"before any event", 0, []idleAdvance{{"netA", 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decodeMark(encodeMark(tc.afterSeq, tc.moves))
			if err != nil {
				t.Fatal(err)
			}
			if m.afterSeq != tc.afterSeq || !slices.Equal(m.moves, tc.moves) {
				t.Fatalf("got %+v", m)
			}
		})
	}
	for _, bad := range [][]byte{nil, {2, 0, 0}, {1, 0, 1}, {1, 0, 1, 0, 0}, append(encodeMark(1, []idleAdvance{{"n", 1}}), 0)} {
		if _, err := decodeMark(bad); !errors.Is(err, ErrBadMark) {
			t.Errorf("decodeMark(%x) = %v, want ErrBadMark", bad, err)
		}
	}
}

// FuzzDecodeMark: a record read from the stream decodes or is refused; a
// decoded one encodes back to the same bytes.
func FuzzDecodeMark(f *testing.F) {
	f.Add(encodeMark(3, []idleAdvance{{"netA", 1_700_000_000_000}}))
	f.Add(encodeMark(0, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMark(data)
		if err != nil {
			return
		}
		if again := encodeMark(m.afterSeq, m.moves); string(again) != string(data) {
			// Varints have one canonical form here; anything else must not decode.
			if _, err := decodeMark(again); err != nil {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
		}
	})
}

// TestOutcomeIDMatchesDomain keeps the join's reused-hash outcome ids equal
// to ids.Outcome, the contract every consumer of OUTCOMES relies on.
func TestOutcomeIDMatchesDomain(t *testing.T) {
	join := newOutcomeIDs()
	for _, c := range []struct{ network, key string }{
		{"netA", "netA|CLINIC|Q1"}, {"n", ""}, {"net-b", "placer:ÄÖ\x00x"}, {"netA", "netA|CLINIC|Q1"},
	} {
		var id [36]byte
		join.outcomeID(&id, c.network, c.key)
		if got, want := string(id[:]), ids.Outcome(c.network, c.key).String(); got != want {
			t.Errorf("outcomeID(%q, %q) = %s, ids.Outcome says %s", c.network, c.key, got, want)
		}
	}
}
