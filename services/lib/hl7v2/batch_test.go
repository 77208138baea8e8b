package hl7v2

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dumpBatches renders a file's structure and, per message, its control id.
func dumpBatches(f *BatchFile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "FHS %q\nbatch %v\n", f.Header, f.IsBatch())
	for i, bt := range f.Batches {
		fmt.Fprintf(&b, "batch %d BHS %q messages %d BTS %q\n", i+1, bt.Header, len(bt.Messages), bt.Trailer)
		for _, raw := range bt.Messages {
			m, err := Parse(raw)
			if err != nil {
				fmt.Fprintf(&b, "  error %v\n", err)
				continue
			}
			fmt.Fprintf(&b, "  %s %s %d segments, %d bytes\n", m.Get("MSH-10"), m.Get("MSH-9"), m.SegmentCount(), len(raw))
		}
	}
	fmt.Fprintf(&b, "FTS %q\n", f.Trailer)
	return b.String()
}

func TestSplitBatchesGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/batch/*.hl7")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f, err := SplitBatches(data)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.TrimSuffix(file, ".hl7")+".golden", dumpBatches(f))
		})
	}
}

func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("differs from %s (run with -update to accept):\n%s", golden, got)
	}
}

func TestSplitBatchesErrors(t *testing.T) {
	msg := "MSH|^~\\&|A|B|C|D|20260302||ADT^A01|1|P|2.5\rPID|1\r"
	tests := []struct {
		name, data string
		want       error
		segment    string
		field, seq int // seq: ERR-2.2, the occurrence of the segment's name
	}{
		{"BTS count too high", "BHS|^~\\&\r" + msg + "BTS|2\r", ErrBatchCount, "BTS", 1, 1},
		{"BTS count on empty batch", "BHS|^~\\&\rBTS|1\r", ErrBatchCount, "BTS", 1, 1},
		{"second batch's count", "BHS|^~\\&\r" + msg + "BTS|1\r\rBHS|^~\\&\r" + msg + msg + "BTS|3\r", ErrBatchCount, "BTS", 1, 2},
		{"FTS count", "FHS|^~\\&\rBHS|^~\\&\r" + msg + "BTS|1\rFTS|2\r", ErrBatchCount, "FTS", 1, 1},
		{"BHS not closed", "BHS|^~\\&\r" + msg, ErrBatchStructure, "BHS", 0, 1},
		{"second BHS not closed", "BHS|^~\\&\r" + msg + "BTS|1\rBHS|^~\\&\r" + msg, ErrBatchStructure, "BHS", 0, 2},
		{"FHS not closed", "FHS|^~\\&\rBHS|^~\\&\r" + msg + "BTS|1\r", ErrBatchStructure, "FHS", 0, 1},
		{"BTS alone", msg + "BTS|1\r", ErrBatchStructure, "BTS", 0, 1},
		{"FTS alone", msg + "FTS|1\r", ErrBatchStructure, "FTS", 0, 1},
		{"nested BHS", "BHS|^~\\&\rBHS|^~\\&\rBTS|0\rBTS|0\r", ErrBatchStructure, "BHS", 0, 2},
		{"message after FTS", "FHS|^~\\&\rFTS|0\r" + msg, ErrBatchStructure, "MSH", 0, 1},
		{"FHS twice", "FHS|^~\\&\rFHS|^~\\&\r", ErrBatchStructure, "FHS", 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SplitBatches([]byte(tt.data))
			var pe *ParseError
			if !errors.Is(err, tt.want) || !errors.As(err, &pe) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if pe.Segment != tt.segment || pe.Field != tt.field || pe.Sequence != tt.seq {
				t.Errorf("location %s^%d^%d, want %s^%d^%d (%v)", pe.Segment, pe.Sequence, pe.Field, tt.segment, tt.seq, tt.field, err)
			}
			if ae := AckErrorFor(err); ae.SegmentIndex != tt.seq {
				t.Errorf("ERR-2.2 %d, want the occurrence %d", ae.SegmentIndex, tt.seq)
			}
		})
	}
	// Counts that are absent or not numbers are not checked: senders leave them out.
	for _, ok := range []string{"BHS|^~\\&\r" + msg + "BTS\r", "BHS|^~\\&\r" + msg + "BTS||comment\r", "BHS|^~\\&\rBTS|0\r"} {
		if _, err := SplitBatches([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// TestEncodeRoundTrip re-encodes every sample with other delimiters and
// back: values read the same, and the bytes come back canonical.
func TestEncodeRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/parse/*.hl7")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		checkRoundTrip(t, file, m, []string{"MSH-3", "MSH-4.1", "MSH-4.2", "MSH-9.1", "MSH-9.2", "MSH-10", "PID-3(1).4.1", "PID-3(2).1", "PID-5.1", "PID-5.2", "PID-7",
			"OBX(2)-5.1", "OBX(3)-5.1", "OBR-4.2", "QPD-3(1).1", "QPD-3(2).2", "ERR-8", "ERR-5.3", "NTE-3"})
	}
	if _, err := mustParseT(t, pathMsg).Encode(Delimiters{Field: '|', Component: '|', Repetition: '~', Escape: '\\', SubComponent: '&'}); !errors.Is(err, ErrBadDelimiters) {
		t.Errorf("duplicate delimiters accepted: %v", err)
	}
}

// checkRoundTrip encodes m with other delimiters and back: the message
// parses, keeps its segments, comes back to m's canonical bytes, and the
// values at paths read the same (null or not) in the other encoding.
func checkRoundTrip(t *testing.T, name string, m *Message, paths []string) {
	t.Helper()
	others := []Delimiters{
		DefaultDelimiters,
		{Field: '#', Component: '$', Repetition: '*', Escape: '@', SubComponent: '%', Truncation: '!'},
		{Field: '|', Component: '^', Repetition: '~', Escape: '`', SubComponent: '}'},
	}
	canon, err := m.Encode(m.Delimiters())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range others {
		enc, err := m.Encode(d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m2, err := Parse(enc)
		if err != nil {
			t.Fatalf("%s with %q: does not parse: %v\n%q", name, d.EncodingCharacters(), err, enc)
		}
		if m2.SegmentCount() != m.SegmentCount() {
			t.Errorf("%s: %d segments, want %d", name, m2.SegmentCount(), m.SegmentCount())
		}
		back, err := m2.Encode(m.Delimiters())
		if err != nil {
			t.Fatal(err)
		}
		if string(back) != string(canon) {
			t.Errorf("%s via %q:\n got %q\nwant %q", name, d.EncodingCharacters(), back, canon)
		}
		if d == m.Delimiters() {
			continue
		}
		// Leaf values read the same, except those holding an escape
		// sequence Unescape keeps verbatim (it carries the escape character).
		// MSH-1, MSH-2 and values with inner delimiters read with the other
		// delimiters.
		od := m.Delimiters()
		for _, p := range paths {
			v, raw := m.Get(p), string(m.Raw(p))
			if p == "MSH-1" || p == "MSH-2" ||
				strings.IndexByte(raw, od.Escape) >= 0 && strings.Contains(v, string(od.Escape)) ||
				strings.ContainsAny(raw, string([]byte{od.Component, od.Repetition, od.SubComponent})) {
				continue
			}
			if m2.Get(p) != v || m2.IsNull(p) != m.IsNull(p) {
				t.Errorf("%s via %q: %s = %q (null %v), want %q", name, d.EncodingCharacters(), p, m2.Get(p), m2.IsNull(p), v)
			}
		}
	}
}

// TestEncodeTruncationInEscape: a sequence Unescape keeps verbatim that
// holds the truncation character reads the same (escape characters and
// all) whichever delimiters write it, as its canonical form does.
func TestEncodeTruncationInEscape(t *testing.T) {
	m := mustParseT(t, "MSH|^~\\&#|A|B|C|D|20260302||ADT^A08|1|P|2.7\rNTE|1||a\\#\\b\r")
	if got := m.Get("NTE-3"); got != `a\#\b` {
		t.Fatalf("NTE-3 = %q", got)
	}
	for _, d := range []Delimiters{m.Delimiters(), DefaultDelimiters, {Field: '|', Component: '^', Repetition: '~', Escape: '`', SubComponent: '}'}} {
		enc, err := m.Encode(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustParseT(t, string(enc)).Get("NTE-3"); got != `a\#\b` {
			t.Errorf("%q: NTE-3 = %q, want %q", enc, got, `a\#\b`)
		}
	}
}

// TestEncodeLineBreakWithDotTruncation: \.br\ is a line break even where
// '.' is the truncation character, and stays one whichever delimiters
// write it (the fuzzer found it written as text, \E\\X2E\br\E\).
func TestEncodeLineBreakWithDotTruncation(t *testing.T) {
	m := mustParseT(t, "MSH|^~\\&.|A|B|C|D|20260302||ADT^A08|1|P|2.7\rNTE|1||one\\.br\\two\r")
	if got := m.Get("NTE-3"); got != "one\rtwo" {
		t.Fatalf("NTE-3 = %q", got)
	}
	for _, d := range []Delimiters{m.Delimiters(), DefaultDelimiters, {Field: '#', Component: '$', Repetition: '*', Escape: '@', SubComponent: '%'}} {
		enc, err := m.Encode(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustParseT(t, string(enc)).Get("NTE-3"); got != "one\rtwo" {
			t.Errorf("%q: NTE-3 = %q, want a line break", enc, got)
		}
		if want := "one" + string(d.Escape) + ".br" + string(d.Escape) + "two"; !strings.Contains(string(enc), want) {
			t.Errorf("%q: want %q", enc, want)
		}
	}
}

func mustParseT(t *testing.T, s string) *Message {
	t.Helper()
	m, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNullsAndCharsets(t *testing.T) {
	m := mustParseT(t, "MSH|^~\\&|A|B|C|D|20260302||ADT^A08|1|P|2.5\rPID|1|\"\"||\"\"^X|\r")
	tests := []struct {
		path       string
		want       string
		null, miss bool
	}{
		{"PID-2", "", true, false},
		{"PID-3", "", false, false},
		{"PID-4", "\"\"^X", false, false},
		{"PID-4.1", "", true, false},
		{"PID-5", "", false, false},
		{"PID-6", "", false, true},
	}
	for _, tt := range tests {
		if got := m.Get(tt.path); got != tt.want || m.IsNull(tt.path) != tt.null || (m.Raw(tt.path) == nil) != tt.miss {
			t.Errorf("%s = %q null %v raw %q", tt.path, got, m.IsNull(tt.path), m.Raw(tt.path))
		}
	}
	charsets := []struct {
		msh18, value, want string
		cs                 Charset
	}{
		{"", "plain", "plain", CharsetASCII},
		{"ASCII", "caf\xe9", "café", CharsetASCII},          // mislabelled 8859/1
		{"", "café", "café", CharsetASCII},                  // mislabelled UTF-8
		{"8859/1", "café", "cafÃ©", CharsetLatin1},          // 8859/1 taken at its word
		{"8859/1", "\\XE9\\t\\XE9\\", "été", CharsetLatin1}, // hex escapes are bytes of the charset
		{"UNICODE UTF-8", "caf\xe9", "caf\uFFFD", CharsetUTF8},
		{"UNICODE UTF-8~8859/1", "ü", "ü", CharsetUTF8}, // the first repetition is the default set
		{"8859/15", "caf\xe9", "café", CharsetASCII},
	}
	for _, c := range charsets {
		m := mustParseT(t, "MSH|^~\\&|A|B|C|D|20260302||ADT^A08|1|P|2.5|||||USA|"+c.msh18+"\rNTE|1||"+c.value+"\r")
		if got := m.Get("NTE-3"); got != c.want || m.Charset() != c.cs {
			t.Errorf("MSH-18 %q, %q: got %q (%s), want %q (%s)", c.msh18, c.value, got, m.Charset(), c.want, c.cs)
		}
	}
}

func TestBuildBatchReply(t *testing.T) {
	data, err := os.ReadFile("testdata/batch/two_batches.hl7")
	if err != nil {
		t.Fatal(err)
	}
	f, err := SplitBatches(data)
	if err != nil {
		t.Fatal(err)
	}
	var replies [][]byte
	for _, raw := range f.Messages() {
		m, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, BuildAck(m, CodeAA, nil, ackNow, "R"+m.Get("MSH-10")))
	}
	out := BuildBatchReply(f, replies, ackNow, "RB1")
	back, err := SplitBatches(out)
	if err != nil {
		t.Fatalf("reply is not a valid batch: %v\n%q", err, out)
	}
	if len(back.Batches) != 1 || back.Header == nil || back.Trailer == nil || len(back.Messages()) != 3 {
		t.Fatalf("reply structure: %s", dumpBatches(back))
	}
	bhs := string(back.Batches[0].Header)
	if want := "BHS|^~\\&|HIE|NETB|EHR|HOSP_A|20260302150405.600+0000||||RB1|B1"; bhs != want {
		t.Errorf("BHS %q, want %q", bhs, want)
	}
	for i, raw := range back.Messages() {
		m, err := Parse(raw)
		if err != nil || m.Get("MSA-1") != "AA" || m.Get("MSA-2") != fmt.Sprintf("M%d", i+1) {
			t.Errorf("reply %d: %q %v", i+1, raw, err)
		}
	}
	if string(back.Batches[0].Trailer) != "BTS|3" || string(back.Trailer) != "FTS|1" {
		t.Errorf("trailers %q %q", back.Batches[0].Trailer, back.Trailer)
	}
}

func TestAckPolicy(t *testing.T) {
	tests := []struct {
		msh15, msh16, outcome, code string
		send                        bool
	}{
		{"", "", CodeAA, CodeAA, true},
		{"", "", CodeAR, CodeAR, true},
		{"AL", "NE", CodeAA, CodeCA, true},
		{"AL", "", CodeAE, CodeCE, true},
		{"", "AL", CodeAR, CodeCR, true},
		{"NE", "AL", CodeAA, CodeCA, false},
		{"ER", "", CodeAA, CodeCA, false},
		{"ER", "", CodeAE, CodeCE, true},
		{"SU", "", CodeAA, CodeCA, true},
		{"SU", "", CodeAR, CodeCR, false},
	}
	for _, tt := range tests {
		m := mustParseT(t, "MSH|^~\\&|A|B|C|D|20260302||QBP^Q22|1|P|2.5|||"+tt.msh15+"|"+tt.msh16+"\rQPD|x|T\r")
		code, send := m.AckPolicy().Reply(tt.outcome)
		if code != tt.code || send != tt.send {
			t.Errorf("MSH-15 %q MSH-16 %q %s: %s %v, want %s %v", tt.msh15, tt.msh16, tt.outcome, code, send, tt.code, tt.send)
		}
		if code[0] == 'C' {
			r := mustParseT(t, string(BuildAck(m, code, []AckError{{Code: "207"}}, ackNow, "R")))
			if r.Get("MSH-9.1") != "ACK" || r.Has("QAK") || r.Get("MSA-1") != code || (code == CodeCA) == r.Has("ERR") {
				t.Errorf("commit ack %s: %q", code, r.Bytes())
			}
		}
	}
}

func FuzzSplitBatches(f *testing.F) {
	files, _ := filepath.Glob("testdata/batch/*.hl7")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		bf, err := SplitBatches(data)
		if err != nil {
			return
		}
		total := 0
		for _, b := range bf.Batches {
			total += len(b.Messages)
			for _, m := range b.Messages {
				if len(m) == 0 || len(m) > len(data) {
					t.Fatalf("message of %d bytes from %d", len(m), len(data))
				}
			}
		}
		if len(bf.Messages()) != total {
			t.Fatal("Messages() loses messages")
		}
		// A batch reply to whatever was read is itself a valid batch.
		if bf.IsBatch() {
			reply := BuildBatchReply(bf, nil, ackNow, "R")
			if _, err := SplitBatches(reply); err != nil {
				t.Fatalf("reply batch: %v\n%q", err, reply)
			}
		}
	})
}
