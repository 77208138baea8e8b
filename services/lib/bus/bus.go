// Package bus names hinscore's JetStream streams and subjects, creates or
// checks the streams, connects a service to NATS, and says where an
// event's original bytes are. Its subpackages: seal (sealing those bytes),
// dlq (dead letters), natsembed (the embedded server, for the all-in-one
// binary and tests only), bustest (the JetStream a test starts).
package bus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// OutcomeMsgID is the Nats-Msg-Id of one version of an outcome.
func OutcomeMsgID(outcomeID string, version uint64) string {
	return "outcome:" + outcomeID + ":" + strconv.FormatUint(version, 10)
}
