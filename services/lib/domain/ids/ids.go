// Package ids derives the deterministic (version 5) UUIDs that identify
// what hinscore observes: the same input always gives the same id, so a
// re-sent copy is recognised and a retried write replaces rather than adds.
package ids

import (
	"crypto/sha1"
	"io"

	"github.com/google/uuid"
)

// Namespaces of the version-5 UUIDs. Changing either changes every stored
// id: they are fixed for the life of the data.
var (
	eventNamespace   = uuid.MustParse("6f1c2a4e-8b0d-5d8e-9c51-1e6a2b7d9a01")
	outcomeNamespace = uuid.MustParse("0d3e7b52-4c1a-5f60-8e2b-93a4c5d6e702")
)

// Event is the id of an observed message: the same network and the same
// bytes always give the same id. It is also the Nats-Msg-Id of the message's
// publish (with a stream prefix).
func Event(network string, raw []byte) uuid.UUID {
	// uuid.NewSHA1(eventNamespace, network+"\x00"+raw), hashed in place:
	// the message is not copied to be hashed.
	h := sha1.New()
	_, _ = h.Write(eventNamespace[:])
	_, _ = io.WriteString(h, network)
	_, _ = h.Write([]byte{0})
	_, _ = h.Write(raw)
	var sum [sha1.Size]byte
	var id uuid.UUID
	copy(id[:], h.Sum(sum[:0]))
	id[6] = id[6]&0x0f | 0x50 // version 5
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

// Outcome is the id of a request chain: one per network and correlation key.
func Outcome(network, correlationKey string) uuid.UUID {
	return uuid.NewSHA1(outcomeNamespace, []byte(network+"\x00"+correlationKey))
}
