package fhirmap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrLineTooLong reports an NDJSON line over the reader's limit; the reader
// skips it and goes on with the next line.
var ErrLineTooLong = errors.New("fhirmap: NDJSON line too long")

// LineReader reads NDJSON (application/fhir+ndjson): one resource per line,
// LF or CRLF, blank lines skipped, line numbers counted from 1.
type LineReader struct {
	r       *bufio.Reader
	maxLine int
	line    int
	buf     []byte
}

// NewLineReader reads r; lines longer than maxLine bytes are reported with
// ErrLineTooLong and skipped.
func NewLineReader(r io.Reader, maxLine int) *LineReader {
	return &LineReader{r: bufio.NewReaderSize(r, 64<<10), maxLine: maxLine}
}

// Next returns the next non-blank line and its number. The bytes are valid
// until the following call. At the end it returns io.EOF; an over-long line
// returns ErrLineTooLong (wrapped, with the line number) and the reader
// stays usable.
func (l *LineReader) Next() (int, []byte, error) {
	for {
		l.buf = l.buf[:0]
		tooLong := false
		var err error
		for {
			var chunk []byte
			chunk, err = l.r.ReadSlice('\n')
			if !tooLong {
				if len(l.buf)+len(chunk) > l.maxLine+2 { // +2: the CRLF is not content
					tooLong = true
					l.buf = l.buf[:0]
				} else {
					l.buf = append(l.buf, chunk...)
				}
			}
			if err != bufio.ErrBufferFull {
				break
			}
		}
		if err != nil && err != io.EOF {
			return l.line, nil, fmt.Errorf("fhirmap.LineReader: line %d: %w", l.line+1, err)
		}
		if err == io.EOF && len(l.buf) == 0 && !tooLong {
			return l.line, nil, io.EOF
		}
		l.line++
		if tooLong {
			return l.line, nil, fmt.Errorf("line %d: %w (over %d bytes)", l.line, ErrLineTooLong, l.maxLine)
		}
		data := bytes.TrimSpace(l.buf)
		if len(data) == 0 {
			if err == io.EOF {
				return l.line, nil, io.EOF
			}
			continue
		}
		return l.line, data, nil
	}
}
