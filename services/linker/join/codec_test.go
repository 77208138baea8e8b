package join

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestUvarintAtIsBinaryUvarint: uvarintAt reads and refuses exactly what
// encoding/binary does, and a read at -1 stays at -1.
func TestUvarintAtIsBinaryUvarint(t *testing.T) {
	cases := []string{
		"", "\x00", "\x7f", "\x80", "\x80\x01", "\xff\x7f",
		"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", // the largest uint64
		"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", // a 65th bit
		"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x01",
		"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10_000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		cases = append(cases, string(b), string(binary.AppendUvarint(nil, rng.Uint64()>>rng.IntN(64))))
	}
	for _, c := range cases {
		want, n := binary.Uvarint([]byte(c))
		got, off := uvarintAt(c, 0)
		if n <= 0 {
			want, n = 0, -1
		}
		if got != want || off != n {
			t.Fatalf("uvarintAt(%x) = %d, %d; encoding/binary says %d, %d", c, got, off, want, n)
		}
	}
	if _, off := uvarintAt("\x01", -1); off != -1 {
		t.Fatalf("a read at -1 went on at %d", off)
	}
}
