package toevent

import (
	"slices"
	"testing"

	"github.com/hinscore/hinscore/services/lib/domain/quality"
)

// TestSequenceNumber: MSH-13 is recorded with its counter's owner (sending
// application and facility towards the receiving ones, whatever the
// delimiters); an empty MSH-13 or -1 (the protocol's "which number do you
// expect?") records none; a value that is no number is a flag, the message
// still mapped.
func TestSequenceNumber(t *testing.T) {
	for _, tc := range []struct {
		name, msh13 string
		seps        string
		wantSource  string
		wantNumber  int64
		wantFlag    bool
	}{
		{"numbered", "1042", "|^~\\&", "hl7|EHR^HOSP_A>HIE^NETB", 1042, false},
		{"reset to zero", "0", "|^~\\&", "hl7|EHR^HOSP_A>HIE^NETB", 0, false},
		{"other delimiters", "7", "#$~\\&", "hl7|EHR^HOSP_A>HIE^NETB", 7, false},
		{"not used", "", "|^~\\&", "", 0, false},
		{"asks the expected number", "-1", "|^~\\&", "", 0, false},
		{"not a number", "12A", "|^~\\&", "", 0, true},
		{"negative", "-5", "|^~\\&", "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c := tc.seps[:1], tc.seps[1:2]
			msg := "MSH" + f + tc.seps[1:] + f + "EHR" + f + "HOSP_A" + c + "1.2.3" + c + "ISO" + f + "HIE" + f + "NETB" + f +
				"20260302095900" + f + f + "ADT" + c + "A01" + f + "M1" + f + "P" + f + "2.5.1" + f + tc.msh13 + "\r"
			ev, err := mapper.Map("neta", []byte(msg), mustParse(msg), ingest)
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetSequenceSource() != tc.wantSource || ev.GetSequenceNumber() != tc.wantNumber {
				t.Errorf("sequence = %q %d, want %q %d", ev.GetSequenceSource(), ev.GetSequenceNumber(), tc.wantSource, tc.wantNumber)
			}
			if got := slices.Contains(ev.GetReasonCodes(), quality.Code(quality.BadSequenceNumber)); got != tc.wantFlag {
				t.Errorf("flag %v, want %v (codes %v)", got, tc.wantFlag, ev.GetReasonCodes())
			}
			if ev.GetMessageId() != "M1" {
				t.Errorf("message id %q: the message was not mapped whole", ev.GetMessageId())
			}
		})
	}
}
