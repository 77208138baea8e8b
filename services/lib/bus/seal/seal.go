// Package seal seals the original bytes of a message inside its event
// (ExchangeEvent.raw_sealed): AES-256-GCM under keys that only the ingests
// and the api hold.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"

	"google.golang.org/protobuf/proto"
)

// The original bytes an ingest stores with an event (ExchangeEvent.
// raw_sealed) are sealed, AES-256-GCM, with a key that only the ingests
// and the api hold: the linker and the chwriter read EVENTS, and so every
// event's sealed bytes, but cannot read them, so that no raw patient
// identifier is readable outside the ingests, RAW and the api's
// authorised drill-down. The event id is the additional data: sealed
// bytes moved to another event do not open.
//
// Sealed form: version (1), key id length, key id, 12-byte nonce, then
// the ciphertext and its 16-byte tag.

// EnvRawKeys names the configuration of the keys, the same variable
// for the ingests and the api.
const EnvRawKeys = "HINSCORE_RAW_KEYS"

// DevRawKeys is the key used when none is configured (the default of
// Keys.RawKeys): the SHA-256 of "hinscore-dev-raw-key-not-secret", public,
// so what it seals is protected from nobody; the services warn when it is
// in use.
const DevRawKeys = "dev:4dc21575a0bcced8a1c02fa930dbb9fcd56832e2538589bf63d07366c5c6efbe"

// Sentinel errors of Open.
var (
	ErrRawKeyUnknown = errors.New("bus: sealed with a key not held")
	ErrRawSealBroken = errors.New("bus: sealed bytes do not open (damaged, or not this event's)")
)

const sealVersion = 1

// RawKeys are the keys of a service: it seals with the first and opens
// with whichever the sealed bytes name (the keys of earlier rotations
// follow the first).
type RawKeys struct {
	keys []rawKey
}

type rawKey struct {
	id   string
	aead cipher.AEAD
}

// ParseRawKeys reads "id:hex,id:hex": key ids of 1 to 64 letters, digits,
// '-', '_' or '.', each with 32 bytes (64 hex digits) of key. The first
// seals.
func ParseRawKeys(s string) (*RawKeys, error) {
	var k RawKeys
	seen := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		id, hexKey, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok || !validKeyID(id) {
			return nil, fmt.Errorf("seal.ParseRawKeys: %q: want id:<64 hex digits>, the id of 1 to 64 letters, digits, '-', '_' or '.'", redactKey(item))
		}
		if seen[id] {
			return nil, fmt.Errorf("seal.ParseRawKeys: key id %q twice", id)
		}
		seen[id] = true
		key, err := hex.DecodeString(hexKey)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("seal.ParseRawKeys: key %q: want 64 hex digits (32 bytes)", id)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("seal.ParseRawKeys: key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal.ParseRawKeys: key %q: %w", id, err)
		}
		k.keys = append(k.keys, rawKey{id: id, aead: aead})
	}
	return &k, nil
}

// MustParseRawKeys is ParseRawKeys of a constant (DevRawKeys, tests).
func MustParseRawKeys(s string) *RawKeys {
	k, err := ParseRawKeys(s)
	if err != nil {
		panic(err)
	}
	return k
}

// Keys is the setting of the raw keys, the one of every service that
// seals or opens original bytes: the ingests and the api.
type Keys struct {
	// RawKeys seal with the first key; the others (of earlier rotations)
	// still open. The default is DevRawKeys.
	RawKeys *RawKeys `env:"HINSCORE_RAW_KEYS" default:"dev:4dc21575a0bcced8a1c02fa930dbb9fcd56832e2538589bf63d07366c5c6efbe" help:"id:<64 hex digits>[,id:<64 hex digits>...]: the AES-256 key that seals each message's bytes in its event (the first), then those of earlier rotations, which still open; the same value in mllp-ingest, fhir-ingest and api, never in the linker or chwriter. Unset: the public development key dev (a warning is logged)"`
}

// Validate names the variable when there is no key.
func (k Keys) Validate() error {
	if k.RawKeys == nil {
		return fmt.Errorf("%s: no key", EnvRawKeys)
	}
	return nil
}

// UnmarshalText reads "id:hex,id:hex" (ParseRawKeys).
func (k *RawKeys) UnmarshalText(b []byte) error {
	parsed, err := ParseRawKeys(string(b))
	if err != nil {
		return err
	}
	*k = *parsed
	return nil
}

func validKeyID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// redactKey keeps a malformed item's key out of the error message.
func redactKey(item string) string {
	if id, _, ok := strings.Cut(item, ":"); ok {
		return id + ":…"
	}
	if len(item) > 8 {
		return item[:8] + "…"
	}
	return item
}

// ID is the id of the sealing key.
func (k *RawKeys) ID() string { return k.keys[0].id }

// IsDev reports whether the sealing key is the public development key.
func (k *RawKeys) IsDev() bool { return k.keys[0].id == "dev" }

// Seal seals plain for the event eventID with the first key.
func (k *RawKeys) Seal(eventID string, plain []byte) []byte {
	key := k.keys[0]
	n := key.aead.NonceSize()
	out := make([]byte, 0, 2+len(key.id)+n+len(plain)+key.aead.Overhead())
	out = append(out, sealVersion, byte(len(key.id)))
	out = append(out, key.id...)
	nonce := out[len(out) : len(out)+n]
	_, _ = rand.Read(nonce) // crypto/rand.Read does not fail (Go 1.24+)
	out = out[:len(out)+n]
	return key.aead.Seal(out, nonce, plain, []byte(eventID))
}

// Open returns the bytes sealed for the event eventID.
func (k *RawKeys) Open(eventID string, sealed []byte) ([]byte, error) {
	if len(sealed) < 2 || sealed[0] != sealVersion || len(sealed) < 2+int(sealed[1]) {
		return nil, ErrRawSealBroken
	}
	id := string(sealed[2 : 2+int(sealed[1])])
	rest := sealed[2+len(id):]
	for _, key := range k.keys {
		if key.id != id {
			continue
		}
		n := key.aead.NonceSize()
		if len(rest) < n+key.aead.Overhead() {
			return nil, ErrRawSealBroken
		}
		plain, err := key.aead.Open(nil, rest[:n], rest[n:], []byte(eventID))
		if err != nil {
			return nil, ErrRawSealBroken
		}
		return plain, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrRawKeyUnknown, id)
}

// MarshalEvent is how an ingest encodes an event for EVENTS: with raw, when
// given, sealed with keys into raw_sealed (the original bytes travelling
// with their event); ev itself is left without them. The sender's words
// (reason_text: ERR-8, diagnostics, a fault's reason, which may name the
// patient) do not travel: the mapping has read its codes from them, and
// the words stay in the sealed original, which only an audited
// investigator opens.
func MarshalEvent(ev *hinscorev1.ExchangeEvent, keys *RawKeys, raw []byte) ([]byte, error) {
	if raw != nil {
		ev.RawSealed = keys.Seal(ev.EventId, raw)
		defer func() { ev.RawSealed = nil }()
	}
	if text := ev.ReasonText; text != "" {
		ev.ReasonText = ""
		defer func() { ev.ReasonText = text }()
	}
	return proto.Marshal(ev)
}
