package hl7v2

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// dump renders every field of every segment: raw, and unescaped when different.
func dump(m *Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "delimiters %q charset %s\n", []byte{m.delims.Field, m.delims.Component, m.delims.Repetition, m.delims.Escape, m.delims.SubComponent, m.delims.Truncation}, m.Charset())
	occ := map[string]int{}
	for i := 0; i < m.SegmentCount(); i++ {
		name := m.SegmentName(i)
		occ[name]++
		fmt.Fprintf(&b, "%d %s\n", i+1, name)
		n := strings.Count(string(m.SegmentBytes(i)), string(m.delims.Field))
		if name == "MSH" {
			n++
		}
		for f := 1; f <= n; f++ {
			field := fmt.Sprintf("%s(%d)-%d", name, occ[name], f)
			reps := max(m.Repetitions(field), 1)
			if name == "MSH" && f <= 2 {
				reps = 1 // MSH-2 holds the repetition character itself
			}
			for r := 1; r <= reps; r++ {
				path := fmt.Sprintf("%s(%d)", field, r)
				raw, val := string(m.Raw(path)), m.Get(path)
				if raw == "" {
					continue
				}
				fmt.Fprintf(&b, "  %s = %q", path, raw)
				if m.IsNull(path) {
					b.WriteString(" (null)")
				} else if val != raw {
					fmt.Fprintf(&b, " -> %q", val)
				}
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

// values lists every leaf (sub-component) of every field, decoded: escape
// sequences never span a delimiter, so leaves are what a reader sees.
func values(m *Message) string {
	var b strings.Builder
	d := m.delims
	for i := 0; i < m.SegmentCount(); i++ {
		fields := strings.Split(string(m.SegmentBytes(i)[3:]), string(d.Field))
		if i == 0 && len(fields) > 1 {
			fields = fields[2:] // MSH-1 and MSH-2 are the delimiters
		}
		for f, field := range fields {
			for r, rep := range strings.Split(field, string(d.Repetition)) {
				for c, comp := range strings.Split(rep, string(d.Component)) {
					for s, sub := range strings.Split(comp, string(d.SubComponent)) {
						fmt.Fprintf(&b, "%d-%d(%d).%d.%d=%q\n", i, f, r, c, s, m.Decode([]byte(sub)))
					}
				}
			}
		}
	}
	return b.String()
}

func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/parse/*.hl7")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			got := dump(m)
			golden := strings.TrimSuffix(f, ".hl7") + ".golden"
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
				t.Errorf("dump differs from %s (run with -update to accept):\n%s", golden, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    error
		segment string
		index   int
		field   int
	}{
		{"empty", "", ErrEmpty, "", 0, 0},
		{"only blank lines", "\r\n\r\n", ErrEmpty, "", 0, 0},
		{"junk before MSH", "hello\rMSH|^~\\&|A|B|C|D|20260302||ACK|1|P|2.5\r", ErrNoMSH, "", 1, 0},
		{"PID first", "PID|1||X\r", ErrNoMSH, "", 1, 0},
		{"empty control id", "MSH|^~\\&|A|B|C|D|20260302||ACK^A01|||P|2.5\r", ErrEmptyControlID, "MSH", 1, 10},
		{"null control id", "MSH|^~\\&|A|B|C|D|20260302||ACK^A01|\"\"|P|2.5\r", ErrEmptyControlID, "MSH", 1, 10},
		{"junk line before MSH", "\xef\xbb\xbf\r\nGARBAGE 123\r\nMSH|^~\\&|A|B|C|D|20260302||ACK|1|P|2.5\r", ErrNoMSH, "", 1, 0},
		{"binary before MSH", "\x00\x01MSH|^~\\&|A|B|C|D|20260302||ACK|1|P|2.5\r", ErrNoMSH, "", 1, 0},
		{"missing control id", "MSH|^~\\&|A|B|C|D|20260302||ACK^A01\r", ErrEmptyControlID, "MSH", 1, 10},
		{"empty message type", "MSH|^~\\&|A|B|C|D|20260302|||C1|P|2.5\r", ErrEmptyMessageType, "MSH", 1, 9},
		{"three encoding chars", "MSH|^~\\|A|B|C|D|20260302||ACK|1|P|2.5\r", ErrBadDelimiters, "MSH", 1, 2},
		{"six encoding chars", "MSH|^~\\&#!|A|B\r", ErrBadDelimiters, "MSH", 1, 2},
		{"delimiter twice", "MSH|^~\\^|A|B|C|D|20260302||ACK|1|P|2.5\r", ErrBadDelimiters, "MSH", 1, 2},
		{"letter delimiter", "MSHX^~\\&XAXB\r", ErrBadDelimiters, "MSH", 1, 1},
		{"non-ASCII delimiter", "MSH|!\xc2\\\"|A|B|C|D|20260302||ACK|1|P|2.5\r", ErrBadDelimiters, "MSH", 1, 2},
		{"control delimiter", "MSH\t^~\\&\tA\tB\r", ErrBadDelimiters, "MSH", 1, 1},
		{"short MSH", "MSH|^~\r", ErrBadDelimiters, "MSH", 1, 1},
		{"bad segment name", "MSH|^~\\&|A|B|C|D|20260302||ACK|1|P|2.5\rMSA|AA|1\rpid|1\r", ErrBadSegmentName, "", 3, 0},
		{"long segment name", "MSH|^~\\&|A|B|C|D|20260302||ACK|1|P|2.5\rPIDX|1\r", ErrBadSegmentName, "", 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%T is not a *ParseError", err)
			}
			if pe.Segment != tt.segment || pe.SegmentIndex != tt.index || pe.Field != tt.field {
				t.Errorf("location %s/%d/%d, want %s/%d/%d (%v)", pe.Segment, pe.SegmentIndex, pe.Field, tt.segment, tt.index, tt.field, err)
			}
		})
	}
}

const pathMsg = "MSH|^~\\&|EHR|HOSP_A^1.2.3^ISO|HIE|NETB|20260302095900||QBP^Q22^QBP_Q21|Q1|P|2.5.1\r" +
	"QPD|IHE PDQ Query|TAG1|@PID.3.1^MRN42~@PID.3.4.1^HOSP_A\r" +
	"PID|1||A1^^^AUTH1&1.2&ISO~B2^^^AUTH2||DOE\\S\\X^JANE\r" +
	"OBX|1|ST|||first\r" +
	"OBX|2|ST|||second|||\r"

func TestGet(t *testing.T) {
	m, err := Parse([]byte(pathMsg))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{"MSH-1", "|"},
		{"MSH-2", "^~\\&"},
		{"MSH-3", "EHR"},
		{"MSH-4", "HOSP_A^1.2.3^ISO"},
		{"MSH-4.2", "1.2.3"},
		{"MSH-9", "QBP^Q22^QBP_Q21"},
		{"MSH-9.2", "Q22"},
		{"MSH-10", "Q1"},
		{"MSH-12", "2.5.1"},
		{"MSH-13", ""},
		{"QPD-3.1", "@PID.3.1"},
		{"QPD-3(2).2", "HOSP_A"},
		{"QPD-3(3).1", ""},
		{"PID-3", "A1^^^AUTH1&1.2&ISO"},
		{"PID-3.4", "AUTH1&1.2&ISO"},
		{"PID-3.4.2", "1.2"},
		{"PID-3(2).1", "B2"},
		{"PID-3(2).4", "AUTH2"},
		{"PID-3(2).4.2", ""},
		{"PID-5.1", "DOE^X"},
		{"OBX-5", "first"},
		{"OBX(2)-5", "second"},
		{"OBX(2)-8", ""},
		{"OBX(3)-5", ""},
		{"ZZZ-1", ""},
	}
	for _, tt := range tests {
		if got := m.Get(tt.path); got != tt.want {
			t.Errorf("Get(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	if n := m.Repetitions("PID-3"); n != 2 {
		t.Errorf("Repetitions(PID-3) = %d", n)
	}
	if n := m.Repetitions("PID-4"); n != 0 {
		t.Errorf("Repetitions(PID-4) = %d", n)
	}
	if m.Count("OBX") != 2 || !m.Has("QPD") || m.Has("ERR") {
		t.Errorf("Count/Has wrong")
	}
	for _, bad := range []string{"", "PID", "PID-", "PID-0", "PID-x", "PID-3(", "PID-3(0)", "PID-3.1.2.3", "PID(1-3"} {
		if _, err := m.Lookup(bad); !errors.Is(err, ErrBadPath) {
			t.Errorf("Lookup(%q) err = %v, want ErrBadPath", bad, err)
		}
	}
}

func TestEscapes(t *testing.T) {
	d := DefaultDelimiters
	tests := []struct{ raw, want string }{
		{`plain`, "plain"},
		{`a\F\b\S\c\T\d\R\e\E\f`, `a|b^c&d~e\f`},
		{`\X41424344\`, "ABCD"},
		{`\x41\`, `\x41\`},
		{`\X4\`, `\X4\`},
		{`line1\.br\line2`, "line1\rline2"},
		{`\H\bold\N\`, "bold"},
		{`\C2842\text\M2842ab\`, `\C2842\text\M2842ab\`},
		{`\.sp\`, `\.sp\`},
		{`unterminated \F`, `unterminated \F`},
		{`\\`, `\\`},
	}
	for _, tt := range tests {
		if got := d.Unescape([]byte(tt.raw)); got != tt.want {
			t.Errorf("Unescape(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
	custom := Delimiters{Field: '#', Component: '$', Repetition: '*', Escape: '@', SubComponent: '%', Truncation: '!'}
	for _, s := range []string{"a#b$c*d@e%f!g\rh\ni", "", "plain", `back\slash|pipe`} {
		for _, dd := range []Delimiters{d, custom} {
			enc := dd.EscapeString(s)
			if strings.ContainsAny(enc, string([]byte{dd.Field, dd.Component, dd.Repetition, dd.SubComponent, '\r', '\n'})) {
				t.Errorf("EscapeString(%q) = %q still holds a delimiter", s, enc)
			}
			if got := dd.Unescape([]byte(enc)); got != s {
				t.Errorf("round trip %q -> %q -> %q", s, enc, got)
			}
		}
	}
}

func TestBuilderRoundTrip(t *testing.T) {
	for _, d := range []Delimiters{DefaultDelimiters, {Field: '#', Component: '$', Repetition: '*', Escape: '@', SubComponent: '%', Truncation: '!'}} {
		b := NewBuilder(d)
		b.MSH(F("APP"), C("FAC", "1.2", "ISO"), F(""), F(""), F("20260302"), F(""), C("ADT", "A01", ""), F("C|1"), F("P"), F("2.5"))
		b.Segment("PID", F("1"), F(""), R(C("ID^1", "", "", "AUTH"), C("ID2")), F(""), C("DOE", "JANE"), F(""), F(""))
		m, err := Parse(b.Bytes())
		if err != nil {
			t.Fatalf("%q: %v", b.Bytes(), err)
		}
		checks := map[string]string{
			"MSH-3": "APP", "MSH-4.2": "1.2", "MSH-9": "ADT" + string(d.Component) + "A01", "MSH-10": "C|1",
			"PID-3(1).1": "ID^1", "PID-3(1).4": "AUTH", "PID-3(2).1": "ID2", "PID-5.2": "JANE",
		}
		for p, want := range checks {
			if got := m.Get(p); got != want {
				t.Errorf("%c: %s = %q, want %q", d.Field, p, got, want)
			}
		}
		if strings.HasSuffix(string(m.SegmentBytes(1)), string(d.Field)) {
			t.Errorf("trailing empty fields kept: %q", m.SegmentBytes(1))
		}
	}
}

var ackNow = time.Date(2026, 3, 2, 15, 4, 5, 600e6, time.UTC)

func TestBuildAck(t *testing.T) {
	qbp := "MSH|^~\\&|EHR|HOSP_A^1.2.3^ISO|HIE|NETB|20260302095900||QBP^Q22^QBP_Q21|Q1|T|2.5.1\r" +
		"QPD|IHE PDQ Query|TAG1|@PID.3.1^MRN42~@PID.3.4.1^HOSP_A\rRCP|I\r"
	adt := "MSH#$*@%#EHR#HOSP_A#HIE#NETB#20260302095900##ADT$A01#A1#P#2.3\rPID#1\r"
	errs := []AckError{{Segment: "MSH", SegmentIndex: 1, Field: 7, Code: "102", Message: "bad time | ^ & ~ \\ here"},
		{Code: "207", AppCode: "171.204", AppText: "infeasible", AppSystem: "urn:hinscore:ib-exception", Message: "second"}}
	tests := []struct {
		name, req, code string
		errs            []AckError
		want            map[string]string
		segments        []string
	}{
		{"query accepted", qbp, CodeAA, errs, map[string]string{
			"MSH-3": "HIE", "MSH-4": "NETB", "MSH-5": "EHR", "MSH-6": "HOSP_A^1.2.3^ISO", "MSH-7": "20260302150405.600+0000",
			"MSH-9": "RSP^K22^RSP_K21", "MSH-10": "R1", "MSH-11": "T", "MSH-12": "2.5.1",
			"MSA-1": "AA", "MSA-2": "Q1", "QAK-1": "TAG1", "QAK-2": "NF", "QAK-3": "IHE PDQ Query", "QAK-4": "0", "QPD-3(2).2": "HOSP_A",
		}, []string{"MSH", "MSA", "QAK", "QPD"}},
		{"query refused", qbp, CodeAR, errs[:1], map[string]string{
			"MSH-9": "RSP^K22^RSP_K21", "MSA-1": "AR", "QAK-2": "AR", "QAK-4": "", "ERR-2": "MSH^1^7", "ERR-3": "102^Data type error^HL70357",
			"ERR-4": "E", "ERR-8": "bad time | ^ & ~ \\ here",
		}, []string{"MSH", "MSA", "ERR", "QAK", "QPD"}},
		{"notification with custom delimiters", adt, CodeAE, errs, map[string]string{
			"MSH-1": "#", "MSH-2": "$*@%", "MSH-9": "ACK$A01$ACK", "MSH-12": "2.3", "MSA-1": "AE", "MSA-2": "A1",
			"ERR-8": "bad time | ^ & ~ \\ here", "ERR(2)-3.1": "207", "ERR(2)-5": "171.204$infeasible$urn:hinscore:ib-exception", "ERR(2)-2": "",
		}, []string{"MSH", "MSA", "ERR", "ERR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Parse([]byte(tt.req))
			if err != nil {
				t.Fatal(err)
			}
			out := BuildAck(req, tt.code, tt.errs, ackNow, "R1")
			m, err := Parse(out)
			if err != nil {
				t.Fatalf("reply does not parse: %v\n%q", err, out)
			}
			for p, want := range tt.want {
				if got := m.Get(p); got != want {
					t.Errorf("%s = %q, want %q", p, got, want)
				}
			}
			var segs []string
			for i := 0; i < m.SegmentCount(); i++ {
				segs = append(segs, m.SegmentName(i))
			}
			if strings.Join(segs, ",") != strings.Join(tt.segments, ",") {
				t.Errorf("segments %v, want %v", segs, tt.segments)
			}
		})
	}
}

// TestBuildAckCharsetAsParsed: the reply reads MSH-18 as Parse does, so
// a name Parse recognises after decoding (here with a leading 8859/1
// no-break space) gives a reply in the same set, whose text reads back.
func TestBuildAckCharsetAsParsed(t *testing.T) {
	req := mustParseT(t, "MSH|^~\\&|A|B|C|D|20260302||ADT^A08|\xa4|P|2.5|||||USA|\xa08859/1\r")
	if req.Charset() != CharsetLatin1 || req.Get("MSH-10") != "\u00a4" {
		t.Fatalf("request read as %s, MSH-10 %q", req.Charset(), req.Get("MSH-10"))
	}
	for _, reply := range [][]byte{
		BuildAck(req, CodeAE, []AckError{{Code: "207", Message: "caf\u00e9 \u00a4"}}, ackNow, "R"),
		BuildAckForBytes(req.Bytes(), CodeAE, []AckError{{Code: "207", Message: "caf\u00e9 \u00a4"}}, ackNow, "R"),
	} {
		r := mustParseT(t, string(reply))
		if r.Charset() != CharsetLatin1 || r.Get("MSA-2") != "\u00a4" || r.Get("ERR-8") != "caf\u00e9 \u00a4" {
			t.Errorf("reply %q read as %s: MSA-2 %q ERR-8 %q", reply, r.Charset(), r.Get("MSA-2"), r.Get("ERR-8"))
		}
	}
}

func TestBuildAckForBytes(t *testing.T) {
	tests := []struct {
		name, data string
		want       map[string]string
	}{
		{"garbage", "hello world", map[string]string{"MSH-2": "^~\\&", "MSH-9": "ACK^^ACK", "MSA-1": "AR", "MSA-2": "", "MSH-12": "2.5.1"}},
		{"empty control id", "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302||ADT^A01||P|2.4\rPID|1\r",
			map[string]string{"MSH-3": "HIE", "MSH-6": "HOSP_A", "MSH-9": "ACK^A01^ACK", "MSA-2": "", "MSH-12": "2.4"}},
		{"bad segment after readable header", "\r\nMSH#$*@%#EHR#HOSP_A#HIE#NETB#20260302##ADT$A01#C7#P#2.4\rbad\r",
			map[string]string{"MSH-1": "#", "MSA-2": "C7", "ERR-3.1": "100"}},
		{"bad delimiters", "MSH|^|A|B\r", map[string]string{"MSH-1": "|", "MSH-3": "", "MSA-2": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, perr := Parse([]byte(tt.data))
			if perr == nil {
				t.Fatal("test message parses")
			}
			out := BuildAckForBytes([]byte(tt.data), CodeAR, []AckError{AckErrorFor(perr)}, ackNow, "R9")
			m, err := Parse(out)
			if err != nil {
				t.Fatalf("reply does not parse: %v\n%q", err, out)
			}
			for p, want := range tt.want {
				if got := m.Get(p); got != want {
					t.Errorf("%s = %q, want %q", p, got, want)
				}
			}
			if m.Get("ERR-8") != perr.Error() {
				t.Errorf("ERR-8 %q, want %q", m.Get("ERR-8"), perr.Error())
			}
		})
	}
}

// TestAckErrorForSegment checks the whole ERR segment of the reply to
// each kind of bad input, ERR-2 (ERL: segment ID^sequence^field) above all.
func TestAckErrorForSegment(t *testing.T) {
	const msh = "MSH|^~\\&|A|B|C|D|20260302||ACK|1|P|2.5\r"
	tests := []struct {
		name, data string
		err        error // given to AckErrorFor instead of Parse's error
		want       string
	}{
		{"lower-case segment name", msh + "MSA|AA|1\rpid|1\r", nil,
			`ERR||pid^1|100^Segment sequence error^HL70357|E||||hl7v2: message (segment 3): segment starts with "pid\F\1", want a 3-character name`},
		{"four-letter name", msh + "PIDX|1\r", nil,
			`ERR||PIDX^1|100^Segment sequence error^HL70357|E||||hl7v2: message (segment 2): segment starts with "PIDX\F\1", want a 3-character name`},
		{"delimiter in the name", msh + "P^D|1\r", nil,
			`ERR||P\S\D^1|100^Segment sequence error^HL70357|E||||hl7v2: message (segment 2): segment starts with "P\S\D\F\1", want a 3-character name`},
		{"name without field separator", "MSH#$*@%#A#B#C#D#20260302##ADT$A01#C7#P#2.4\rbad\r", nil,
			`ERR##bad$1#100$Segment sequence error$HL70357#E####hl7v2: message (segment 2): segment starts with "bad", want a 3-character name`},
		{"long bad name cut to 8", msh + "ABCDEFGHIJ|1\r", nil,
			`ERR||ABCDEFGH^1|100^Segment sequence error^HL70357|E||||hl7v2: message (segment 2): segment starts with "ABCDEFGH", want a 3-character name`},
		{"segment starting with the field separator has no ID", msh + "|x|y\r", nil,
			`ERR|||100^Segment sequence error^HL70357|E||||hl7v2: message (segment 2): segment starts with "\F\x\F\y", want a 3-character name`},
		{"not HL7", "hello world", nil,
			`ERR||MSH^1|100^Segment sequence error^HL70357|E||||hl7v2: message (segment 1): first segment starts with "hello wo", want MSH`},
		{"PID first", "PID|1||X\r" + msh, nil,
			`ERR||MSH^1|100^Segment sequence error^HL70357|E||||hl7v2: message (segment 1): first segment starts with "PID\F\1\F\\F\X", want MSH`},
		{"empty", "", nil,
			`ERR|||101^Required field missing^HL70357|E||||hl7v2: message: no segments`},
		{"empty control id", "MSH|^~\\&|A|B|C|D|20260302||ACK^A01|||P|2.5\r", nil,
			`ERR||MSH^1^10|101^Required field missing^HL70357|E||||hl7v2: MSH-10 (segment 1): message control id is empty`},
		{"not a parse error", "", errors.New("bus down"),
			`ERR|||207^Application internal error^HL70357|E||||bus down`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err
			if err == nil {
				if _, err = Parse([]byte(tt.data)); err == nil {
					t.Fatal("test message parses")
				}
			}
			reply, perr := Parse(BuildAckForBytes([]byte(tt.data), CodeAR, []AckError{AckErrorFor(err)}, ackNow, "R9"))
			if perr != nil {
				t.Fatalf("reply does not parse: %v", perr)
			}
			if reply.Count("ERR") != 1 {
				t.Fatalf("reply has %d ERR segments, want 1", reply.Count("ERR"))
			}
			if got := string(reply.SegmentBytes(reply.SegmentCount() - 1)); got != tt.want {
				t.Errorf("ERR segment\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSplitMessages(t *testing.T) {
	a := "MSH|^~\\&|A|B|C|D|20260302||ADT^A01|1|P|2.5\rPID|1"
	b := "MSH|^~\\&|A|B|C|D|20260302||ADT^A01|2|P|2.5\rPID|2"
	tests := []struct {
		name, data string
		want       []string
	}{
		{"consecutive MSH", a + "\r" + b + "\r", []string{a + "\r", b + "\r"}},
		{"blank lines", a + "\n\n\n" + b, []string{a + "\n", b}},
		{"batch envelope", "FHS|^~\\&\rBHS|^~\\&\r" + a + "\r" + b + "\rBTS|2\rFTS|1\r", []string{a + "\r", b + "\r"}},
		{"mllp frames", "\x0b" + a + "\r\x1c\r\n\x0b" + b + "\x1c\r", []string{a + "\r", b}},
		{"junk first", "junk\r" + a, []string{"junk\r", a}},
		{"nothing", "\r\n\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitMessages([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d messages %q, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if string(got[i]) != tt.want[i] {
					t.Errorf("message %d = %q, want %q", i+1, got[i], tt.want[i])
				}
			}
		})
	}
	if _, err := SplitMessages([]byte("\x0bMSH|cut")); err == nil {
		t.Error("cut frame accepted")
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/parse/*.hl7")
	public, _ := filepath.Glob("testdata/public/*.hl7")
	for _, file := range append(files, public...) {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			reply := BuildAckForBytes(data, CodeAR, []AckError{AckErrorFor(err)}, ackNow, "R")
			if _, err := Parse(reply); err != nil {
				t.Fatalf("reply to unparsable input does not parse: %v\n%q", err, reply)
			}
			return
		}
		for _, p := range []string{"MSH-9", "MSH-10", "PID-3(2).4.1", "QPD-3.1", "OBX(2)-5", "ERR-3.1"} {
			_ = m.Get(p)
		}
		// The encoder round-trips whatever parses.
		canon, err := m.Encode(m.Delimiters())
		if err != nil {
			t.Fatal(err)
		}
		other := Delimiters{Field: '#', Component: '$', Repetition: '*', Escape: '@', SubComponent: '%'}
		if enc, err := m.Encode(other); err == nil {
			m2, err := Parse(enc)
			if err != nil {
				t.Fatalf("re-encoded message does not parse: %v\n%q", err, enc)
			}
			// Values read the same; bytes may differ from canon only where an
			// escape sequence Unescape keeps verbatim held a character that is a
			// delimiter in the other set, and became escaped text.
			back, _ := m2.Encode(m.Delimiters())
			m3, err := Parse(back)
			if err != nil {
				t.Fatalf("round trip does not parse: %v\n%q", err, back)
			}
			if values(m3) != values(m) {
				t.Fatalf("round trip changed values\n got %q\nwant %q", back, canon)
			}
		}
		reply := BuildAck(m, CodeAE, []AckError{{Code: "207", Message: m.Get("MSH-10")}}, ackNow, "R")
		r, err := Parse(reply)
		if err != nil {
			t.Fatalf("reply does not parse: %v\n%q", err, reply)
		}
		if r.Get("MSA-2") != m.Get("MSH-10") || r.Get("ERR-8") != m.Get("MSH-10") {
			t.Fatalf("reply MSA-2 %q ERR-8 %q, want %q", r.Get("MSA-2"), r.Get("ERR-8"), m.Get("MSH-10"))
		}
	})
}

func BenchmarkParse(b *testing.B) {
	data := []byte(pathMsg + "NTE|1||" + strings.Repeat("some note text ", 20) + "\r")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		m, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		_ = m.Get("MSH-10")
		_ = m.Get("PID-3(2).4")
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
