// Package quality names the data-quality flags of observed messages. An
// observer records every message a network carried that it can identify;
// a defect that does not prevent identifying the message (an odd
// timestamp, a missing control id, an entry status that is no HTTP status
// line) is kept on the event as a flag rather than refusing the message.
//
// A flag travels in the event's reason codes as "dq|<flag>", beside the
// codes the sender gave; the chwriter stores the flags alone, without the
// prefix, in the events' dq_flags column, and the scorecard counts the
// messages that carry any.
package quality

import "strings"

// Prefix marks a reason code that is a data-quality flag.
const Prefix = "dq|"

// The flags. Each says what was wrong and what was recorded instead.
const (
	NoTimestamp    = "no-timestamp"     // no event time in the message: the receive (ingest) time is used
	BadTimestamp   = "bad-timestamp"    // an event time that cannot be read: the receive (ingest) time is used
	TimeNoPoint    = "time-no-point"    // HL7 v2: seconds followed by a fraction without its decimal point (YYYYMMDDHHMMSSFF): the fraction is read
	NoControlID    = "no-control-id"    // HL7 v2: empty MSH-10: the message id is derived from the event id
	NoMessageType  = "no-message-type"  // HL7 v2: empty MSH-9: recorded as a notification
	BadEntryStatus = "bad-entry-status" // FHIR: a transaction-response entry whose response.status is no HTTP status line: read as well as it can be
	NoMessageID    = "no-message-id"    // SOAP: a request without wsa:MessageID: nothing can answer it
	NoRelatesTo    = "no-relates-to"    // SOAP: an answer without wsa:RelatesTo: it answers nothing known
	NoOutcome      = "no-outcome"       // an audit of an exchange (FHIR AuditEvent, ATNA AuditMessage) whose outcome is missing or unreadable: recorded as a notification, not scored
	// HL7 v2: an MSH-13 that is no sequence number: recorded without one
	BadSequenceNumber = "bad-sequence-number"
	// syslog: a meta sequenceId that is no number from 1 to 2147483647: recorded without one
	BadSyslogSequence = "bad-syslog-sequence"
)

// Code is the reason code of a flag.
func Code(flag string) string { return Prefix + flag }

// Flags returns the flags among reason codes, without their prefix; nil
// when there are none.
func Flags(codes []string) []string {
	var out []string
	for _, c := range codes {
		if f, ok := strings.CutPrefix(c, Prefix); ok {
			out = append(out, f)
		}
	}
	return out
}
