// Package bus names hinscore's JetStream streams and subjects, creates the
// streams, derives the deterministic ids every published message carries,
// and starts the embedded NATS server used by the demo and the tests.
package bus

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Stream names.
const (
	StreamRaw        = "RAW"
	StreamEvents     = "EVENTS"
	StreamOutcomes   = "OUTCOMES"
	StreamDLQ        = "DLQ"
	StreamScorecards = "SCORECARDS"
	StreamAudit      = "AUDIT"
)

// Headers carried by messages on the bus.
const (
	HeaderReason  = "Hin-Reason"  // DLQ: why the message could not be processed
	HeaderStage   = "Hin-Stage"   // DLQ: which stage rejected it
	HeaderNetwork = "Hin-Network" // DLQ and RAW: the network the bytes came from
	HeaderFormat  = "Hin-Format"  // RAW and DLQ: hl7v2 | fhir
	HeaderRemote  = "Hin-Remote"  // RAW and DLQ: the peer address
)

// ErrBadNetwork is returned for a network name that cannot be a subject token.
var ErrBadNetwork = errors.New("bus: network name must be 1-64 of [A-Za-z0-9_-]")

// ValidNetwork reports whether name can be used as a network (a subject token).
func ValidNetwork(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w: %q", ErrBadNetwork, name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("%w: %q", ErrBadNetwork, name)
		}
	}
	return nil
}

// RawSubject is where the original bytes of a message are kept.
func RawSubject(network, format string) string { return "raw." + network + "." + format }

// AuditSubject is where the api records an access to (or a refused
// attempt at) network's original messages; "none" when the attempt named
// no network of a chain.
func AuditSubject(network string) string {
	if network == "" {
		network = "none"
	}
	return "audit.api." + network
}

// EventSubject is where an ExchangeEvent of the given partition is published.
func EventSubject(partition uint32, network string) string {
	return "events." + strconv.FormatUint(uint64(partition), 10) + "." + network
}

// EventPartitionFilter is the subject filter a linker of partition p consumes.
func EventPartitionFilter(partition uint32) string {
	return "events." + strconv.FormatUint(uint64(partition), 10) + ".>"
}

// OutcomeSubject is where a network's outcomes are published.
func OutcomeSubject(network string) string { return "outcomes." + network }

// DLQSubject is where a stage sends what it could not process.
func DLQSubject(stage string) string { return "dlq." + stage }

// ScorecardSubject is where a network's scorecards are published.
func ScorecardSubject(network string) string { return "scorecards." + network }

// NetworkOfSubject returns the last token of a subject (the network for
// events.<p>.<network>, outcomes.<network>, raw.<network>.<format> is not
// covered: use its second token).
func NetworkOfSubject(subject string) string {
	if i := strings.LastIndexByte(subject, '.'); i >= 0 {
		return subject[i+1:]
	}
	return subject
}

// Partition maps a correlation key to one of n partitions (FNV-1a), so a
// request and its answers always meet in the same linker.
func Partition(correlationKey string, n int) uint32 {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(correlationKey))
	return h.Sum32() % uint32(n)
}

// Namespaces of the deterministic (version 5) UUIDs.
var (
	eventNamespace   = uuid.MustParse("6f1c2a4e-8b0d-5d8e-9c51-1e6a2b7d9a01")
	outcomeNamespace = uuid.MustParse("0d3e7b52-4c1a-5f60-8e2b-93a4c5d6e702")
)

// EventID is the id of an observed message: the same network and the same
// bytes always give the same id, so a re-sent copy is recognised. It is also
// the Nats-Msg-Id of the RAW and EVENTS publishes (with a stream prefix).
func EventID(network string, raw []byte) uuid.UUID {
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

// OutcomeID is the id of a request chain: one per network and correlation key.
func OutcomeID(network, correlationKey string) uuid.UUID {
	return uuid.NewSHA1(outcomeNamespace, []byte(network+"\x00"+correlationKey))
}

// OutcomeMsgID is the Nats-Msg-Id of one version of an outcome.
func OutcomeMsgID(outcomeID string, version uint64) string {
	return "outcome:" + outcomeID + ":" + strconv.FormatUint(version, 10)
}
