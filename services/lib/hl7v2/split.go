package hl7v2

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/hinscore/hinscore/services/lib/hl7v2/mllp"
)

// Batch errors, wrapped in a *ParseError naming the batch segment.
var (
	ErrBatchCount     = errors.New("hl7v2: batch count does not match")
	ErrBatchStructure = errors.New("hl7v2: batch segments out of order")
)

// Batch is one BHS..BTS batch of a file, or the messages of a file that has
// no batch header. Slices alias the data given to SplitBatches.
type Batch struct {
	Header   []byte   // the BHS segment; nil when the messages had none
	Messages [][]byte // each message, its segments and their terminators
	Trailer  []byte   // the BTS segment; nil when the messages had none
}

// BatchFile is the content of a file (or an MLLP frame) of HL7 messages:
// an optional FHS..FTS envelope around batches, or plain messages.
type BatchFile struct {
	Header  []byte // FHS segment, nil when none
	Batches []Batch
	Trailer []byte // FTS segment, nil when none
}

// IsBatch reports whether the content had any batch segment (FHS or BHS),
// which decides how a peer expects it to be acknowledged.
func (f *BatchFile) IsBatch() bool {
	if f.Header != nil {
		return true
	}
	for _, b := range f.Batches {
		if b.Header != nil {
			return true
		}
	}
	return false
}

// Messages returns every message of every batch, in order.
func (f *BatchFile) Messages() [][]byte {
	var out [][]byte
	for _, b := range f.Batches {
		out = append(out, b.Messages...)
	}
	return out
}

// SplitMessages cuts a file of HL7 messages into messages; see SplitBatches.
func SplitMessages(data []byte) ([][]byte, error) {
	f, err := SplitBatches(data)
	if err != nil {
		return nil, err
	}
	return f.Messages(), nil
}

// SplitBatches reads a file of HL7 messages: MLLP frames, or plain text in
// which a message starts at an MSH segment and ends at the next MSH or
// batch segment (blank lines between segments or messages are skipped and
// never kept in a message). FHS/BHS/BTS/FTS envelopes are checked: every
// BHS closed by a BTS and the FHS by an FTS; BTS-1 (message count) and
// FTS-1 (batch count), when given, must match what was read. An empty
// batch is valid. Text before the first MSH of a batch that is not a batch
// segment is returned as a message of its own, so that Parse rejects it
// rather than it being skipped silently. The slices alias data, except for
// MLLP frames.
func SplitBatches(data []byte) (*BatchFile, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if bytes.IndexByte(bytes.TrimLeft(data, "\r\n\t "), mllp.StartBlock) == 0 {
		return splitFrames(data)
	}
	return splitText(data)
}

func splitText(data []byte) (*BatchFile, error) {
	f := &BatchFile{}
	var cur *Batch // batch being filled
	start, last := -1, -1
	line := 0
	flush := func() {
		if start >= 0 {
			if cur == nil {
				f.Batches = append(f.Batches, Batch{})
				cur = &f.Batches[len(f.Batches)-1]
			}
			cur.Messages = append(cur.Messages, data[start:last])
		}
		start = -1
	}
	pos, segEnd := 0, 0 // the segment being read: data[pos:segEnd]
	bad := func(seg string, field int, err error, reason string) (*BatchFile, error) {
		return nil, &ParseError{Segment: seg, SegmentIndex: line, Sequence: occurrences(data[:segEnd], seg), Field: field, Reason: reason, Err: err}
	}
	for pos < len(data) {
		end, next := segmentAt(data, pos)
		segEnd = end
		seg := data[pos:end]
		if len(bytes.TrimSpace(seg)) == 0 {
			pos = next
			continue
		}
		line++
		switch batchSegment(seg) {
		case "FHS":
			flush()
			if f.Header != nil || len(f.Batches) > 0 {
				return bad("FHS", 0, ErrBatchStructure, "FHS not at the start of the file")
			}
			f.Header = seg
		case "BHS":
			flush()
			if cur != nil && cur.Header != nil && cur.Trailer == nil {
				return bad("BHS", 0, ErrBatchStructure, "BHS before the BTS of the previous batch")
			}
			if f.Trailer != nil {
				return bad("BHS", 0, ErrBatchStructure, "BHS after FTS")
			}
			f.Batches = append(f.Batches, Batch{Header: seg})
			cur = &f.Batches[len(f.Batches)-1]
		case "BTS":
			flush()
			if cur == nil || cur.Header == nil || cur.Trailer != nil {
				return bad("BTS", 0, ErrBatchStructure, "BTS without its BHS")
			}
			cur.Trailer = seg
			if n, ok := countField(seg); ok && n != len(cur.Messages) {
				return bad("BTS", 1, ErrBatchCount, fmt.Sprintf("batch message count %d, but the batch holds %d messages", n, len(cur.Messages)))
			}
			cur = nil
		case "FTS":
			flush()
			if f.Header == nil || f.Trailer != nil {
				return bad("FTS", 0, ErrBatchStructure, "FTS without its FHS")
			}
			if cur != nil && cur.Header != nil {
				return bad("FTS", 0, ErrBatchStructure, "FTS before the BTS of the last batch")
			}
			f.Trailer = seg
			if n, ok := countField(seg); ok && n != len(f.Batches) {
				return bad("FTS", 1, ErrBatchCount, fmt.Sprintf("file batch count %d, but the file holds %d batches", n, len(f.Batches)))
			}
		default:
			if f.Trailer != nil {
				return bad(string(prefix(seg, 3)), 0, ErrBatchStructure, "segment after FTS")
			}
			if bytes.HasPrefix(seg, []byte("MSH")) {
				flush()
				start = pos
			} else if start < 0 {
				start = pos // junk before an MSH: a message of its own, for Parse to reject
			}
			// The message keeps one terminator character after its last
			// segment (the CR of a CRLF), as earlier versions did, so that
			// event ids of imported files stay the same.
			last = min(end+1, len(data))
		}
		pos = next
	}
	flush()
	if err := checkClosed(f, cur, data); err != nil {
		return nil, err
	}
	return f, nil
}

// segmentAt finds the segment that starts at pos: it ends at end (a CR or
// LF, or the end of data), and the next one starts at next (after a CRLF
// as one terminator).
func segmentAt(data []byte, pos int) (end, next int) {
	end = pos
	for end < len(data) && data[end] != '\r' && data[end] != '\n' {
		end++
	}
	next = end
	if next < len(data) {
		next++
		if data[end] == '\r' && next < len(data) && data[next] == '\n' {
			next++
		}
	}
	return end, next
}

// checkClosed refuses a file whose last batch (cur, still open) or whose
// file header has no trailer: a file cut short.
func checkClosed(f *BatchFile, cur *Batch, data []byte) error {
	switch {
	case cur != nil && cur.Header != nil && cur.Trailer == nil:
		return &ParseError{Segment: "BHS", Sequence: occurrences(data, "BHS"), Reason: "batch not closed by BTS (file cut short?)", Err: ErrBatchStructure}
	case f.Header != nil && f.Trailer == nil:
		return &ParseError{Segment: "FHS", Sequence: 1, Reason: "file not closed by FTS (file cut short?)", Err: ErrBatchStructure}
	}
	return nil
}

// occurrences counts the segments named name in data (segments end with
// CR or LF; blank lines are none): the ERR-2.2 sequence of the last one.
// Only an error pays for it.
func occurrences(data []byte, name string) int {
	n := 0
	for len(data) > 0 {
		i := bytes.IndexAny(data, "\r\n")
		seg := data
		if i >= 0 {
			seg, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(seg) >= len(name) && string(seg[:len(name)]) == name && (len(seg) == len(name) || !isAlnum(seg[len(name)])) {
			n++
		}
	}
	return n
}

// batchSegment returns the name of a batch segment, "" for any other.
func batchSegment(seg []byte) string {
	if len(seg) < 3 {
		return ""
	}
	switch n := string(seg[:3]); n {
	case "FHS", "BHS", "BTS", "FTS":
		if len(seg) == 3 || !isAlnum(seg[3]) {
			return n
		}
	}
	return ""
}

// countField reads field 1 of a BTS/FTS (its field separator is the byte
// after the name: trailers have no MSH-1 of their own); ok is false when
// the count is absent, so that a sender that leaves it out is not rejected.
func countField(seg []byte) (int, bool) {
	if len(seg) < 5 {
		return 0, false
	}
	v, _ := nth(seg[4:], seg[3], 0)
	if i := bytes.IndexAny(v, "^~\\&"); i >= 0 {
		v = v[:i]
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
	if err != nil {
		return 0, false
	}
	return n, true
}

// splitFrames reads MLLP frames; a frame may hold a batch of its own.
func splitFrames(data []byte) (*BatchFile, error) {
	r := mllp.NewReader(bytes.NewReader(data), len(data))
	out := &BatchFile{}
	for n := 1; ; n++ {
		fr, err := r.ReadFrame()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("hl7v2.SplitBatches: frame %d: %w", n, err)
		}
		f, err := splitText(bytes.Clone(fr))
		if err != nil {
			return nil, fmt.Errorf("hl7v2.SplitBatches: frame %d: %w", n, err)
		}
		out.Batches = append(out.Batches, f.Batches...)
	}
}
