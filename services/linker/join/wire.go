package join

import (
	"google.golang.org/protobuf/encoding/protowire"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// Outcomes is a batch of outcome versions in their wire form
// (hinscore.v1.Outcome), appended by the join to one buffer: building an
// outcome allocates nothing once the buffer has grown, and the publisher
// sends the bytes as they are. The bytes are the canonical encoding, exactly
// what proto.Marshal gives for the same message (jointest.Decode checks it
// for every outcome the tests see).
type Outcomes struct {
	buf  []byte
	list []Entry
}

// Entry is one outcome version of a batch: where its bytes are, and what
// the publisher needs to know of it without decoding them.
type Entry struct {
	start, end int
	ID         [36]byte // the outcome id's text
	Version    uint64
	Network    string
	Class      hinscorev1.OutcomeClass
}

// Len is the number of outcome versions in the batch.
func (o *Outcomes) Len() int { return len(o.list) }

// Entry describes outcome version i of the batch.
func (o *Outcomes) Entry(i int) *Entry { return &o.list[i] }

// Data is the encoded Outcome of entry i; it stays valid until Reset.
func (o *Outcomes) Data(i int) []byte {
	w := &o.list[i]
	return o.buf[w.start:w.end:w.end]
}

// Reset empties the batch, keeping its memory. Bytes handed out by Data
// must no longer be in use.
func (o *Outcomes) Reset() {
	o.buf = o.buf[:0]
	clear(o.list)
	o.list = o.list[:0]
}

// The field numbers of hinscore.v1.Outcome and hinscore.v1.Step.
const (
	fOutcomeID          protowire.Number = 1
	fVersion            protowire.Number = 2
	fNetwork            protowire.Number = 3
	fRequestID          protowire.Number = 4
	fCorrelationKey     protowire.Number = 5
	fRequestKind        protowire.Number = 6
	fRequesterOrg       protowire.Number = 7
	fResponderOrg       protowire.Number = 8
	fOutcomeClass       protowire.Number = 9
	fExceptionCode      protowire.Number = 10
	fReasonCodes        protowire.Number = 11
	fPatientToken       protowire.Number = 12
	fRequestedAtMs      protowire.Number = 13
	fAcknowledgedAtMs   protowire.Number = 14
	fAnsweredAtMs       protowire.Number = 15
	fHasTta             protowire.Number = 16
	fTtaMs              protowire.Number = 17
	fHasTtf             protowire.Number = 18
	fTtfMs              protowire.Number = 19
	fSlaMs              protowire.Number = 20
	fGraceMs            protowire.Number = 21
	fDecidedAtMs        protowire.Number = 22
	fRuleVersion        protowire.Number = 23
	fMappingVersion     protowire.Number = 24
	fResponseID         protowire.Number = 25
	fRecordCount        protowire.Number = 26
	fSteps              protowire.Number = 27
	fPurpose            protowire.Number = 28
	fPurposeCode        protowire.Number = 29
	fRequesterCommunity protowire.Number = 30
	fResponderCommunity protowire.Number = 31
	fSides              protowire.Number = 32
	fSLABusinessDays    protowire.Number = 33
	fUntimed            protowire.Number = 34
	fStepEventID        protowire.Number = 1
	fStepMessageID      protowire.Number = 2
	fStepMessageType    protowire.Number = 3
	fStepRole           protowire.Number = 4
	fStepStatus         protowire.Number = 5
	fStepEventTimeMs    protowire.Number = 6
	fStepRawSeq         protowire.Number = 7
	fStepSide           protowire.Number = 8
)

// Proto3 leaves out fields at their zero value; these append a field only
// when it is set, as proto.Marshal does. They use appendUvarint, which
// inlines, rather than protowire's append functions, which do not: the join
// spends a sizeable share of its time here.

func appendTag(b []byte, num protowire.Number, typ protowire.Type) []byte {
	return appendUvarint(b, uint64(protowire.EncodeTag(num, typ)))
}

func appendStrField(b []byte, num protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	b = appendTag(b, num, protowire.BytesType)
	return appendStr(b, v)
}

func appendUintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = appendTag(b, num, protowire.VarintType)
	return appendUvarint(b, v)
}

// int64 and enum fields are varints of their two's complement.
func appendIntField(b []byte, num protowire.Number, v int64) []byte {
	return appendUintField(b, num, uint64(v))
}

func appendBoolField(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	b = appendTag(b, num, protowire.VarintType)
	return append(b, 1)
}

// openLen starts a length-delimited field whose length is not known yet:
// it appends the tag and a one-byte length placeholder, and returns where
// the placeholder is, for closeLen.
func openLen(b []byte, num protowire.Number) ([]byte, int) {
	b = appendTag(b, num, protowire.BytesType)
	return append(b, 0), len(b)
}

// closeLen writes the length of what follows the placeholder at at, moving
// the content right when the length needs more than one byte.
func closeLen(b []byte, at int) []byte {
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	extra := protowire.SizeVarint(uint64(n)) - 1
	b = append(b, make([]byte, extra)...)
	copy(b[at+1+extra:], b[at+1:at+1+n])
	protowire.AppendVarint(b[:at], uint64(n))
	return b
}

// appendStepText appends a step's event id or patient token as a string
// field, in the text it arrived as; left out when it is empty.
func appendStepText(b []byte, num protowire.Number, s *step, token bool) []byte {
	b, at := openLen(b, num)
	if token {
		b = s.appendTokenText(b)
	} else {
		b = s.appendIDText(b)
	}
	if len(b) == at+1 {
		return b[:at-protowire.SizeTag(num)]
	}
	return closeLen(b, at)
}

// appendStepMsg appends one Step message of an outcome; p is its profile,
// side its gateway's.
func appendStepMsg(b []byte, s *step, p *profile, side hinscorev1.Side) []byte {
	b, at := openLen(b, fSteps)
	b = appendStepText(b, fStepEventID, s, false)
	b = appendStrField(b, fStepMessageID, s.messageID)
	b = appendStrField(b, fStepMessageType, p.messageType)
	b = appendIntField(b, fStepRole, int64(s.role))
	b = appendIntField(b, fStepStatus, int64(s.status))
	b = appendIntField(b, fStepEventTimeMs, s.t)
	b = appendUintField(b, fStepRawSeq, s.rawSeq)
	b = appendIntField(b, fStepSide, int64(side))
	return closeLen(b, at)
}

// appendReasons appends the encoded reason codes of a step (see compact.go)
// as the repeated reason_codes field.
func appendReasons(b []byte, reasons string) []byte {
	n, off := uvarintAt(reasons, 0)
	for ; n > 0; n-- {
		var v string
		v, off = strAt(reasons, off)
		b = appendTag(b, fReasonCodes, protowire.BytesType)
		b = appendStr(b, v)
	}
	return b
}
