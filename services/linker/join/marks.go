package join

import (
	"errors"
	"fmt"
	"math"
)

// A mark is the durable record of an idle-rule decision. The idle rule is
// the only input of the join that does not come from EVENTS (it reads the
// wall clock), so each watermark move it makes is published to the
// partition's subject of the linker's own stream before its outcomes are,
// and every replay applies it at the same place: right after the EVENTS
// message AfterSeq, before the next one. Format (version 1):
//
//	byte 1, uvarint after_seq, uvarint count, then per move:
//	str network, varint watermark
type Mark struct {
	AfterSeq uint64 // the last EVENTS sequence applied before it
	Moves    []Move
}

const markVersion = 1

// ErrBadMark reports an idle-rule record that cannot be decoded.
var ErrBadMark = errors.New("linker: bad watermark record")

// EncodeMark encodes the record of moves made after EVENTS sequence afterSeq.
func EncodeMark(afterSeq uint64, moves []Move) []byte {
	b := []byte{markVersion}
	b = appendUvarint(b, afterSeq)
	b = appendUvarint(b, uint64(len(moves)))
	for _, m := range moves {
		b = appendStr(b, m.Network)
		b = appendVarint(b, m.Watermark)
	}
	return b
}

// DecodeMark decodes a record written by EncodeMark.
func DecodeMark(data []byte) (Mark, error) {
	var m Mark
	if len(data) == 0 || data[0] != markVersion {
		return m, fmt.Errorf("%w: unknown version", ErrBadMark)
	}
	c := newCursor(data, 1)
	m.AfterSeq = c.uvarint()
	n := c.count(2)
	for i := 0; i < n && c.err == nil; i++ {
		m.Moves = append(m.Moves, Move{Network: c.str(), Watermark: c.varint()})
	}
	if c.err == nil && c.more() {
		c.fail("%d bytes after the end", len(data)-c.off)
	}
	if c.err != nil {
		return Mark{}, fmt.Errorf("%w: %w", ErrBadMark, c.err)
	}
	for _, mv := range m.Moves {
		if mv.Network == "" || mv.Watermark == math.MinInt64 {
			return Mark{}, fmt.Errorf("%w: empty move", ErrBadMark)
		}
	}
	return m, nil
}
