package toevent

import (
	"strconv"
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/quality"
	"github.com/hinscore/hinscore/services/lib/hl7v2"
)

// sequence records MSH-13, the sequence number of the HL7 sequence-number
// protocol (HL7 v2.5 2.10.1), on ev: the number and whose counter it is,
// the sending application and facility towards the receiving ones (the
// protocol numbers the messages of one such pair). A sender that does not
// use the protocol leaves MSH-13 empty and nothing is recorded. -1 asks the
// receiver for the number it expects and is no place in the sequence; a
// value that is no number is recorded as a data-quality flag, never a
// rejection. It returns the flag, or "".
func sequence(m *hl7v2.Message, ev *hinscorev1.ExchangeEvent) string {
	s := strings.TrimSpace(m.Get("MSH-13"))
	if s == "" || s == "-1" {
		return ""
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return quality.BadSequenceNumber
	}
	ev.SequenceSource = "hl7|" + hdName(m, "MSH-3") + "^" + hdName(m, "MSH-4") + ">" + hdName(m, "MSH-5") + "^" + hdName(m, "MSH-6")
	ev.SequenceNumber = n
	return ""
}

// hdName is an HD field's namespace id, else its universal id: whichever
// names the party, whatever the message's delimiters.
func hdName(m *hl7v2.Message, field string) string {
	if ns := m.Get(field + ".1"); ns != "" {
		return ns
	}
	return m.Get(field + ".2")
}
