package hl7v2

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Acknowledgment codes (HL7 table 0008).
const (
	CodeAA = "AA"
	CodeAE = "AE"
	CodeAR = "AR"
	// Commit (accept) acknowledgments of enhanced mode.
	CodeCA = "CA"
	CodeCE = "CE"
	CodeCR = "CR"
)

// AckPolicy is how a message asks to be acknowledged: original mode when
// MSH-15 and MSH-16 are both empty, else enhanced mode, where the receiver
// sends a commit acknowledgment as MSH-15 (accept acknowledgment type,
// HL7 table 0155) says: AL always (also when empty), NE never, ER only on
// error, SU only on success.
type AckPolicy struct {
	Enhanced bool
	Accept   string // MSH-15
}

// AckPolicy reads MSH-15 and MSH-16.
func (m *Message) AckPolicy() AckPolicy {
	msh := func(n int) string {
		return m.Decode(m.At(Path{Segment: "MSH", Occurrence: 1, Field: n, Repetition: 1}))
	}
	accept, app := msh(15), msh(16)
	return AckPolicy{Enhanced: accept != "" || app != "", Accept: accept}
}

// Reply turns the outcome of storing a message (AA, AE or AR) into the
// code to send, and says whether to send anything. In enhanced mode
// hinscore answers at commit level only: it stored the copy, it is not the
// application the message is for.
func (p AckPolicy) Reply(code string) (string, bool) {
	if !p.Enhanced {
		return code, true
	}
	commit := "C" + code[1:]
	switch p.Accept {
	case "NE":
		return commit, false
	case "ER":
		return commit, code != CodeAA
	case "SU":
		return commit, code == CodeAA
	}
	return commit, true
}

// Error codes of HL7 table 0357 hinscore sends.
const (
	ErrCodeSegmentSequence = "100"
	ErrCodeRequiredMissing = "101"
	ErrCodeDataType        = "102"
	ErrCodeUnsupportedType = "200"
	ErrCodeInternal        = "207"
)

// table0357 names the error codes of HL7 table 0357.
func table0357(code string) string {
	switch code {
	case "0":
		return "Message accepted"
	case "100":
		return "Segment sequence error"
	case "101":
		return "Required field missing"
	case "102":
		return "Data type error"
	case "103":
		return "Table value not found"
	case "104":
		return "Value too long"
	case "200":
		return "Unsupported message type"
	case "201":
		return "Unsupported event code"
	case "202":
		return "Unsupported processing id"
	case "203":
		return "Unsupported version id"
	case "204":
		return "Unknown key identifier"
	case "205":
		return "Duplicate key identifier"
	case "206":
		return "Application record locked"
	case "207":
		return "Application internal error"
	}
	return ""
}

// AckError is one ERR segment of a reply.
type AckError struct {
	// Location (ERR-2, data type ERL): segment ID, segment sequence and
	// field number. The sequence counts the segments of that ID (the
	// third OBX is OBX^3 wherever it stands); MSH is always 1. No
	// location is written without a segment ID.
	Segment      string
	SegmentIndex int
	Field        int
	Code         string // ERR-3, HL7 table 0357 (e.g. "101", "207")
	Severity     string // ERR-4: E (default), W, I
	// ERR-5 application error code, e.g. an exception code of urn:hinscore:ib-exception.
	AppCode, AppText, AppSystem string
	Message                     string // ERR-8, the user message
}

// AckErrorFor describes err as an ERR segment: a *ParseError gives the
// location and a table 0357 code by its sentinel; anything else is 207.
// A message that does not start with MSH is located at MSH^1, the segment
// that should have been there; a bad segment name at that name as found.
func AckErrorFor(err error) AckError {
	var pe *ParseError
	if !errors.As(err, &pe) {
		return AckError{Code: ErrCodeInternal, Message: err.Error()}
	}
	code := ErrCodeDataType
	switch {
	case errors.Is(pe, ErrEmptyControlID), errors.Is(pe, ErrEmptyMessageType), errors.Is(pe, ErrEmpty):
		code = ErrCodeRequiredMissing
	case errors.Is(pe, ErrNoMSH), errors.Is(pe, ErrBadSegmentName), errors.Is(pe, ErrBatchStructure):
		code = ErrCodeSegmentSequence
	}
	ae := AckError{Segment: pe.Segment, SegmentIndex: pe.SegmentIndex, Field: pe.Field, Code: code, Message: pe.Error()}
	if pe.Sequence > 0 {
		ae.SegmentIndex = pe.Sequence
	}
	switch {
	case errors.Is(pe, ErrNoMSH):
		ae.Segment, ae.SegmentIndex = "MSH", 1
	case errors.Is(pe, ErrBadSegmentName) && pe.Segment == "":
		// Parse stops at the first bad name and every segment before it
		// has a valid one, so no earlier segment has this name: it is the
		// first so named, whatever its position (which ERR-8 gives).
		ae.Segment, ae.SegmentIndex = pe.Name, 1
	}
	return ae
}

// header is what a reply needs from the message it answers.
type header struct {
	m *Message // at least the MSH segment
}

// raw is Raw of the first repetition of field n of segment seg (of
// component comp when comp > 0), without parsing a path.
func (h header) raw(seg string, n, comp int) []byte {
	if h.m == nil {
		return nil
	}
	return h.m.At(Path{Segment: seg, Occurrence: 1, Field: n, Repetition: 1, Component: comp})
}

// BuildAck builds the reply to req: an ACK, or for a QBP^Qnn query an
// RSP^Knn with QAK and the QPD echoed. code is AA, AE or AR; errs become ERR
// segments (only for AE/AR). The reply uses req's delimiters, swaps sender
// and receiver, and carries controlID in MSH-10 and req's MSH-10 in MSA-2.
// hinscore holds no records, so an accepted query is answered NF.
func BuildAck(req *Message, code string, errs []AckError, now time.Time, controlID string) []byte {
	return buildReply(header{m: req}, req.delims, code, errs, now, controlID, true)
}

// BuildAckForBytes builds an ACK to a message that could not be parsed,
// from whatever of its MSH segment can be read: delimiters, applications,
// control id (MSA-2 is empty when it cannot be read). It never fails.
func BuildAckForBytes(data []byte, code string, errs []AckError, now time.Time, controlID string) []byte {
	h, d := readHeader(data)
	return buildReply(h, d, code, errs, now, controlID, false)
}

func readHeader(data []byte) (header, Delimiters) {
	data = bytes.TrimPrefix(data, utf8BOM)
	data = bytes.TrimLeft(data, "\r\n")
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		data = data[:i]
	}
	if !bytes.HasPrefix(data, []byte("MSH")) {
		return header{}, DefaultDelimiters
	}
	d, err := readDelimiters(data)
	if err != nil {
		return header{}, DefaultDelimiters
	}
	return header{m: &Message{data: data, delims: d, segs: []span{{0, len(data)}}}}, d
}

// mshFields splits the header once: f[n] is the first repetition of
// MSH-n, for n from 3 on (nil when absent), as Raw("MSH-n") reads it.
func (h header) mshFields() (f [19][]byte) {
	if h.m == nil || len(h.m.segs) == 0 {
		return f
	}
	d := h.m.delims
	seg := h.m.SegmentBytes(0) // Parse and readHeader both start at the MSH
	// The token from start is MSH-n: MSH-1 is the separator itself, so
	// the name counts as 1 and the encoding characters are MSH-2.
	n, start := 1, 0
	for i := 3; i <= len(seg) && n < len(f); i++ {
		if i < len(seg) && seg[i] != d.Field {
			continue
		}
		if n >= 3 {
			f[n], _ = nth(seg[start:i], d.Repetition, 0)
		}
		n++
		start = i + 1
	}
	return f
}

// component is component c (1-based) of a field read by mshFields.
func (h header) component(field []byte, c int) []byte {
	if field == nil {
		return nil
	}
	v, _ := nth(field, h.m.delims.Component, c-1)
	return v
}

func buildReply(h header, d Delimiters, code string, errs []AckError, now time.Time, controlID string, full bool) []byte {
	f := h.mshFields()
	msgCode := string(h.component(f[9], 1))
	trigger := string(h.component(f[9], 2))
	var msh9 Field
	// A commit acknowledgment is always a plain ACK, never a query response.
	query := full && code[0] == 'A' && msgCode == "QBP" && strings.HasPrefix(trigger, "Q") && len(trigger) > 1
	if query {
		k := "K" + trigger[1:]
		msh9 = C("RSP", k, rspStructure(k))
	} else {
		msh9 = C("ACK", trigger, "ACK")
	}
	msh := []Field{
		Verbatim(f[5]), Verbatim(f[6]), Verbatim(f[3]), Verbatim(f[4]),
		F(FormatTime(now)), F(""),
		msh9, F(controlID),
		orDefault(f[11], "P"), orDefault(f[12], "2.5.1"),
	}
	// The reply speaks the request's character set: MSA-2 echoes the
	// request's control id byte for byte, and the peer decodes both alike.
	charset := f[18]
	if len(charset) > 0 {
		msh = append(msh, F(""), F(""), F(""), F(""), F(""), Verbatim(charset))
	}
	b := NewBuilder(d)
	b.MSH(msh...)
	b.Segment("MSA", F(code), Verbatim(f[10]))
	if code != CodeAA && code != CodeCA {
		cs := declaredCharset(d, charset)
		for _, e := range errs {
			e.Message, e.AppText = cs.fromUTF8(e.Message), cs.fromUTF8(e.AppText)
			b.Segment("ERR", errFields(e)...)
		}
	}
	if query {
		qak := code
		if code == CodeAA {
			qak = "NF"
		}
		fields := []Field{Verbatim(h.raw("QPD", 2, 0)), F(qak), Verbatim(h.raw("QPD", 1, 0))}
		if qak == "NF" {
			fields = append(fields, F("0"), F("0"), F("0"))
		}
		b.Segment("QAK", fields...)
		if i := h.m.segmentIndex("QPD", 1); i >= 0 {
			b.RawSegment(h.m.SegmentBytes(i))
		}
	}
	return b.Bytes()
}

func errFields(e AckError) []Field {
	loc := Field{}
	if e.Segment != "" {
		loc = C(e.Segment, itoa(e.SegmentIndex), itoa(e.Field))
	}
	sev := e.Severity
	if sev == "" {
		sev = "E"
	}
	code := Field{}
	if e.Code != "" {
		code = C(e.Code, table0357(e.Code), "HL70357")
	}
	app := Field{}
	if e.AppCode != "" {
		app = C(e.AppCode, e.AppText, e.AppSystem)
	}
	return []Field{F(""), loc, code, F(sev), app, F(""), F(""), F(e.Message)}
}

func itoa(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func orDefault(raw []byte, def string) Field {
	if len(raw) == 0 {
		return F(def)
	}
	return Verbatim(raw)
}

// rspStructure is the message structure (MSH-9.3) of the response to a query.
func rspStructure(k string) string {
	switch k {
	case "K21", "K22":
		return "RSP_K21"
	case "K23":
		return "RSP_K23"
	default:
		return "RSP_K11"
	}
}

// FormatTime formats t as an HL7 DTM with milliseconds and zone.
func FormatTime(t time.Time) string { return t.Format("20060102150405.000-0700") }

// BuildBatchReply wraps the replies to the messages of a batch in a batch
// of their own, as HL7 v2 (2.10.3) has a receiver acknowledge a batch: a
// BHS whose BHS-12 (reference batch control id) is the received BHS-11,
// the replies in message order, a BTS with their count, and an FHS/FTS
// envelope when the received batch had one. Applications swap as in an
// ACK; the batch segments use the received header's delimiters.
func BuildBatchReply(f *BatchFile, replies [][]byte, now time.Time, controlID string) []byte {
	hdr := f.Header
	if len(f.Batches) > 0 && f.Batches[0].Header != nil {
		hdr = f.Batches[0].Header
	}
	d, err := readDelimiters(hdr)
	if err != nil {
		d = DefaultDelimiters
	}
	field := func(seg []byte, n int) Field {
		if seg == nil || len(seg) < 4 {
			return Field{}
		}
		v, _ := nth(seg[4:], d.Field, n-2) // numbered as in MSH: field 2 holds the encoding characters
		return Verbatim(v)
	}
	header := func(seg []byte) []Field {
		return []Field{field(seg, 5), field(seg, 6), field(seg, 3), field(seg, 4),
			F(FormatTime(now)), F(""), F(""), F(""), F(controlID), field(seg, 11)}
	}
	b := NewBuilder(d)
	if f.Header != nil {
		b.batchHeader("FHS", header(f.Header))
	}
	var bhs []byte
	if len(f.Batches) > 0 {
		bhs = f.Batches[0].Header
	}
	b.batchHeader("BHS", header(bhs))
	for _, r := range replies {
		b.buf = append(b.buf, r...)
		if len(r) > 0 && r[len(r)-1] != '\r' {
			b.buf = append(b.buf, '\r')
		}
	}
	b.Segment("BTS", F(strconv.Itoa(len(replies))))
	if f.Header != nil {
		b.Segment("FTS", F("1"))
	}
	return b.Bytes()
}
