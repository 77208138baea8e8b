// Package patient turns a patient identifier into the token that is all
// hinscore keeps outside RAW. HL7 v2 and FHIR share it, so that one patient
// named the same way in both formats gets one token.
package patient

import (
	"crypto/sha256"
	"encoding/hex"
)

// Token is the hex HMAC-SHA256, under key, of "authority|id" (HL7 v2:
// PID-3.4.1 or QPD's assigning authority; FHIR: Identifier.system).
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
