package syslog

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

const bomS = "\xEF\xBB\xBF"

// auditXML is the shape of an IHE ATNA audit record (DICOM PS3.15 A.5).
const auditXML = `<?xml version="1.0" encoding="UTF-8"?>
<AuditMessage>
  <EventIdentification EventActionCode="E" EventDateTime="2026-12-07T10:15:02.117Z" EventOutcomeIndicator="0">
    <EventID csd-code="110112" codeSystemName="DCM" originalText="Query"/>
    <EventTypeCode csd-code="ITI-55" codeSystemName="IHE Transactions" originalText="Cross Gateway Patient Discovery"/>
  </EventIdentification>
  <ActiveParticipant UserID="urn:uuid:5a1f1c3e" UserIsRequestor="true" NetworkAccessPointID="10.1.2.3" NetworkAccessPointTypeCode="2">
    <RoleIDCode csd-code="110153" codeSystemName="DCM" originalText="Source Role ID"/>
  </ActiveParticipant>
</AuditMessage>`

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParse(t *testing.T) {
	ref := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want Message
	}{
		{"RFC 5424 6.5 example 1", "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - " + bomS + "'su root' failed for lonvick on /dev/pts/8",
			Message{Facility: 4, Severity: 2, Timestamp: mustTime("2003-10-11T22:14:15.003Z"), Hostname: "mymachine.example.com", AppName: "su", MsgID: "ID47",
				Body: []byte("'su root' failed for lonvick on /dev/pts/8"), Format: RFC5424}},
		{"RFC 5424 6.5 example 2", "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
			Message{Facility: 20, Severity: 5, Timestamp: mustTime("2003-08-24T05:14:15.000003-07:00"), Hostname: "192.0.2.1", AppName: "myproc", ProcID: "8710",
				Body: []byte("%% It's time to make the do-nuts."), Format: RFC5424}},
		{"RFC 5424 6.5 example 3", `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ` + bomS + "An application event log entry...",
			Message{Facility: 20, Severity: 5, Timestamp: mustTime("2003-10-11T22:14:15.003Z"), Hostname: "mymachine.example.com", AppName: "evntslog", MsgID: "ID47",
				StructuredData: []SDElement{{ID: "exampleSDID@32473", Params: []SDParam{{"iut", "3"}, {"eventSource", "Application"}, {"eventID", "1011"}}}},
				Body:           []byte("An application event log entry..."), Format: RFC5424}},
		{"RFC 5424 6.5 example 4", `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
			Message{Facility: 20, Severity: 5, Timestamp: mustTime("2003-10-11T22:14:15.003Z"), Hostname: "mymachine.example.com", AppName: "evntslog", MsgID: "ID47",
				StructuredData: []SDElement{
					{ID: "exampleSDID@32473", Params: []SDParam{{"iut", "3"}, {"eventSource", "Application"}, {"eventID", "1011"}}},
					{ID: "examplePriority@32473", Params: []SDParam{{"class", "high"}}}},
				Body: []byte{}, Format: RFC5424}},
		{"ATNA audit record", "<85>1 2026-12-07T10:15:02.117+01:00 xcpd-gw.example.org IHE-ATNA 2231 ITI-55 - " + auditXML,
			Message{Facility: 10, Severity: 5, Timestamp: mustTime("2026-12-07T10:15:02.117+01:00"), Hostname: "xcpd-gw.example.org", AppName: "IHE-ATNA", ProcID: "2231", MsgID: "ITI-55",
				Body: []byte(auditXML), Format: RFC5424}},
		{"ATNA audit record with BOM, all nil", "<110>1 - - - - - - " + bomS + auditXML,
			Message{Facility: 13, Severity: 6, Body: []byte(auditXML), Format: RFC5424}},
		{"escaped param values", `<13>1 - h a - - [x@1 q="a\"b\\c\]d" keep="\n\x" empty=""]`,
			Message{Facility: 1, Severity: 5, Hostname: "h", AppName: "a",
				StructuredData: []SDElement{{ID: "x@1", Params: []SDParam{{"q", `a"b\c]d`}, {"keep", `\n\x`}, {"empty", ""}}}},
				Body:           []byte{}, Format: RFC5424}},
		{"SD element without params, empty MSG", "<0>1 - - - - - [origin] ",
			Message{StructuredData: []SDElement{{ID: "origin"}}, Body: []byte{}, Format: RFC5424}},
		{"BSD with pid", "<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8",
			Message{Facility: 4, Severity: 2, Timestamp: time.Date(2026, 10, 11, 22, 14, 15, 0, time.UTC), Hostname: "mymachine", AppName: "su", ProcID: "230",
				Body: []byte("'su root' failed for lonvick on /dev/pts/8"), Format: BSD}},
		{"BSD ATNA, space-padded day", "<85>Dec  7 10:15:02 xca-gw ATNA: " + auditXML,
			Message{Facility: 10, Severity: 5, Timestamp: time.Date(2026, 12, 7, 10, 15, 2, 0, time.UTC), Hostname: "xca-gw", AppName: "ATNA",
				Body: []byte(auditXML), Format: BSD}},
		{"BSD of last January", "<13>Jan  1 00:00:01 h t: x",
			Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC), Hostname: "h", AppName: "t", Body: []byte("x"), Format: BSD}},
		{"BSD tag without colon", "<13>Feb 03 04:05:06 h tag message text",
			Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC), Hostname: "h", AppName: "tag", Body: []byte("message text"), Format: BSD}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			got, err := Parse(in, ref)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Timestamp.Equal(tt.want.Timestamp) {
				t.Errorf("Timestamp = %v, want %v", got.Timestamp, tt.want.Timestamp)
			}
			got.Timestamp, tt.want.Timestamp = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, tt.want)
			}
			if len(got.Body) > 0 && !within(got.Body, in) {
				t.Error("Body is a copy, not a subslice of the input")
			}
		})
	}
}

func within(sub, whole []byte) bool {
	s, w := uintptr(unsafe.Pointer(unsafe.SliceData(sub))), uintptr(unsafe.Pointer(unsafe.SliceData(whole)))
	return s >= w && s+uintptr(len(sub)) <= w+uintptr(len(whole))
}

func TestBSDYearAroundReference(t *testing.T) {
	tests := []struct {
		ref  time.Time
		in   string
		want time.Time
	}{
		{time.Date(2027, 1, 1, 0, 0, 30, 0, time.UTC), "<13>Dec 31 23:59:59 h t: x", time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)},
		{time.Date(2029, 1, 2, 0, 0, 0, 0, time.UTC), "<13>Feb 29 10:00:00 h t: x", time.Date(2028, 2, 29, 10, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), "<13>Jan  1 01:00:00 h t: x", time.Date(2027, 1, 1, 1, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), "<13>Dec 15 00:00:00 h t: x", time.Date(2025, 12, 15, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 6, 1, 0, 0, 0, 0, time.FixedZone("EST", -5*3600)), "<13>Jun  1 00:00:00 h t: x", time.Date(2026, 6, 1, 5, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.in), tt.ref)
		if err != nil || !got.Timestamp.Equal(tt.want) {
			t.Errorf("Parse(%q, %v).Timestamp = %v, %v; want %v", tt.in, tt.ref, got.Timestamp, err, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	ref := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	long := strings.Repeat("a", 256)
	tests := []struct {
		in     string
		field  string
		offset int
	}{
		{"", "PRI", 0},
		{"34>1 - - - - - -", "PRI", 0},
		{"<>1 - - - - - -", "PRI", 1},
		{"<1000>1 - - - - - -", "PRI", 1},
		{"<034>1 - - - - - -", "PRI", 1},
		{"<192>1 - - - - - -", "PRI", 1},
		{"<34", "PRI", 3},
		{"<34 1 - - - - - -", "PRI", 3},
		{"<34>2 - - - - - -", "VERSION", 4},
		{"<34>10 - - - - - -", "VERSION", 4},
		{"<34>1 2003-10-11 - - - - -", "TIMESTAMP", 6},
		{"<34>1 2003-10-11T22:14:15.003z - - - - -", "TIMESTAMP", 6},
		{"<34>1 2003-10-11t22:14:15Z - - - - -", "TIMESTAMP", 6},
		{"<34>1 2003-10-11T22:14:15 - - - - -", "TIMESTAMP", 6},
		{"<34>1 -  - - - -", "HOSTNAME", 8},
		{"<34>1 - " + long + " - - - -", "HOSTNAME", 8},
		{"<34>1 - h\x01st - - - -", "HOSTNAME", 9},
		{"<34>1 - h " + long[:49] + " - - -", "APP-NAME", 10},
		{"<34>1 - h a " + long[:129] + " - -", "PROCID", 12},
		{"<34>1 - h a p " + long[:33] + " -", "MSGID", 14},
		{"<34>1 - h a p m", "MSGID", 15},
		{"<34>1 - h a p m ", "STRUCTURED-DATA", 16},
		{"<34>1 - h a p m x", "STRUCTURED-DATA", 16},
		{"<34>1 - h a p m -x", "STRUCTURED-DATA", 17},
		{"<34>1 - h a p m []", "STRUCTURED-DATA", 17},
		{"<34>1 - h a p m [id", "STRUCTURED-DATA", 19},
		{"<34>1 - h a p m [id a=\"b\"", "STRUCTURED-DATA", 25},
		{"<34>1 - h a p m [id a=b]", "STRUCTURED-DATA", 21},
		{"<34>1 - h a p m [id a=\"b]", "STRUCTURED-DATA", 22},
		{"<34>1 - h a p m [id a=\"b\\\"]", "STRUCTURED-DATA", 22},
		{"<34>1 - h a p m [id a=\"b\"x]", "STRUCTURED-DATA", 25},
		{"<34>1 - h a p m [id =\"b\"]", "STRUCTURED-DATA", 20},
		{"<34>1 - h a p m [i\x7fd]", "STRUCTURED-DATA", 18},
		{"<34>1 - h a p m [" + long[:33] + "]", "STRUCTURED-DATA", 17},
		{"<34>1 - h a p m [id]x", "STRUCTURED-DATA", 20},
		{"<34>Oct 11 22:14:15", "TIMESTAMP", 4},
		{"<34>Okt 11 22:14:15 h t: x", "TIMESTAMP", 4},
		{"<34>Oct 32 22:14:15 h t: x", "TIMESTAMP", 4},
		{"<34>Oct 11 24:14:15 h t: x", "TIMESTAMP", 4},
		{"<34>Oct 1x 22:14:15 h t: x", "TIMESTAMP", 4},
		{"<34>Feb 30 22:14:15 h t: x", "TIMESTAMP", 4},
		{"<34>Oct 11 22:14:15 h", "HOSTNAME", 21},
		{"<34>Oct 11 22:14:15 h : x", "TAG", 22},
		{"<34>Oct 11 22:14:15 h " + long[:49] + ": x", "TAG", 22},
		{"<34>Oct 11 22:14:15 h t\x00: x", "TAG", 23},
		{"<34>Oct 11 22:14:15 h t[12: x", "PROCID", 23},
		{"<34>Oct 11 22:14:15 h t[]: x", "PROCID", 24},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.in), ref)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) = %v, want a *ParseError", tt.in, err)
			continue
		}
		if pe.Field != tt.field || pe.Offset != tt.offset {
			t.Errorf("Parse(%q) = %v; want field %s at %d", tt.in, err, tt.field, tt.offset)
		}
	}
}

func TestParseDatagram(t *testing.T) {
	m, err := ParseDatagram([]byte("<85>1 - gw ATNA - - - "+auditXML), time.Time{})
	if err != nil || string(m.Body) != auditXML || m.Hostname != "gw" {
		t.Fatalf("ParseDatagram = %+v, %v", m, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ` + bomS + "An application event log entry..."))
	f.Add([]byte("<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed"))
	f.Add([]byte(`<13>1 - h a - - [x@1 q="a\"b\\c\]d"] x`))
	ref := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, ref)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(data) {
				t.Fatalf("error %v is not a *ParseError within the input", err)
			}
			return
		}
		if m.Facility < 0 || m.Facility > 23 || m.Severity < 0 || m.Severity > 7 {
			t.Fatalf("facility %d, severity %d", m.Facility, m.Severity)
		}
		if m.Format != RFC5424 && m.Format != BSD {
			t.Fatalf("format %v", m.Format)
		}
		if len(m.Body) > 0 && !within(m.Body, data) {
			t.Fatal("Body is not a subslice of the input")
		}
	})
}
