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
	ack, status, hits := "AA", "OK", "1"
	var errSeg string
	switch a.class {
	case NotFound:
		status, hits = "NF", "0"
	case RefusedException:
		ack, status, hits = "AR", "AR", "0"
		text := fmt.Sprintf("Denied under 45 CFR %s %s", a.code, exceptionNames[a.code])
		if a.textOnly {
			errSeg = "ERR||||E||||" + text
		} else {
			errSeg = "ERR||||E|" + a.code + "^" + exceptionNames[a.code] + "^urn:hinscore:ib-exception|||" + text
		}
	case RefusedUnjustified:
		ack, status, hits = "AR", "AR", "0"
		errSeg = "ERR||||E||||" + unjustifiedTexts[a.variant]
	case Redirected:
		ack, status, hits = "AR", "AR", "0"
		text := "Use the patient portal"
		if a.code == "redirect-fax" {
			text = "Send the request by fax"
		}
		errSeg = "ERR||||E|" + a.code + "^" + text + "^urn:hinscore:ib-exception|||" + text
	case ErrorTransient, ErrorPermanent:
		ack, status, hits = "AE", "AE", "0"
		errSeg = "ERR|||" + a.errCode.code + "^" + a.errCode.text + "^HL70357|E||||" + a.errCode.text
	}
	segs := []string{
		msh(q.responder, q.requester, at, "RSP^K22^RSP_K21", q.controlID+"R"),
		"MSA|" + ack + "|" + q.controlID,
	}
	if errSeg != "" {
		segs = append(segs, errSeg)
	}
	segs = append(segs, "QAK|"+q.queryTag+"|"+status+"|Q22^Find Candidates^HL7|"+hits+"|"+hits+"|0", q.qpd())
	if hits == "1" {
		segs = append(segs, "PID|1||"+q.mrn+"^^^"+q.authority()+"^MR||SIMULATED^PATIENT||"+a.dob+"|"+a.sex)
	}
	return segments(segs...)
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
