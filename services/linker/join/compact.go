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

// profile holds the low-cardinality strings of an event (message type,
// request kind, organisations, mapping version, exception code). They are
// interned per partition and a step stores only the profile's number.
type profile struct {
	messageType    string
	requestKind    string
	requesterOrg   string
	responderOrg   string
	mappingVersion string
	exceptionCode  string
}

func profileOf(ev *hinscorev1.ExchangeEvent) profile {
	return profile{
		messageType:    ev.GetMessageType(),
		requestKind:    ev.GetRequestKind(),
		requesterOrg:   ev.GetRequesterOrg(),
		responderOrg:   ev.GetResponderOrg(),
		mappingVersion: ev.GetMappingVersion(),
		exceptionCode:  ev.GetExceptionCode(),
	}
}

// profileTable interns profiles with reference counts, so that it holds only
// what live chains use and never grows without bound.
type profileTable struct {
	ids   map[profile]uint32
	items []profileEntry
	free  []uint32
}

type profileEntry struct {
	p    profile
	refs uint32
}

func newProfileTable() profileTable { return profileTable{ids: map[profile]uint32{}} }

func (t *profileTable) ref(p profile) uint32 {
	if id, ok := t.ids[p]; ok {
		t.items[id].refs++
		return id
	}
	var id uint32
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
		t.items[id] = profileEntry{p: p, refs: 1}
	} else {
		id = uint32(len(t.items))
		t.items = append(t.items, profileEntry{p: p, refs: 1})
	}
	t.ids[p] = id
	return id
}

func (t *profileTable) unref(id uint32) {
	e := &t.items[id]
	e.refs--
	if e.refs == 0 {
		delete(t.ids, e.p)
		e.p = profile{}
		t.free = append(t.free, id)
	}
}

func (t *profileTable) get(id uint32) *profile { return &t.items[id].p }

// live counts the profiles in use.
func (t *profileTable) live() int { return len(t.ids) }

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
	b = appendUvarint(b, zigzag(ev.GetEventTimeMs()))
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

// decodeStep decodes the step at off of a chain's data. The data was written
// by appendStep (or checked by validateData when read from a checkpoint).
func decodeStep(d string, off int) (step, int) {
	var s step
	var v uint64
	v, off = uvarintStr(d, off)
	s.t = unzigzag(v)
	s.rawSeq, off = uvarintStr(d, off)
	v, off = uvarintStr(d, off)
	s.role = hinscorev1.Role(int32(uint32(v)))
	v, off = uvarintStr(d, off)
	s.status = hinscorev1.Status(int32(uint32(v)))
	v, off = uvarintStr(d, off)
	s.recordCount = uint32(v)
	v, off = uvarintStr(d, off)
	s.profile = uint32(v)
	s.eventID, s.idPacked, off = packedStr(d, off)
	s.messageID, off = strStr(d, off)
	s.token, s.tokPacked, off = packedStr(d, off)
	start := off
	n, off := uvarintStr(d, off)
	for range n {
		_, off = strStr(d, off)
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

// --- primitive encodings ---------------------------------------------------

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendStr(b []byte, s string) []byte {
	b = appendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// uvarintStr reads a uvarint of trusted data; truncated data reads as 0 at
// the end (validateData rejects it before it gets here).
func uvarintStr(d string, off int) (uint64, int) {
	// Most fields (lengths, enums, profile numbers) are one byte.
	if off < len(d) && d[off] < 0x80 {
		return uint64(d[off]), off + 1
	}
	var v uint64
	var shift uint
	for off < len(d) {
		c := d[off]
		off++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, off
		}
		shift += 7
	}
	return v, off
}

func strStr(d string, off int) (string, int) {
	n, off := uvarintStr(d, off)
	end := off + int(n)
	return d[off:end], end
}

func packedStr(d string, off int) (string, bool, int) {
	h, off := uvarintStr(d, off)
	end := off + int(h>>1)
	return d[off:end], h&1 == 1, end
}

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
