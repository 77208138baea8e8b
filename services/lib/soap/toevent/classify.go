package toevent

import (
	"strings"

	"github.com/hinscore/hinscore/proto/classtable"
	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/exception"
	"github.com/hinscore/hinscore/services/lib/soap"
)

// verdict is what the table made of an answer: the first row with a
// status decides, every code looked up is a reason ("source|code").
type verdict struct {
	table     *classtable.Table
	role      hinscorev1.Role
	status    hinscorev1.Status
	exception string
	decided   bool
	reasons   []string
}

func (v *verdict) consider(source, code string) {
	if code == "" {
		return
	}
	v.reasons = append(v.reasons, source+"|"+code)
	r, ok := v.table.Lookup(source, code)
	if !ok || v.decided || r.Status == hinscorev1.Status_STATUS_UNSPECIFIED {
		return
	}
	v.decided, v.status, v.exception = true, r.Status, r.Exception
	if source == SourceAcceptAck {
		v.role = r.Role
	}
}

// classify applies the table in the order classification.csv states.
func classify(m *soap.Message, table *classtable.Table) verdict {
	v := verdict{table: table, role: hinscorev1.Role_ROLE_RESPONSE}
	switch {
	case m.Fault != nil:
		for i := len(m.Fault.Subcodes) - 1; i >= 0; i-- {
			v.consider(SourceFault, m.Fault.Subcodes[i])
		}
		v.consider(SourceFault, m.Fault.Code)
	case m.Registry != nil:
		status := lastPart(m.Registry.Status)
		if status == "Success" && recordCount(m) == 0 {
			v.consider(SourceEmpty, m.Body)
		}
		if status != "Failure" {
			v.consider(SourceStatus, status)
		}
		for _, e := range m.Registry.Errors {
			if e.Error() {
				v.consider(SourceError, e.Code)
			} else if e.Code != "" {
				v.reasons = append(v.reasons, "warning|"+e.Code)
			}
		}
		if status == "Failure" {
			v.consider(SourceStatus, status)
		}
	case m.Body == soap.BodyAcknowledgement:
		v.consider(SourceAcceptAck, m.HL7.AckCode)
	case m.HL7 != nil:
		for _, d := range m.HL7.AckDetails {
			v.consider(SourceAckDetail, d)
		}
		for _, is := range m.HL7.Issues {
			v.consider(SourceIssue, is)
		}
		v.consider(SourceAck, m.HL7.AckCode)
		v.consider(SourceXCPD, m.HL7.ResponseCode)
	}
	return v
}

// lastPart is the last part of a URN (…:ResponseStatusType:Success → Success).
func lastPart(urn string) string {
	if i := strings.LastIndexByte(urn, ':'); i >= 0 {
		return urn[i+1:]
	}
	return urn
}

// ackCode is the code an answer was sent with: the ebRS status, the HL7 v3
// acknowledgement, the fault code.
func ackCode(m *soap.Message) string {
	switch {
	case m.Fault != nil:
		return m.Fault.Code
	case m.Registry != nil:
		return lastPart(m.Registry.Status)
	case m.HL7 != nil:
		return m.HL7.AckCode
	}
	return ""
}

// recordCount is what an answer returned: objects of a query, documents
// of a retrieve, patients matched.
func recordCount(m *soap.Message) uint32 {
	switch m.Body {
	case soap.BodyQueryResponse:
		return uint32(m.Registry.Objects)
	case soap.BodyRetrieveResponse:
		return uint32(len(m.Documents))
	case soap.BodyDiscoveryResponse:
		return uint32(m.HL7.Matches)
	}
	return 0
}

// reasonText is what an answer says in words: a fault's reason, the
// errors' contexts, the acknowledgement's details.
func reasonText(m *soap.Message) string {
	var parts []string
	switch {
	case m.Fault != nil:
		parts = append(parts, m.Fault.Reason)
	case m.Registry != nil:
		for _, e := range m.Registry.Errors {
			parts = append(parts, e.Context)
		}
	case m.HL7 != nil:
		parts = m.HL7.AckText
	}
	var b strings.Builder
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(p)
		}
	}
	return b.String()
}

// refusedUnder is the status of an answer whose words cite an exception
// of 45 CFR 171: an error that says it withholds under an exception
// ("denied under 45 CFR 171.202", "unavailable under 171.205") is a
// refusal under it (DOMAIN.md: refused_exception "when the answer says
// so"). Answers that say what they found, and redirects, keep theirs.
func refusedUnder(status hinscorev1.Status, code string) hinscorev1.Status {
	if !exception.IsException(code) {
		return status
	}
	switch status {
	case hinscorev1.Status_STATUS_UNSPECIFIED, hinscorev1.Status_STATUS_ERROR_PERMANENT, hinscorev1.Status_STATUS_ERROR_TRANSIENT:
		return hinscorev1.Status_STATUS_REFUSED
	}
	return status
}

// exceptionFromText is the exception or redirect a text cites ("denied
// under 45 CFR 171.202", "use the patient portal"), or "".
func exceptionFromText(s string) string {
	if c := exception.FromText(s); c != "" {
		return c
	}
	return exception.RedirectFromText(s)
}
