// Package patient turns a patient identifier into the token that is all
// hinscore keeps outside RAW. HL7 v2 and FHIR share it, so that one patient
// named the same way in both formats gets one token.
package patient

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Token is the hex HMAC-SHA256, under key, of "authority|id" (HL7 v2:
// PID-3.4.1 or QPD's assigning authority; FHIR: Identifier.system).
func Token(key []byte, authority, id string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(authority))
	mac.Write([]byte{'|'})
	mac.Write([]byte(id))
	return hex.EncodeToString(mac.Sum(nil))
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
