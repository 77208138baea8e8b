// Package patient turns a patient identifier into the token that is all
// hinscore keeps of it in the clear outside the original messages (sealed
// in EVENTS, kept in RAW and in the DLQ). HL7 v2 and FHIR share it, so that one patient
// named the same way in both formats gets one token.
package patient

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
	"sync"
)

// Token is the hex HMAC-SHA256 (crypto/hmac), under key, of
// "authority|id", where authority is the canonical one (Authority: HL7 v2's
// assigning authority, FHIR's Identifier.system). An ingest, which makes a
// token for every message, uses a Tokenizer instead: the same token without
// keying a new HMAC each time.
func Token(key []byte, authority, id string) string {
	return token(hmac.New(sha256.New, key), authority, id)
}

// Tokenizer makes the tokens of one key. It keeps keyed HMAC states for
// reuse (crypto/hmac's Reset restores the keyed state without rehashing
// the key), so a token costs one HMAC and no allocation beyond its text.
// It is safe for concurrent use; a nil Tokenizer tokenizes under the empty
// key, as Token does with a nil key.
type Tokenizer struct {
	key  []byte
	macs sync.Pool
}

// NewTokenizer returns a Tokenizer for key (copied).
func NewTokenizer(key []byte) *Tokenizer {
	t := &Tokenizer{key: append([]byte(nil), key...)}
	t.macs.New = func() any { return hmac.New(sha256.New, t.key) }
	return t
}

// Token is Token(key, authority, id) for the Tokenizer's key.
func (t *Tokenizer) Token(authority, id string) string {
	if t == nil {
		return Token(nil, authority, id)
	}
	mac := t.macs.Get().(hash.Hash)
	mac.Reset()
	s := token(mac, authority, id)
	t.macs.Put(mac)
	return s
}

func token(mac hash.Hash, authority, id string) string {
	var small [128]byte
	msg := small[:0]
	if n := len(authority) + 1 + len(id); n > len(small) {
		msg = make([]byte, 0, n)
	}
	msg = append(append(append(msg, authority...), '|'), id...)
	_, _ = mac.Write(msg)
	var sum [sha256.Size]byte
	return hex.EncodeToString(mac.Sum(sum[:0]))
}

// DevKey is the key used when none is configured (HINSCORE_PATIENT_KEY
// unset): public, so its tokens protect nothing; services warn when it is in use.
const DevKey = "hinscore-dev-patient-key-not-secret"

// ParseKey reads HINSCORE_PATIENT_KEY: hex when it is 32+ hex digits,
// otherwise the string's bytes.
func ParseKey(s string) []byte {
	if len(s) >= 32 && len(s)%2 == 0 {
		if b, err := hex.DecodeString(s); err == nil {
			return b
		}
	}
	return []byte(s)
}

// Authority is the canonical name of an HL7 v2 assigning authority (an HD:
// namespace id, universal id, universal id type), the one the token is
// made with. The namespace, when there is one, is the name (as it always
// was, so the tokens of such identifiers do not change). Without one, an
// ISO OID is "urn:oid:<oid>", a UUID "urn:uuid:<uuid>" and a URI the URI,
// which is how FHIR names the same authority in Identifier.system (a
// system is used as it is): an IHE audit record's CX with an OID only, or
// a PID-3 with an OID only, then gives the patient the token FHIR gives
// it. A universal id of another type is the id itself.
func Authority(namespace, universalID, universalIDType string) string {
	if namespace != "" || universalID == "" {
		return namespace
	}
	switch strings.ToUpper(universalIDType) {
	case "ISO":
		return "urn:oid:" + universalID
	case "UUID":
		return "urn:uuid:" + strings.ToLower(universalID)
	}
	return universalID
}

// SplitCX reads an identifier written as an HL7 v2 CX, id^^^authority
// with the authority's parts joined by & (IHE audit records put a
// patient's id so in AuditEvent.entity.what.identifier.value, with no
// system): the id and the canonical authority. ok is false when s is not
// such a CX: no "^" in it, or an empty id or authority.
func SplitCX(s string) (id, authority string, ok bool) {
	comps := strings.Split(s, "^")
	if len(comps) < 4 || comps[0] == "" {
		return "", "", false
	}
	hd := strings.Split(comps[3], "&")
	for len(hd) < 3 {
		hd = append(hd, "")
	}
	authority = Authority(hd[0], hd[1], hd[2])
	if authority == "" {
		return "", "", false
	}
	return comps[0], authority, true
}
