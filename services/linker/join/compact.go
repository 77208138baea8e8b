package join

import (
	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// A chain keeps its events in one immutable string, not as decoded protos:
// a pending request then costs about a third of what an ExchangeEvent does
// (see BenchmarkPendingMemory). The layout is
//
//	uvarint(len(key)) key step*
//	step = uvarint(zigzag(event_time_ms)) uvarint(raw_seq) uvarint(role)
//	       uvarint(status) uvarint(record_count) uvarint(profile)
//	       id(event_id) str(message_id) id(patient_token)
//	       uvarint(len(reason_codes)) str(reason_code)*
//	str    = uvarint(len) bytes
//	id     = uvarint(len<<1 | packed) bytes, where packed means the text was a
//	         canonical lowercase UUID (event ids) or lowercase hex (tokens)
//	         and is stored as its binary bytes
//
// Steps are stored in arrival order; whoever needs them sorted sorts a
// decoded copy. The strings of a decoded step point into the chain's data.

// step is one decoded event of a chain.
type step struct {
	t           int64
	rawSeq      uint64
	role        hinscorev1.Role
	status      hinscorev1.Status
	recordCount uint32
	profile     uint32
	eventID     string // as stored: 16 bytes when idPacked
	idPacked    bool
	messageID   string
	token       string // as stored: binary when tokPacked
	tokPacked   bool
	reasons     string // the encoded reason codes (count, then str each)
}

// final reports whether the step can decide a chain: a response that is not
// a mere acceptance, or the requester's cancel.
func (s *step) final() bool {
	switch s.role {
	case hinscorev1.Role_ROLE_RESPONSE:
		return s.status != hinscorev1.Status_STATUS_ACCEPTED
	case hinscorev1.Role_ROLE_CANCEL:
		return true
	}
	return false
}

// answer reports whether the step answers the request (it counts for the
// time to acknowledge): interim or response, not the requester's cancel.
func (s *step) answer() bool {
	return s.role == hinscorev1.Role_ROLE_RESPONSE || s.role == hinscorev1.Role_ROLE_INTERIM
}

// eventIDText returns the event id as it arrived.
func (s *step) eventIDText() string {
	if s.idPacked {
		return string(appendUUIDText(nil, s.eventID))
	}
	return s.eventID
}

// appendIDText appends the event id as it arrived.
func (s *step) appendIDText(b []byte) []byte {
	if s.idPacked {
		return appendUUIDText(b, s.eventID)
	}
	return append(b, s.eventID...)
}

// appendTokenText appends the patient token as it arrived.
func (s *step) appendTokenText(b []byte) []byte {
	if s.tokPacked {
		return appendHex(b, s.token)
	}
	return append(b, s.token...)
}

// stepLess orders steps by event time, then event id (as text), so that the
// order never depends on arrival.
func stepLess(a, b *step) bool {
	if a.t != b.t {
		return a.t < b.t
	}
	if a.idPacked && b.idPacked {
		// Canonical lowercase UUID text sorts like its bytes.
		return a.eventID < b.eventID
	}
	return a.eventIDText() < b.eventIDText()
}

// appendStep encodes an event as a step.
func appendStep(b []byte, ev *hinscorev1.ExchangeEvent, profileID uint32) []byte {
	b = appendVarint(b, ev.GetEventTimeMs())
	b = appendUvarint(b, ev.GetRawSeq())
	b = appendUvarint(b, uint64(uint32(ev.GetRole())))
	b = appendUvarint(b, uint64(uint32(ev.GetStatus())))
	b = appendUvarint(b, uint64(ev.GetRecordCount()))
	b = appendUvarint(b, uint64(profileID))
	b = appendEventID(b, ev.GetEventId())
	b = appendStr(b, ev.GetMessageId())
	b = appendToken(b, ev.GetPatientToken())
	rc := ev.GetReasonCodes()
	b = appendUvarint(b, uint64(len(rc)))
	for _, r := range rc {
		b = appendStr(b, r)
	}
	return b
}

// decodeStep decodes the step at off of d and returns the offset after it:
// a chain's data, written by appendStep, or read from a checkpoint, where a
// malformed step returns -1 (checkData).
func decodeStep(d string, off int) (step, int) {
	var s step
	var v, role, status, records, pid uint64
	v, off = uvarintAt(d, off)
	s.t = unzigzag(v)
	s.rawSeq, off = uvarintAt(d, off)
	role, off = uvarintAt(d, off)
	status, off = uvarintAt(d, off)
	records, off = uvarintAt(d, off)
	pid, off = uvarintAt(d, off)
	s.role, s.status = hinscorev1.Role(role), hinscorev1.Status(status)
	s.recordCount, s.profile = uint32(records), uint32(pid)
	s.eventID, s.idPacked, off = packedAt(d, off)
	s.messageID, off = strAt(d, off)
	s.token, s.tokPacked, off = packedAt(d, off)
	start := off
	n, off := uvarintAt(d, off)
	for ; n > 0 && off >= 0; n-- {
		_, off = strAt(d, off)
	}
	if off < 0 || !fitsEnum(role) || !fitsEnum(status) || !fits32(records) || !fits32(pid) ||
		s.idPacked && len(s.eventID) != 16 {
		return step{}, -1
	}
	s.reasons = d[start:off]
	return s, off
}

// encodeEventID is how an event id is stored (into buf), for comparisons
// with stored steps without decoding them to text.
func encodeEventID(buf []byte, id string) ([]byte, bool) {
	if u, ok := parseUUID(buf[:0], id); ok {
		return u, true
	}
	return append(buf[:0], id...), false
}

// --- event ids and patient tokens ------------------------------------------

func appendEventID(b []byte, id string) []byte {
	var tmp [16]byte
	if u, ok := parseUUID(tmp[:0], id); ok {
		b = appendUvarint(b, 16<<1|1)
		return append(b, u...)
	}
	b = appendUvarint(b, uint64(len(id))<<1)
	return append(b, id...)
}

func appendToken(b []byte, tok string) []byte {
	if isLowerHex(tok) {
		b = appendUvarint(b, uint64(len(tok)/2)<<1|1)
		for i := 0; i < len(tok); i += 2 {
			b = append(b, unhex(tok[i])<<4|unhex(tok[i+1]))
		}
		return b
	}
	b = appendUvarint(b, uint64(len(tok))<<1)
	return append(b, tok...)
}

const hexDigits = "0123456789abcdef"

func isLowerHex(s string) bool {
	if s == "" || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// appendHex appends the lowercase hex text of b.
func appendHex(dst []byte, b string) []byte {
	for i := 0; i < len(b); i++ {
		dst = append(dst, hexDigits[b[i]>>4], hexDigits[b[i]&0xf])
	}
	return dst
}

// parseUUID appends the 16 bytes of a canonical lowercase UUID text to buf;
// any other text (upper case, braces, not a UUID) is kept as it came, so the
// round trip is exact.
func parseUUID(buf []byte, s string) ([]byte, bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return buf, false
	}
	start := len(buf)
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		a, b := s[i], s[i+1]
		if !(a >= '0' && a <= '9' || a >= 'a' && a <= 'f') || !(b >= '0' && b <= '9' || b >= 'a' && b <= 'f') {
			return buf[:start], false
		}
		buf = append(buf, unhex(a)<<4|unhex(b))
		i += 2
	}
	return buf, true
}

// appendUUIDText appends the canonical text of the 16 bytes of a UUID.
func appendUUIDText(dst []byte, b string) []byte {
	for i := 0; i < 16; i++ {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b[i]>>4], hexDigits[b[i]&0xf])
	}
	return dst
}
