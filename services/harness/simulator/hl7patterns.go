package simulator

import (
	"strconv"
	"time"
)

// The HL7 v2 patterns beyond QBP^Q22 (DOMAIN.md's HL7 v2 table): legacy
// queries, referrals with commit acknowledgements, orders and their
// results and cancels, continued queries.

// hl7Messages are an exchange's request, interim answer, and final answer
// or cancel, each at its time.
func (x *exchange) hl7Messages() []Message {
	q := x.q
	msgs := []Message{{Time: q.at, DeliverAt: q.at, Kind: KindRequest, ControlID: q.controlID, Raw: x.hl7Request()}}
	if x.ack >= 0 {
		at := x.ackAt()
		msgs = append(msgs, Message{Time: at, DeliverAt: at, Kind: KindAnswer, ControlID: q.controlID + "A", Raw: x.hl7Interim(at)})
	}
	if x.latency < 0 {
		return msgs
	}
	at := x.finalAt()
	if x.class == Cancelled {
		return append(msgs, Message{Time: at, DeliverAt: at, Kind: KindCancel, ControlID: q.controlID + "C",
			Raw: q.order(x.spec.name, "CA", q.controlID+"C", at)})
	}
	return append(msgs, Message{Time: at, DeliverAt: at, Kind: KindAnswer, ControlID: q.controlID + "R", Raw: x.hl7Final(at)})
}

func (x *exchange) hl7Request() []byte {
	q := x.q
	switch x.spec.name {
	case PatternQRYA19:
		return segments(msh(q.requester, q.responder, q.at, "QRY^A19^QRY_A19", q.controlID), q.qrd("DEM"))
	case PatternQRYT12:
		return segments(msh(q.requester, q.responder, q.at, "QRY^T12^QRY_Q01", q.controlID), q.qrd("DOC"))
	case PatternREF:
		return segments(mshEnhanced(q.requester, q.responder, q.at, "REF^I12^REF_I12", q.controlID),
			"RF1|P^Pending|R^Routine|MED^Medical|RI^Records information||"+q.referralID(), q.pid())
	case PatternORM, PatternOML:
		return q.order(x.spec.name, "NW", q.controlID, q.at)
	case PatternQ23:
		return segments(msh(q.requester, q.responder, q.at, "QBP^Q23^QBP_Q21", q.controlID), q.qpdPIX(), "RCP|I")
	}
	return q.request()
}

// hl7Interim is a referral's commit acknowledgement (CA) or an order's
// acceptance (ORR^O02 / ORL^O22, AA, ORC-1 OK).
func (x *exchange) hl7Interim(at time.Time) []byte {
	q := x.q
	id := q.controlID + "A"
	if x.spec.name == PatternREF {
		return segments(msh(q.responder, q.requester, at, "ACK^I12^ACK", id), "MSA|CA|"+q.controlID)
	}
	return segments(msh(q.responder, q.requester, at, orderAnswerType(x.spec.name), id), "MSA|AA|"+q.controlID, "ORC|OK|"+q.placer())
}

// hl7Final is the deciding answer.
func (x *exchange) hl7Final(at time.Time) []byte {
	q, a := x.q, x.a
	ack, status, errSeg := a.parts()
	id := q.controlID + "R"
	var segs []string
	switch x.spec.name {
	case PatternQRYA19, PatternQRYT12:
		typ, focus := "ADR^A19^ADR_A19", "DEM"
		if x.spec.name == PatternQRYT12 {
			typ, focus = "DOC^T12^DOC_T12", "DOC"
		}
		segs = []string{msh(q.responder, q.requester, at, typ, id), "MSA|" + ack + "|" + q.controlID}
		segs = appendNonEmpty(segs, errSeg)
		segs = append(segs, q.qak(status, x.records, x.class), q.qrd(focus))
		if x.spec.name == PatternQRYT12 {
			return segments(append(segs, q.documents(at, x.records)...)...)
		}
		return segments(append(segs, q.pids(a, x.records)...)...)
	case PatternREF:
		segs = []string{msh(q.responder, q.requester, at, "RRI^I12^RRI_I12", id), "MSA|" + ack + "|" + q.controlID}
		segs = appendNonEmpty(segs, errSeg)
		rf1 := "A^Accepted"
		if ack != "AA" {
			rf1 = "R^Rejected"
		}
		return segments(append(segs, "RF1|"+rf1+"|R^Routine|MED^Medical|RI^Records information||"+q.referralID(), q.pid())...)
	case PatternORM, PatternOML:
		if ack == "AA" {
			return q.result(at, x.records)
		}
		segs = []string{msh(q.responder, q.requester, at, orderAnswerType(x.spec.name), id), "MSA|" + ack + "|" + q.controlID}
		segs = appendNonEmpty(segs, errSeg)
		return segments(append(segs, "ORC|UA|"+q.placer())...)
	}
	if x.spec.name == PatternQ23 {
		return q.rsp(a, at, x.records, pixQuery)
	}
	return q.answerRecords(a, at, x.records)
}

func appendNonEmpty(segs []string, seg string) []string {
	if seg == "" {
		return segs
	}
	return append(segs, seg)
}

// mshEnhanced is an MSH asking for enhanced-mode acknowledgements: a
// commit ACK always (MSH-15 AL) and an application answer always (MSH-16 AL).
func mshEnhanced(from, to Org, at time.Time, msgType, controlID string) string {
	return msh(from, to, at, msgType, controlID) + "|||AL|AL"
}

func orderAnswerType(pattern string) string {
	if pattern == PatternOML {
		return "ORL^O22^ORL_O22"
	}
	return "ORR^O02^ORR_O02"
}

func (q query) placer() string     { return q.controlID + "PL^" + q.requester.Facility }
func (q query) referralID() string { return q.controlID + "RF" }
func (q query) pid() string {
	return "PID|1||" + q.mrn + "^^^" + q.authority() + "^MR||SIMULATED^PATIENT"
}

// qrd is a legacy query's definition: QRD-4 the query id, QRD-8 the
// patient (an XCN: id, and the assigning authority in component 9),
// QRD-9 what is asked for.
func (q query) qrd(what string) string {
	return "QRD|" + hl7Time(q.at) + "|R|I|" + q.queryTag + "|||10^RD|" + q.mrn + "^^^^^^^^" + q.authority() + "|" + what
}

// documents are a DOC^T12's records: one document (TXA) per record.
func (q query) documents(at time.Time, records int) []string {
	out := []string{"EVN|T12|" + hl7Time(at), q.pid(), "PV1|1|O"}
	for i := range records {
		n := strconv.Itoa(i + 1)
		out = append(out, "TXA|"+n+"|CN^Consultation|TX|"+hl7Time(at)+"||||||||"+q.controlID+"DOC"+n+"|||||AU")
	}
	return out
}

// order is an ORM^O01 or OML^O21 from the requester; control "NW" a new
// order, "CA" its cancel.
func (q query) order(pattern, control, controlID string, at time.Time) []byte {
	typ := "ORM^O01^ORM_O01"
	if pattern == PatternOML {
		typ = "OML^O21^OML_O21"
	}
	return segments(msh(q.requester, q.responder, at, typ, controlID), q.pid(),
		"ORC|"+control+"|"+q.placer()+"||||||||"+hl7Time(at),
		"OBR|1|"+q.placer()+"||RECREQ^Medical records request^L")
}

// result is the ORU^R01 that fulfils an order: its placer number and one
// OBX per record.
func (q query) result(at time.Time, records int) []byte {
	segs := []string{
		msh(q.responder, q.requester, at, "ORU^R01^ORU_R01", q.controlID+"R"), q.pid(),
		"ORC|RE|" + q.placer() + "|" + q.controlID + "FL",
		"OBR|1|" + q.placer() + "|" + q.controlID + "FL|RECREQ^Medical records request^L|||" + hl7Time(at),
	}
	for i := range records {
		n := strconv.Itoa(i + 1)
		segs = append(segs, "OBX|"+n+"|TX|RECORD^Record^L|"+n+"|Record "+n+" released||||||F")
	}
	return segments(segs...)
}

// continuedAnswer is the first answer of a continued query: records of
// hits returned, the rest behind the continuation pointer (DSC-1, DSC-2 I
// incremental).
func (q query) continuedAnswer(a answer, at time.Time, pointer string, hits int) []byte {
	records := 2
	return segments(append(append([]string{
		msh(q.responder, q.requester, at, "RSP^K22^RSP_K21", q.controlID+"R"),
		"MSA|AA|" + q.controlID,
		"QAK|" + q.queryTag + "|OK|Q22^Find Candidates^HL7|" + strconv.Itoa(hits) + "|" + strconv.Itoa(records) + "|" + strconv.Itoa(hits-records),
		q.qpd(),
	}, q.pids(a, records)...), "DSC|"+pointer+"|I")...)
}

// continuation is the requester's query for the rest: its own control id,
// the same query (QPD-2 tag) and the pointer in DSC-1.
func (q query) continuation(pointer string) []byte {
	return segments(msh(q.requester, q.responder, q.at, "QBP^Q22^QBP_Q21", q.controlID), q.qpd(), "RCP|I|10^RD", "DSC|"+pointer+"|I")
}
