// Package csvsafe writes CSV that a spreadsheet opens as data, never as
// formulas: every CSV hinscore writes goes through it. Organisation names
// and identifiers come from the traffic (MSH-4 as the sender spelled it, a
// directory row), so a cell of a scorecard can be "=HYPERLINK(...)" if a
// sender chose so; a spreadsheet that opened it would run it on the
// analyst's machine (CSV or formula injection, CWE-1236).
package csvsafe

import (
	"bufio"
	"io"
	"regexp"
	"strings"
)

// triggers are the first characters that make a spreadsheet read a cell as
// a formula or a command (OWASP's list: = + - @ tab CR; ASVS adds NUL),
// with LF, which some importers treat as CR, and the full-width forms of
// = + - @, which some spreadsheets fold to the ASCII ones.
const triggers = "=+-@\t\r\n\x00＝＋－＠"

// plainNumber is a cell a spreadsheet reads as a number and nothing else:
// a negative figure ("-0.25", a trend) stays a number in the sheet.
var plainNumber = regexp.MustCompile(`^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$`)

// Cell returns s as a spreadsheet shows it as text: a cell that begins
// (after any spaces, which spreadsheets skip) with a trigger character is
// prefixed with a single quote, OWASP's remedy, unless it is a plain
// number. Every other cell is returned unchanged.
func Cell(s string) string {
	lead := strings.TrimLeft(s, " ")
	if lead == "" || !strings.ContainsRune(triggers, firstRune(lead)) || plainNumber.MatchString(s) {
		return s
	}
	return "'" + s
}

func firstRune(s string) rune {
	for _, r := range s {
		return r
	}
	return 0
}

// Writer writes records as RFC 4180 CSV with every cell made safe (Cell)
// and quoted. Quoting every cell keeps a cell whole in a spreadsheet that
// splits on ';' or tab rather than ','; spreadsheets still read a quoted
// number as a number. Lines end in "\n", as encoding/csv's do.
type Writer struct {
	w   *bufio.Writer
	err error
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriter(w)} }

// Write writes one record. The first error is kept: Write and Flush do
// nothing after it, and Error returns it.
func (w *Writer) Write(record []string) error {
	if w.err != nil {
		return w.err
	}
	for i, field := range record {
		if i > 0 {
			w.w.WriteByte(',')
		}
		w.w.WriteByte('"')
		w.w.WriteString(strings.ReplaceAll(Cell(field), `"`, `""`))
		w.w.WriteByte('"')
	}
	if err := w.w.WriteByte('\n'); err != nil {
		w.err = err
	}
	return w.err
}

// WriteAll writes records and flushes.
func (w *Writer) WriteAll(records [][]string) error {
	for _, r := range records {
		if err := w.Write(r); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// Flush writes any buffered data to the underlying writer.
func (w *Writer) Flush() {
	if w.err == nil {
		w.err = w.w.Flush()
	}
}

// Error returns the first error of a Write or Flush.
func (w *Writer) Error() error { return w.err }
