package join

import (
	"fmt"
	"math"
	"strings"
	"unsafe"
)

// One encoding serves everything the join keeps or writes of its own: a
// chain's events (compact.go), checkpoints (checkpoint.go) and idle-rule
// records (marks.go) are uvarints, zigzag varints, bytes and
// length-prefixed strings, appended by the functions below and read by the
// *At functions, on their own where the join decodes its chains, through a
// cursor where it reads structures from outside. What the join publishes is
// protobuf (wire.go), appended with the same appendUvarint.

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendVarint(b []byte, v int64) []byte { return appendUvarint(b, zigzag(v)) }

func appendStr(b []byte, s string) []byte {
	b = appendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// uvarintAt reads the uvarint at offset off of d and returns the offset
// after it, or -1 when it is truncated or does not fit 64 bits (what
// encoding/binary refuses too). A read at -1 returns -1 again, so a run of
// reads is checked once, at its end. It inlines (the join decodes its
// chains with it), with a path of its own for one-byte values: lengths,
// enums and profile numbers mostly are.
func uvarintAt(d string, off int) (uint64, int) {
	if uint(off) < uint(len(d)) && d[off] < 0x80 {
		return uint64(d[off]), off + 1
	}
	var v uint64
	for shift := uint(0); uint(off) < uint(len(d)) && shift < 64; shift += 7 {
		b := d[off]
		off++
		v |= uint64(b&0x7f) << shift
		// The tenth byte may only hold the 64th bit; past it the loop ends.
		if b < 0x80 && (shift < 63 || b < 2) {
			return v, off
		}
	}
	return 0, -1
}

// bytesAt returns the n bytes at off of d, -1 when d is shorter.
func bytesAt(d string, off int, n uint64) (string, int) {
	if off < 0 || n > uint64(len(d)-off) {
		return "", -1
	}
	end := off + int(n)
	return d[off:end], end
}

// strAt reads the length-prefixed string at off of d.
func strAt(d string, off int) (string, int) {
	n, off := uvarintAt(d, off)
	return bytesAt(d, off, n)
}

// packedAt reads an id written by appendEventID or appendToken: its bytes,
// and whether they are the binary form of its text.
func packedAt(d string, off int) (string, bool, int) {
	h, off := uvarintAt(d, off)
	s, off := bytesAt(d, off, h>>1)
	return s, h&1 == 1, off
}

// cursor reads structures of the encoding from bytes the join did not write
// itself (a checkpoint, an idle-rule record). It reads them in place and
// copies out every string it returns, so nothing it returns holds on to
// them. The first malformed value fails it: err says what and where, off
// moves to the end, and every later read returns a zero value.
type cursor struct {
	d   string // the bytes, seen as a string for the *At functions
	off int
	err error
}

// newCursor reads b from off; b must not change while the cursor is in use.
func newCursor(b []byte, off int) cursor {
	return cursor{d: unsafe.String(unsafe.SliceData(b), len(b)), off: off}
}

// more reports whether anything is left to read.
func (c *cursor) more() bool { return c.off < len(c.d) }

func (c *cursor) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format+" (at byte %d)", append(args, c.off)...)
		c.off = len(c.d)
	}
}

// to moves the cursor to next, the offset a read returned; -1 fails it.
func (c *cursor) to(next int, what string) bool {
	if next < 0 {
		c.fail("bad %s", what)
		return false
	}
	c.off = next
	return true
}

func (c *cursor) uvarint() uint64 {
	v, next := uvarintAt(c.d, c.off)
	if !c.to(next, "varint") {
		return 0
	}
	return v
}

func (c *cursor) varint() int64 { return unzigzag(c.uvarint()) }

func (c *cursor) byte1() byte {
	if c.off >= len(c.d) {
		c.fail("truncated")
		return 0
	}
	c.off++
	return c.d[c.off-1]
}

func (c *cursor) str() string {
	s, next := strAt(c.d, c.off)
	if !c.to(next, "string") {
		return ""
	}
	return strings.Clone(s)
}

// count reads a count of items of at least minSize bytes each, refusing
// counts the remaining bytes cannot hold (so a corrupt count cannot
// allocate).
func (c *cursor) count(minSize int) int {
	n := c.uvarint()
	if n > uint64((len(c.d)-c.off)/minSize) {
		c.fail("count %d too large", n)
		return 0
	}
	return int(n)
}

// fits32 reports whether v fits the 32 bits of a record count or a profile
// number; fitsEnum whether it fits a (non-negative) protobuf enum.
func fits32(v uint64) bool   { return v <= math.MaxUint32 }
func fitsEnum(v uint64) bool { return v <= math.MaxInt32 }
