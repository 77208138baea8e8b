// Package toevent maps a parsed HL7 v2 message to the ExchangeEvent
// hinscore publishes (DOMAIN.md, "Linking a request to its answer").
//
// Correlation keys, one rule per pattern, always
// network|requester facility|id, the requester facility being the HD
// namespace id of MSH-4 of a request and of MSH-6 of an answer:
//   - queries, referrals, notifications and every ACK: the control id
//     (MSH-10 of the request, MSA-2 of the answer). Query tags (QPD-2/QAK-1)
//     are not used: an ACK refusing a query carries no QAK, only MSA-2.
//   - orders (ORM/OML, ORR/ORL, ORU): "placer:" + the placer order number
//     (ORC-2.1, else OBR-2.1), because an ORU result carries no MSA-2.
//     An ORR/ORL without a placer number falls back to its MSA-2; a plain
//     ACK to an order is keyed by control id like every ACK.
package toevent

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/ids"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/exception"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
	"github.com/hinscore/hinscore/services/lib/domain/quality"
	"github.com/hinscore/hinscore/services/lib/domain/text"
	"github.com/hinscore/hinscore/services/lib/hl7v2"
)

// DerivedIDPrefix starts the message id given to a message without
// MSH-10: the prefix and its event id, so that it keys its own chain.
const DerivedIDPrefix = "derived:"

// MaxReasonText is how much of ERR-8 an event keeps.
const MaxReasonText = 512

// Mapper turns messages into events. Patients makes the patient tokens
// (under the patient key); PatientKeyID names that key in every event. Orgs, when set, turns the
// identifiers of MSH-3/4/5/6 into canonical organisation ids.
type Mapper struct {
	Patients     *patient.Tokenizer
	PatientKeyID string
	Orgs         *Directory
}

// MapBytes parses raw and maps it. A message without its type or control
// id is still mapped (see Map); only bytes that are no HL7 v2 message at
// all are an error.
func (mp Mapper) MapBytes(network string, raw []byte, ingest time.Time) (*hl7v2.Message, *hinscorev1.ExchangeEvent, error) {
	m, err := hl7v2.ParseTolerant(raw)
	if err != nil {
		return nil, nil, err
	}
	ev, err := mp.Map(network, raw, m, ingest)
	return m, ev, err
}

// Map maps m, parsed from raw, observed on network at ingest. Defects that
// leave the message identifiable become data-quality flags (reason codes
// "dq|...", lib/domain/quality) instead of errors: an empty or unreadable
// MSH-7 gives the ingest time, an empty MSH-10 a message id derived from
// the event id, an empty MSH-9 a notification.
func (mp Mapper) Map(network string, raw []byte, m *hl7v2.Message, ingest time.Time) (*hinscorev1.ExchangeEvent, error) {
	var flags []string
	t, flag := eventTime(m.Get("MSH-7.1"), ingest)
	if flag != "" {
		flags = append(flags, quality.Code(flag))
	}
	code, trigger := m.Get("MSH-9.1"), m.Get("MSH-9.2")
	if code == "" {
		flags = append(flags, quality.Code(quality.NoMessageType))
	}
	ev := &hinscorev1.ExchangeEvent{
		EventId:        ids.Event(network, raw).String(),
		Network:        network,
		Format:         hinscorev1.Format_FORMAT_HL7V2,
		MessageId:      m.Get("MSH-10"),
		MessageType:    messageType(m),
		EventTimeMs:    t.UnixMilli(),
		IngestTimeMs:   ingest.UnixMilli(),
		MappingVersion: MappingVersion,
	}
	if ev.MessageId == "" {
		ev.MessageId = DerivedIDPrefix + ev.EventId
		flags = append(flags, quality.Code(quality.NoControlID))
	}
	if flag := sequence(m, ev); flag != "" {
		flags = append(flags, quality.Code(flag))
	}
	defer func() { ev.ReasonCodes = append(ev.ReasonCodes, flags...) }()
	p, known := lookupPattern(code, trigger)
	if !known && m.Has("MSA") {
		p = pattern{shape: shapeAnswer} // an acknowledgment of some other type (MFK, ...)
	}
	sender, receiver := mp.organisation(m, &senderPaths), mp.organisation(m, &receiverPaths)
	answerKey := func() string { return key(network, receiver, m.Get("MSA-2")) }
	switch p.shape {
	case shapeRequest:
		ev.Role, ev.RequestKind = hinscorev1.Role_ROLE_REQUEST, p.kind
		ev.CorrelationKey = key(network, sender, ev.MessageId)
	case shapeOrder:
		ev.Role, ev.RequestKind = hinscorev1.Role_ROLE_REQUEST, p.kind
		if isCancel(m.Get("ORC-1")) {
			ev.Role = hinscorev1.Role_ROLE_CANCEL
		}
		ev.CorrelationKey = key(network, sender, ev.MessageId)
		if placer := placerNumber(m); placer != "" {
			ev.CorrelationKey = key(network, sender, "placer:"+placer)
		}
	case shapeAnswer, shapeOrderAnswer:
		mapAnswer(m, ev, p.shape)
		ev.CorrelationKey = answerKey()
		if placer := placerNumber(m); p.shape == shapeOrderAnswer && placer != "" {
			ev.CorrelationKey = key(network, receiver, "placer:"+placer)
		}
	case shapeResult:
		if placer := placerNumber(m); placer != "" {
			ev.Role, ev.Status = hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_OK
			ev.CorrelationKey = key(network, receiver, "placer:"+placer)
			// A result returns its observations: one record each.
			ev.RecordCount = uint32(m.Count("OBX"))
		} else {
			ev.Role = hinscorev1.Role_ROLE_NOTIFICATION
			ev.CorrelationKey = key(network, sender, ev.MessageId)
		}
	default:
		// Keyed like a request so that the ACKs of a notification meet it.
		ev.Role = hinscorev1.Role_ROLE_NOTIFICATION
		ev.CorrelationKey = key(network, sender, ev.MessageId)
	}
	if ev.Role == hinscorev1.Role_ROLE_REQUEST || ev.Role == hinscorev1.Role_ROLE_NOTIFICATION || ev.Role == hinscorev1.Role_ROLE_CANCEL {
		ev.RequesterOrg, ev.ResponderOrg = sender, receiver
	} else {
		ev.RequesterOrg, ev.ResponderOrg = receiver, sender
	}
	if auth, id, ok := patientID(m); ok {
		ev.PatientToken = mp.Patients.Token(auth, id)
		ev.PatientKeyId = mp.PatientKeyID
	}
	return ev, nil
}

func key(network, facility, id string) string { return network + "|" + facility + "|" + id }

// mapAnswer fills what an acknowledgment says: role, status, reasons.
func mapAnswer(m *hl7v2.Message, ev *hinscorev1.ExchangeEvent, s shape) {
	ev.InReplyTo = m.Get("MSA-2")
	ev.AckCode = m.Get("MSA-1")
	ev.Role = hinscorev1.Role_ROLE_RESPONSE
	status := hinscorev1.Status_STATUS_UNSPECIFIED
	for _, a := range ackCodes {
		if a.code == ev.AckCode {
			ev.Role, status = a.role, a.status
		}
	}
	if s == shapeOrderAnswer && status == hinscorev1.Status_STATUS_OK {
		// The order was accepted; its result (ORU) fulfils it.
		ev.Role, status = hinscorev1.Role_ROLE_INTERIM, hinscorev1.Status_STATUS_ACCEPTED
	}
	if status == hinscorev1.Status_STATUS_OK && m.Has("QAK") {
		qak := m.Get("QAK-2")
		for _, q := range queryResponses {
			if q.code == qak {
				status = q.status
			}
		}
		ev.RecordCount = queryRecords(m)
	}
	r := readReasons(m)
	ev.ReasonCodes, ev.ReasonText, ev.ExceptionCode = r.codes, text.Truncate(r.text, MaxReasonText), r.exception
	switch status {
	case statusError:
		status = hinscorev1.Status_STATUS_ERROR_PERMANENT
		for _, c := range r.errCodes {
			if isTransient(c) {
				status = hinscorev1.Status_STATUS_ERROR_TRANSIENT
			}
		}
	case hinscorev1.Status_STATUS_REFUSED:
		if r.redirect != "" {
			status = hinscorev1.Status_STATUS_REDIRECTED
			if ev.ExceptionCode == "" {
				ev.ExceptionCode = r.redirect
			}
		}
	}
	ev.Status = status
}

type reasons struct {
	codes     []string
	errCodes  []string // ERR-3 (or v2.3 ERR-1.4) codes
	text      string
	exception string // first cited exception or redirect code
	redirect  string // redirect code by coding or text
}

// readReasons collects every ERR segment (and MSA-3, the pre-v2.5 text).
func readReasons(m *hl7v2.Message) reasons {
	var r reasons
	var texts []string
	cite := func(code string) {
		if r.exception == "" && code != "" {
			r.exception = code
		}
		if r.redirect == "" && exception.IsRedirect(code) {
			r.redirect = code
		}
	}
	for i := 1; i <= m.Count("ERR"); i++ {
		seg := "ERR(" + strconv.Itoa(i) + ")-"
		get := func(f string) string { return m.Get(seg + f) }
		code, system := get("3.1"), get("3.3")
		if code == "" {
			code, system = get("1.4.1"), get("1.4.3") // v2.3: ERR-1 segment^seq^field^code
		}
		if code != "" {
			if system == "" {
				system = "HL70357"
			}
			r.errCodes = append(r.errCodes, code)
			r.codes = append(r.codes, system+"|"+code)
		}
		for _, c := range [][2]string{{get("5.3"), get("5.1")}, {get("5.6"), get("5.4")}} {
			if c[1] == "" {
				continue
			}
			if c[0] != "" {
				r.codes = append(r.codes, c[0]+"|"+c[1])
			} else {
				r.codes = append(r.codes, c[1])
			}
			cite(exception.FromCoding(c[0], c[1]))
		}
		if t := get("8"); t != "" {
			texts = append(texts, t)
		}
		for _, t := range []string{get("8"), get("5.2"), get("5.5")} {
			cite(exception.FromText(t))
		}
	}
	if len(texts) == 0 {
		if t := m.Get("MSA-3"); t != "" {
			texts = append(texts, t)
			cite(exception.FromText(t))
		}
	}
	r.text = strings.Join(texts, "; ")
	if r.redirect == "" {
		r.redirect = exception.RedirectFromText(r.text)
	}
	return r
}

// messageType renders MSH-9 with ^ whatever the message's delimiters.
func messageType(m *hl7v2.Message) string {
	parts := []string{m.Get("MSH-9.1"), m.Get("MSH-9.2"), m.Get("MSH-9.3")}
	for len(parts) > 1 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return strings.Join(parts, "^")
}

// The HD components organisation reads, in its order: facility namespace
// id, facility universal id, application namespace id, application
// universal id.
var (
	senderPaths   = [4]string{"MSH-4.1", "MSH-4.2", "MSH-3.1", "MSH-3.2"}
	receiverPaths = [4]string{"MSH-6.1", "MSH-6.2", "MSH-5.1", "MSH-5.2"}
)

// organisation is the organisation a message names in its facility HD
// (MSH-4 or MSH-6), else in its application HD (MSH-3 or MSH-5): with a
// directory, the first of namespace id, universal id (OID, NPI) of the
// facility then the application that the directory knows; otherwise (or
// when it knows none) the first of them that is not empty, as the message
// spells it.
func (mp Mapper) organisation(m *hl7v2.Message, paths *[4]string) string {
	if mp.Orgs != nil {
		for _, p := range paths {
			if o, ok := mp.Orgs.Lookup(m.Get(p)); ok {
				return o.ID
			}
		}
	}
	for _, p := range paths {
		if c := m.Get(p); c != "" {
			return c // the rest need not be read
		}
	}
	return ""
}

// isCancel reports whether an order control code (ORC-1, HL7 table 0119)
// withdraws the order: CA cancel, DC discontinue, both sent
// by its requester.
func isCancel(orc1 string) bool {
	switch orc1 {
	case "CA", "DC":
		return true
	}
	return false
}

func placerNumber(m *hl7v2.Message) string {
	if p := m.Get("ORC-2.1"); p != "" {
		return p
	}
	return m.Get("OBR-2.1")
}

// patientID is the patient identifier and its assigning authority, from
// PID-3, a query's QPD-3 or a legacy query's QRD-8; ok is false when the
// message names no patient.
func patientID(m *hl7v2.Message) (auth, id string, ok bool) {
	id, auth = m.Get("PID-3.1"), hd(m, "PID-3.4")
	if id == "" && m.Has("QPD") {
		id, auth = queryPatient(m)
	}
	if id == "" && m.Has("QRD") {
		// Legacy queries name the patient in QRD-8 (who subject filter, an
		// XCN: id in component 1, assigning authority in component 9).
		id, auth = m.Get("QRD-8.1"), hd(m, "QRD-8.9")
	}
	return auth, id, id != ""
}

// hd is the canonical name (patient.Authority) of the assigning authority
// at field, an HD in subcomponents: namespace, universal id, its type.
func hd(m *hl7v2.Message, field string) string {
	return patient.Authority(m.Get(field+".1"), m.Get(field+".2"), m.Get(field+".3"))
}

// queryPatient reads QPD-3: either Q22-style repetitions of
// @PID.3.1^value / @PID.3.4.1^authority pairs, or (Q23, Q11) a CX.
func queryPatient(m *hl7v2.Message) (id, auth string) {
	if !strings.HasPrefix(m.Get("QPD-3.1"), "@") {
		return m.Get("QPD-3.1"), hd(m, "QPD-3.4")
	}
	var ns, uid, typ string
	for i := 1; i <= m.Repetitions("QPD-3"); i++ {
		rep := "QPD-3(" + strconv.Itoa(i) + ")"
		switch m.Get(rep + ".1") {
		case "@PID.3.1", "@PID.3":
			id = m.Get(rep + ".2")
		case "@PID.3.4.1", "@PID.3.4":
			ns = m.Get(rep + ".2")
		case "@PID.3.4.2":
			uid = m.Get(rep + ".2")
		case "@PID.3.4.3":
			typ = m.Get(rep + ".2")
		}
	}
	return id, patient.Authority(ns, uid, typ)
}

// eventTime reads MSH-7: its time, or the ingest time when it is empty
// or cannot be read, with the data-quality flag that says so ("" for a
// well-formed time).
func eventTime(s string, ingest time.Time) (time.Time, string) {
	if s == "" {
		return ingest, quality.NoTimestamp
	}
	t, noPoint, err := readTime(s)
	switch {
	case err != nil:
		return ingest, quality.BadTimestamp
	case noPoint:
		return t, quality.TimeNoPoint
	}
	return t, ""
}

// ParseTime reads an HL7 DTM: YYYYMMDDHHMM[SS[.S+]][+/-ZZZZ]. Without a
// zone the time is UTC. Seconds followed by digits without the decimal
// point (YYYYMMDDHHMMSSFF, as some senders write it) are read as the
// fraction.
func ParseTime(s string) (time.Time, error) {
	t, _, err := readTime(s)
	return t, err
}

// readTime is ParseTime, reporting a fraction written without its point.
func readTime(s string) (time.Time, bool, error) {
	if s == "" {
		return time.Time{}, false, errors.New("time is empty")
	}
	body, zone := s, ""
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		body, zone = s[:i], s[i:]
	}
	frac, noPoint := "", false
	if i := strings.IndexByte(body, '.'); i >= 0 {
		body, frac = body[:i], body[i+1:]
		if len(body) != 14 || frac == "" || len(frac) > 9 || !digits(frac) {
			return time.Time{}, false, fmt.Errorf("time %q: bad fraction of a second", s)
		}
	} else if len(body) > 14 && len(body) <= 14+9 && digits(body) {
		body, frac, noPoint = body[:14], body[14:], true
	}
	if (len(body) != 12 && len(body) != 14) || !digits(body) {
		return time.Time{}, false, fmt.Errorf("time %q: want YYYYMMDDHHMM[SS[.S]][+/-ZZZZ]", s)
	}
	num := func(a, b int) int { n, _ := strconv.Atoi(body[a:b]); return n }
	sec := 0
	if len(body) == 14 {
		sec = num(12, 14)
	}
	nsec := 0
	if frac != "" {
		n, _ := strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
		nsec = n
	}
	loc := time.UTC
	if zone != "" {
		if len(zone) != 5 || !digits(zone[1:]) {
			return time.Time{}, false, fmt.Errorf("time %q: bad zone %q, want +/-HHMM", s, zone)
		}
		h, _ := strconv.Atoi(zone[1:3])
		mi, _ := strconv.Atoi(zone[3:5])
		if h > 14 || mi > 59 {
			return time.Time{}, false, fmt.Errorf("time %q: zone %q out of range", s, zone)
		}
		off := h*3600 + mi*60
		if zone[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	y, mo, d, h, mi := num(0, 4), num(4, 6), num(6, 8), num(8, 10), num(10, 12)
	t := time.Date(y, time.Month(mo), d, h, mi, sec, nsec, loc)
	if t.Year() != y || int(t.Month()) != mo || t.Day() != d || t.Hour() != h || t.Minute() != mi || t.Second() != sec {
		return time.Time{}, false, fmt.Errorf("time %q: no such date or time", s)
	}
	return t.UTC(), noPoint, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// queryRecords is how many records a query's answer returns: QAK-5, the
// records in this payload, which a partial or continued answer (QAK-2 TM,
// DSC) keeps below the hit count; else QAK-4, the hits, which an answer
// that returns them all does not tell apart from it; else 0.
func queryRecords(m *hl7v2.Message) uint32 {
	for _, field := range []string{"QAK-5", "QAK-4"} {
		if n, err := strconv.ParseUint(m.Get(field), 10, 32); err == nil {
			return uint32(n)
		}
	}
	return 0
}
