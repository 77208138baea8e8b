// Package patient turns a patient identifier into the token that is all
// hinscore keeps outside RAW. HL7 v2 and FHIR share it, so that one patient
// named the same way in both formats gets one token.
package patient

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Token is the hex HMAC-SHA256, under key, of "authority|id", where
// authority is the canonical one (Authority: HL7 v2's assigning authority,
// FHIR's Identifier.system).
//
// The HMAC (RFC 2104) is written out over sha256.Sum256 on buffers of its
// own because the ingest makes a token for every message and crypto/hmac
// allocates two hash states and both pads on every call; TestToken checks
// it against crypto/hmac.
func Token(key []byte, authority, id string) string {
	var k [sha256.BlockSize]byte
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		copy(k[:], sum[:])
	} else {
		copy(k[:], key)
	}
	var small [256]byte
	inner := small[:0]
	if n := sha256.BlockSize + len(authority) + 1 + len(id); n > len(small) {
		inner = make([]byte, 0, n)
	}
	for _, c := range k {
		inner = append(inner, c^0x36)
	}
	inner = append(inner, authority...)
	inner = append(inner, '|')
	inner = append(inner, id...)
	innerSum := sha256.Sum256(inner)
	var outer [sha256.BlockSize + sha256.Size]byte
	for i, c := range k {
		outer[i] = c ^ 0x5c
	}
	copy(outer[sha256.BlockSize:], innerSum[:])
	sum := sha256.Sum256(outer[:])
	return hex.EncodeToString(sum[:])
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
