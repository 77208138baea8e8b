package simulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// HL7 v2 building blocks. Every message uses the standard delimiters
// `|^~\&` and ends each segment with CR.

// hl7Time formats an event time as an HL7 DTM with milliseconds and an
// explicit UTC offset, so that latencies survive the round trip exactly.
func hl7Time(t time.Time) string {
	return t.UTC().Format("20060102150405.000") + "+0000"
}

type query struct {
	network   NetworkProfile
	requester Org
	responder Org
	controlID string
	queryTag  string
	mrn       string
	at        time.Time
}

func (q query) authority() string { return q.network.Code + "_MPI" }

func msh(from, to Org, at time.Time, msgType, controlID string) string {
	return "MSH|^~\\&|" + from.App + "|" + from.Facility + "|" + to.App + "|" + to.Facility + "|" +
		hl7Time(at) + "||" + msgType + "|" + controlID + "|P|2.5.1"
}

func (q query) qpd() string {
	return "QPD|IHE PDQ Query|" + q.queryTag + "|@PID.3.1^" + q.mrn + "~@PID.3.4.1^" + q.authority()
}

func (q query) request() []byte {
	return segments(
		msh(q.requester, q.responder, q.at, "QBP^Q22^QBP_Q21", q.controlID),
		q.qpd(),
		"RCP|I|10^RD",
	)
}

// answer says how a responder answers one request.
type answer struct {
	class    string
	code     string // exception or redirect code
	textOnly bool   // cite the exception in ERR-8 text only
	variant  int    // which refused_unjustified wording
	errCode  errCode
	dob, sex string
}

type errCode struct {
	code, text string
}

// Table 0357 codes: 206/207 are the ones the mapping treats as transient.
var (
	transientCodes = [...]errCode{{"207", "Application internal error"}, {"206", "Application record locked"}}
	permanentCodes = [...]errCode{{"200", "Unsupported message type"}, {"204", "Unknown key identifier"}, {"101", "Required field missing"}}
)

// Refusals that cite nothing a scorecard can recognise as an exception.
var unjustifiedTexts = [...]string{
	"Request denied by policy",
	"Not authorized to release records to this requester",
	"Records not shared with outside organizations",
}

func (q query) answer(a answer, at time.Time) []byte {
	hits := 0
	if a.class == Fulfilled || a.class == FulfilledLate {
		hits = 1
	}
	return q.answerRecords(a, at, hits)
}

// answerRecords is the RSP^K22 of a: QAK-4 the hits found, QAK-5 those
// returned (records; a partial answer returns one of three hits and says
// TM), one PID per record returned.
func (q query) answerRecords(a answer, at time.Time, records int) []byte {
	return q.rsp(a, at, records, pdqQuery)
}

// queryShape is what differs between the QBP queries: the answer's type,
// the query's name (QAK-3) and parameters (QPD).
type queryShape struct {
	answerType, name string
	qpd              func(query) string
}

var (
	pdqQuery = queryShape{"RSP^K22^RSP_K21", "Q22^Find Candidates^HL7", query.qpd}
	pixQuery = queryShape{"RSP^K23^RSP_K23", "Q23^Get Corresponding Identifiers^HL7", query.qpdPIX}
)

// rsp is the answer of a QBP of shape sh.
func (q query) rsp(a answer, at time.Time, records int, sh queryShape) []byte {
	ack, status, errSeg := a.parts()
	segs := []string{
		msh(q.responder, q.requester, at, sh.answerType, q.controlID+"R"),
		"MSA|" + ack + "|" + q.controlID,
	}
	if errSeg != "" {
		segs = append(segs, errSeg)
	}
	segs = append(segs, q.qakOf(status, records, a.class, sh.name), sh.qpd(q))
	return segments(append(segs, q.pids(a, records)...)...)
}

// qpdPIX asks a PIX manager for the patient's identifiers: QPD-3 a CX.
func (q query) qpdPIX() string {
	return "QPD|IHE PIX Query|" + q.queryTag + "|" + q.mrn + "^^^" + q.authority() + "^MR"
}

// qak is a PDQ query's acknowledgement.
func (q query) qak(status string, records int, class string) string {
	return q.qakOf(status, records, class, pdqQuery.name)
}

// qakOf is the query acknowledgement: QAK-4 hits, QAK-5 this payload,
// QAK-6 remaining (a partial answer: two more hits than it returns).
func (q query) qakOf(status string, records int, class, name string) string {
	hits := records
	if class == Partial {
		hits = records + 2
	}
	return "QAK|" + q.queryTag + "|" + status + "|" + name + "|" + strconv.Itoa(hits) + "|" +
		strconv.Itoa(records) + "|" + strconv.Itoa(hits-records)
}

// pids are the records an answer returns, the patient asked for.
func (q query) pids(a answer, records int) []string {
	out := make([]string, records)
	for i := range out {
		out[i] = "PID|" + strconv.Itoa(i+1) + "||" + q.mrn + "^^^" + q.authority() + "^MR||SIMULATED^PATIENT||" + a.dob + "|" + a.sex
	}
	return out
}

// parts are an answer's MSA-1, QAK-2 and ERR segment ("" when none).
func (a answer) parts() (ack, status, errSeg string) {
	ack, status = "AA", "OK"
	switch a.class {
	case NotFound:
		status = "NF"
	case Partial:
		status = "TM"
	case RefusedException:
		ack, status = "AR", "AR"
		text := fmt.Sprintf("Denied under 45 CFR %s %s", a.code, exceptionNames[a.code])
		if a.textOnly {
			errSeg = "ERR||||E||||" + text
		} else {
			errSeg = "ERR||||E|" + a.code + "^" + exceptionNames[a.code] + "^urn:hinscore:ib-exception|||" + text
		}
	case RefusedUnjustified:
		ack, status = "AR", "AR"
		errSeg = "ERR||||E||||" + unjustifiedTexts[a.variant]
	case Redirected:
		ack, status = "AR", "AR"
		text := "Use the patient portal"
		if a.code == "redirect-fax" {
			text = "Send the request by fax"
		}
		errSeg = "ERR||||E|" + a.code + "^" + text + "^urn:hinscore:ib-exception|||" + text
	case ErrorTransient, ErrorPermanent:
		ack, status = "AE", "AE"
		errSeg = "ERR|||" + a.errCode.code + "^" + a.errCode.text + "^HL70357|E||||" + a.errCode.text
	}
	return ack, status, errSeg
}

func notification(p NetworkProfile, from Org, controlID, mrn string, at time.Time) []byte {
	to := Org{App: "HINSCORE", Facility: p.Code + "_HIE"}
	return segments(
		msh(from, to, at, "ADT^A04^ADT_A01", controlID),
		"EVN|A04|"+hl7Time(at),
		"PID|1||"+mrn+"^^^"+p.Code+"_MPI^MR||SIMULATED^PATIENT",
		"PV1|1|O",
	)
}

// malformedKinds is the number of distinct broken frames malformedFrame makes.
const malformedKinds = 4

// malformedFrame returns a frame no HL7 parser may accept: not HL7 at all,
// an MSH whose encoding characters repeat one another, a segment whose
// name is no segment name, or a message that does not start with MSH. (An
// MSH without its control id or type is no longer among them: hinscore
// records such a message, flagged, under the observer rule.)
func malformedFrame(p NetworkProfile, kind, n int, at time.Time) []byte {
	org := p.Requesters[0]
	to := p.Responders[0]
	switch kind {
	case 0:
		return []byte("this is not an HL7 message " + strconv.Itoa(n))
	case 1:
		bad := strings.Replace(msh(org, to, at, "QBP^Q22^QBP_Q21", p.Code+"BAD"+strconv.Itoa(n)), "^~\\&", "^^\\&", 1)
		return segments(bad, "QPD|IHE PDQ Query|"+p.Code+"BADQ"+strconv.Itoa(n))
	case 2:
		return segments(msh(org, to, at, "QBP^Q22^QBP_Q21", p.Code+"BAD"+strconv.Itoa(n)), "Q!D|IHE PDQ Query|"+p.Code+"BADQ"+strconv.Itoa(n))
	default:
		return segments("PID|1||0000000^^^"+p.Code+"_MPI^MR", "MSH|^~\\&|"+org.App+"|"+org.Facility)
	}
}

func segments(segs ...string) []byte {
	var b strings.Builder
	for _, s := range segs {
		b.WriteString(s)
		b.WriteByte('\r')
	}
	return []byte(b.String())
}

// cited is the code an answer cites: its exception or redirect code.
func (a answer) cited() string {
	if a.class == RefusedException || a.class == Redirected {
		return a.code
	}
	return ""
}
