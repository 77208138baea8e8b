package simulator

import (
	"strings"
	"time"
)

const (
	nsSOAP = "http://www.w3.org/2003/05/soap-envelope"
	nsWSA  = "http://www.w3.org/2005/08/addressing"
	nsWSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU  = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	nsSAML = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsXSI  = "http://www.w3.org/2001/XMLSchema-instance"
)

// soapHeader is what one envelope's header carries.
type soapHeader struct {
	action, messageID, relatesTo, to, replyTo string
	at                                        time.Time
	assertion                                 string
}

// envelope wraps a body in a SOAP 1.2 envelope with WS-Addressing and a
// WS-Security header (a timestamp, and on requests the XUA assertion).
func envelope(h soapHeader, body string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<soap:Envelope xmlns:soap="` + nsSOAP + `" xmlns:wsa="` + nsWSA + `"><soap:Header>`)
	b.WriteString(`<wsa:Action soap:mustUnderstand="1">` + h.action + `</wsa:Action>`)
	b.WriteString(`<wsa:MessageID>` + h.messageID + `</wsa:MessageID>`)
	if h.relatesTo != "" {
		b.WriteString(`<wsa:RelatesTo>` + h.relatesTo + `</wsa:RelatesTo>`)
	}
	if h.replyTo != "" {
		b.WriteString(`<wsa:ReplyTo><wsa:Address>` + xmlEsc(h.replyTo) + `</wsa:Address></wsa:ReplyTo>`)
	}
	if h.to != "" {
		b.WriteString(`<wsa:To soap:mustUnderstand="1">` + xmlEsc(h.to) + `</wsa:To>`)
	}
	b.WriteString(`<wsse:Security xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `" soap:mustUnderstand="1">`)
	b.WriteString(`<wsu:Timestamp wsu:Id="TS-` + h.messageID[len(h.messageID)-12:] + `"><wsu:Created>` + h.at.UTC().Format(auditTime) +
		`</wsu:Created><wsu:Expires>` + h.at.Add(5*time.Minute).UTC().Format(auditTime) + `</wsu:Expires></wsu:Timestamp>`)
	b.WriteString(h.assertion)
	b.WriteString(`</wsse:Security></soap:Header><soap:Body>`)
	b.WriteString(body)
	b.WriteString(`</soap:Body></soap:Envelope>`)
	return []byte(b.String())
}

func samlAttribute(name, value string) string {
	return `<saml2:Attribute Name="` + name + `"><saml2:AttributeValue>` + value + `</saml2:AttributeValue></saml2:Attribute>`
}

// xuaAssertion is the XUA SAML 2.0 assertion of a request: the human
// requestor (when there is one), the requesting organisation and
// community, and the purpose of use.
func xuaAssertion(t *xcaTx, id string, at time.Time) string {
	j := t.j
	subject := j.requester.ID
	if j.human != nil {
		subject = j.human.user + "@" + j.requester.domain()
	}
	var b strings.Builder
	b.WriteString(`<saml2:Assertion xmlns:saml2="` + nsSAML + `" xmlns:xsi="` + nsXSI + `" ID="_` + id + `" IssueInstant="` +
		at.UTC().Format(auditTime) + `" Version="2.0">`)
	b.WriteString(`<saml2:Issuer Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName">CN=` + j.requester.Host + `</saml2:Issuer>`)
	b.WriteString(`<saml2:Subject><saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">` + xmlEsc(subject) +
		`</saml2:NameID></saml2:Subject><saml2:AttributeStatement>`)
	if h := j.human; h != nil {
		b.WriteString(samlAttribute("urn:oasis:names:tc:xspa:1.0:subject:subject-id", xmlEsc(h.name)))
		b.WriteString(samlAttribute("urn:oasis:names:tc:xacml:2.0:subject:role", `<hl7:Role xmlns:hl7="urn:hl7-org:v3" xsi:type="hl7:CE" code="`+
			h.role+`" codeSystem="2.16.840.1.113883.6.96" codeSystemName="SNOMED_CT" displayName="`+h.roleName+`"/>`))
	}
	b.WriteString(samlAttribute("urn:oasis:names:tc:xspa:1.0:subject:organization", xmlEsc(j.requester.Name)))
	b.WriteString(samlAttribute("urn:oasis:names:tc:xspa:1.0:subject:organization-id", j.requester.Community))
	b.WriteString(samlAttribute("urn:nhin:names:saml:homeCommunityId", j.requester.Community))
	if p := j.purpose; p.Code != "" {
		b.WriteString(samlAttribute("urn:oasis:names:tc:xspa:1.0:subject:purposeofuse", `<hl7:PurposeOfUse xmlns:hl7="urn:hl7-org:v3" xsi:type="hl7:CE" code="`+
			p.Code+`" codeSystem="`+strings.TrimPrefix(p.System, "urn:oid:")+`" displayName="`+xmlEsc(p.Display)+`"/>`))
	}
	b.WriteString(`</saml2:AttributeStatement></saml2:Assertion>`)
	return b.String()
}

// soapFault is a SOAP 1.2 Fault refusing a request, its reason in text.
func soapFault(reason string) string {
	return `<soap:Fault><soap:Code><soap:Value>soap:Sender</soap:Value></soap:Code><soap:Reason><soap:Text xml:lang="en">` +
		xmlEsc(reason) + `</soap:Text></soap:Reason></soap:Fault>`
}

// FaultCode is the truth's error code of a refusal sent as a SOAP Fault.
const FaultCode = "soap:Sender"

// soapCopies are the SOAP messages of one transaction, each copied by both
// gateways: the request, then the answer (or, in deferred mode, the
// immediate acknowledgement and minutes later the deferred response).
func (g *xcaGenerator) soapCopies(t *xcaTx) []XCAMessage {
	r, j := &t.row, t.j
	tx := strings.ToLower(r.Transaction)
	reqAction, respAction := ActionXCAQuery, ActionXCAQueryResponse
	switch r.Kind {
	case KindPatientDiscovery:
		reqAction, respAction = ActionXCPD, ActionXCPDResponse
		if r.Deferred {
			reqAction = ActionXCPDDeferred
		}
	case KindDocumentRetrieve:
		reqAction, respAction = ActionXCARetrieve, ActionXCARetrieveResp
	}
	replyTo := "http://www.w3.org/2005/08/addressing/anonymous"
	if r.Deferred {
		replyTo = j.requester.Endpoint("xcpd-deferred")
	}
	req := envelope(soapHeader{
		action: reqAction, messageID: t.messageID, to: j.responder.Endpoint(tx), replyTo: replyTo, at: r.RequestedAt,
		assertion: xuaAssertion(t, g.uuid(), r.RequestedAt),
	}, string(t.query))
	out := t.copies(r.RequestedAt, "request", req)
	if r.Outcome == Unanswered {
		return out
	}
	answered := r.AnsweredAt
	if r.Deferred {
		ackAt := r.RequestedAt.Add(time.Duration(80+g.rng.IntN(300)) * time.Millisecond)
		ack := envelope(soapHeader{action: ActionXCPDAck, messageID: "urn:uuid:" + g.uuid(), relatesTo: t.messageID, at: ackAt},
			deferredAck(t, ackAt, g.uuid(), t.hl7ID))
		out = append(out, t.copies(ackAt, "ack", ack)...)
		respID, respHL7ID := "urn:uuid:"+g.uuid(), g.uuid()
		resp := envelope(soapHeader{
			action: ActionXCPDDeferredReply, messageID: respID, relatesTo: t.messageID,
			to: replyTo, at: answered,
		}, pdqResponse(t, answered, respHL7ID, t.hl7ID))
		out = append(out, t.copies(answered, "deferred-response", resp)...)
		// The initiating gateway accepts the deferred response with the same
		// acknowledgement, relating to the response, not to the request.
		ack2At := answered.Add(120 * time.Millisecond)
		ack2 := envelope(soapHeader{action: ActionXCPDAck, messageID: "urn:uuid:" + g.uuid(), relatesTo: respID, at: ack2At},
			responseAck(t, ack2At, g.uuid(), respHL7ID))
		return append(out, t.copies(ack2At, "deferred-response-ack", ack2)...)
	}
	var body string
	switch {
	case (r.Outcome == RefusedException || r.Outcome == RefusedUnjustified) && g.rng.Float64() < 0.3:
		r.ErrorCode = FaultCode
		body = soapFault(t.detail)
	case r.Kind == KindPatientDiscovery:
		body = pdqResponse(t, answered, g.uuid(), t.hl7ID)
	case r.Kind == KindDocumentQuery:
		body = adhocResponse(t)
	default:
		body = retrieveResponse(t)
	}
	resp := envelope(soapHeader{action: respAction, messageID: "urn:uuid:" + g.uuid(), relatesTo: t.messageID, at: answered}, body)
	return append(out, t.copies(answered, "response", resp)...)
}

// copies is one SOAP message as both gateways mirror it.
func (t *xcaTx) copies(at time.Time, what string, raw []byte) []XCAMessage {
	out := make([]XCAMessage, 0, 2)
	for _, side := range []string{SideInitiating, SideResponding} {
		gw := t.j.requester
		if side == SideResponding {
			gw = t.j.responder
		}
		out = append(out, XCAMessage{
			Time: at, DeliverAt: at, Network: t.j.network.Name, Gateway: gw.ID, Side: side,
			TransactionID: t.row.TransactionID, What: what, Raw: raw,
		})
	}
	return out
}
