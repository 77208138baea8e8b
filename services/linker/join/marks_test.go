package join_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/hinscore/hinscore/services/linker/join"
)

func TestMarkRoundTrip(t *testing.T) {
	cases := []struct {
		name     string
		afterSeq uint64
		moves    []join.Move
	}{
		{"one network", 7, []join.Move{{"netA", 1_700_000_000_000}}},
		{"several networks", 1 << 40, []join.Move{{"netA", 5}, {"netB", -5}, {"n", math.MaxInt64}}},
		{"before any event", 0, []join.Move{{"netA", 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := join.DecodeMark(join.EncodeMark(tc.afterSeq, tc.moves))
			if err != nil {
				t.Fatal(err)
			}
			if m.AfterSeq != tc.afterSeq || !slices.Equal(m.Moves, tc.moves) {
				t.Fatalf("got %+v", m)
			}
		})
	}
	for _, bad := range [][]byte{nil, {2, 0, 0}, {1, 0, 1}, {1, 0, 1, 0, 0}, append(join.EncodeMark(1, []join.Move{{"n", 1}}), 0)} {
		if _, err := join.DecodeMark(bad); !errors.Is(err, join.ErrBadMark) {
			t.Errorf("DecodeMark(%x) = %v, want ErrBadMark", bad, err)
		}
	}
}

// FuzzDecodeMark: a record read from the stream decodes or is refused; a
// decoded one encodes back to the same bytes.
func FuzzDecodeMark(f *testing.F) {
	f.Add(join.EncodeMark(3, []join.Move{{"netA", 1_700_000_000_000}}))
	f.Add(join.EncodeMark(0, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := join.DecodeMark(data)
		if err != nil {
			return
		}
		if again := join.EncodeMark(m.AfterSeq, m.Moves); string(again) != string(data) {
			// Varints have one canonical form here; anything else must not decode.
			if _, err := join.DecodeMark(again); err != nil {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
		}
	})
}
