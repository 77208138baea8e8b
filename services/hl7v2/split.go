package hl7v2

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/hinscore/hinscore/services/hl7v2/mllp"
)

// SplitMessages cuts a file of HL7 messages into messages. Messages may be
// MLLP frames, or plain text where a message starts at an MSH segment and
// ends at the next MSH, a blank line, or a batch segment (FHS, BHS, BTS,
// FTS, which are dropped). Text before the first MSH that is not a batch
// segment is returned as a message of its own, so that Parse reports it.
// The slices alias data.
func SplitMessages(data []byte) ([][]byte, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if bytes.IndexByte(bytes.TrimLeft(data, "\r\n\t "), mllp.StartBlock) == 0 {
		return splitFrames(data)
	}
	var out [][]byte
	start := -1 // start of the current message, -1 when none
	flush := func(end int) {
		if start >= 0 && end > start {
			out = append(out, data[start:end])
		}
		start = -1
	}
	for pos := 0; pos <= len(data); {
		end := pos
		for end < len(data) && data[end] != '\r' && data[end] != '\n' {
			end++
		}
		line := data[pos:end]
		switch {
		case len(bytes.TrimSpace(line)) == 0:
			flush(pos)
		case isBatchSegment(line):
			flush(pos)
		case bytes.HasPrefix(line, []byte("MSH")):
			flush(pos)
			start = pos
		case start < 0:
			start = pos
		}
		if end >= len(data) {
			flush(len(data))
			break
		}
		pos = end + 1
	}
	return out, nil
}

func isBatchSegment(line []byte) bool {
	if len(line) < 3 {
		return false
	}
	switch string(line[:3]) {
	case "FHS", "BHS", "BTS", "FTS":
		return len(line) == 3 || !isAlnum(line[3])
	}
	return false
}

func splitFrames(data []byte) ([][]byte, error) {
	r := mllp.NewReader(bytes.NewReader(data), len(data))
	var out [][]byte
	for {
		f, err := r.ReadFrame()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("hl7v2.SplitMessages: frame %d: %w", len(out)+1, err)
		}
		out = append(out, bytes.Clone(f))
	}
}
