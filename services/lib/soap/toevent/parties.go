package toevent

import (
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
	"github.com/hinscore/hinscore/services/lib/domain/purpose"
	"github.com/hinscore/hinscore/services/lib/soap"
)

// purposeOf reads the XUA purpose of use: a coded element (its system a
// URI, or an OID, written urn:oid: as the other formats' mappings write
// it), or a bare code, which only TEFCA's T- codes
// name unambiguously. A request without one has none (""), as the other
// formats' mappings say it; a code the table does not know is "unknown".
func purposeOf(c soap.Code) (name, code string) {
	switch {
	case c.Code == "":
		return "", ""
	case c.System != "":
		p, code := purpose.Pick(purpose.Coding{System: c.System, Code: c.Code})
		return string(p), code
	case strings.HasPrefix(c.Code, "T-"):
		return string(purpose.FromCoding(purpose.SystemTEFCA, c.Code)), c.Code
	}
	return string(purpose.Unknown), c.Code
}

// urnOID writes a bare OID as urn:oid:…, as XCA writes home community ids
// (XCPD's device and organisation ids, and assertions' code systems, are
// bare OIDs).
func urnOID(id string) string {
	id = strings.TrimSpace(id)
	if id == "" || strings.HasPrefix(id, "urn:") {
		return id
	}
	if id[0] >= '0' && id[0] <= '9' {
		return "urn:oid:" + id
	}
	return id
}

func first(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// parties fills the requester's and the responder's home communities and
// organisations. A request names both (the assertion or the sender for
// the requester; the query's home, the documents' or the receiver for the
// responder); an answer names the responder (the objects' home, the
// documents', an error's location, the sender, the custodian) and, in
// XCPD, the requester (the receiver). The organisation is the assertion's
// organization-id where there is one, else the community; the assertion's
// person (subject-id) is never an organisation.
func parties(ev *hinscorev1.ExchangeEvent, m *soap.Message) {
	var req, resp string
	var docHome string
	if len(m.Documents) > 0 {
		docHome = m.Documents[0].Home
	}
	switch {
	case m.HL7 != nil && isRequest(m.Body):
		req = first(urnOID(m.HL7.Sender.Organization), m.Assertion.HomeCommunityID)
		resp = urnOID(m.HL7.Receiver.Organization)
	case m.HL7 != nil:
		req = urnOID(m.HL7.Receiver.Organization)
		resp = urnOID(m.HL7.Sender.Organization)
		if resp == "" && len(m.HL7.Custodians) > 0 {
			resp = urnOID(m.HL7.Custodians[0])
		}
	case isRequest(m.Body):
		req = m.Assertion.HomeCommunityID
		if m.Query != nil {
			resp = m.Query.Home
		}
		resp = first(resp, docHome)
	default:
		req = m.Assertion.HomeCommunityID
		if r := m.Registry; r != nil && len(r.Homes) > 0 {
			resp = r.Homes[0]
		}
		resp = first(resp, docHome, errorLocation(m))
	}
	ev.RequesterCommunity, ev.ResponderCommunity = req, resp
	ev.RequesterOrg = first(m.Assertion.OrganizationID, req)
	ev.ResponderOrg = resp
}

// errorLocation is the community a RegistryError names as where it arose.
func errorLocation(m *soap.Message) string {
	if m.Registry == nil {
		return ""
	}
	for _, e := range m.Registry.Errors {
		if strings.HasPrefix(e.Location, "urn:oid:") {
			return e.Location
		}
	}
	return ""
}

// patient tokenizes the patient the message names, by the rule HL7 v2 and
// FHIR share (lib/domain/patient): the XCA query's or entries' CX, the
// XCPD query's livingSubjectId or the first matched patient (an II: its
// root is the authority's OID).
func (mp Mapper) patient(ev *hinscorev1.ExchangeEvent, m *soap.Message) {
	var id, authority string
	var ok bool
	switch {
	case m.Query != nil:
		id, authority, ok = patient.SplitCX(m.Query.PatientID)
	case m.Registry != nil:
		id, authority, ok = patient.SplitCX(m.Registry.PatientID)
	case m.HL7 != nil && len(m.HL7.Patients) > 0:
		p := m.HL7.Patients[0]
		id, authority = p.Extension, patient.Authority("", p.Root, "ISO")
		ok = id != "" && p.Root != ""
	}
	if !ok {
		return
	}
	ev.PatientToken, ev.PatientKeyId = mp.Patients.Token(authority, id), mp.PatientKeyID
}
