package simulator

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// ATNA audit records as gateways write them: DICOM PS3.15 A.5
// AuditMessage XML (or the older RFC 3881 shape), inside a syslog message.
// The templates are the simulator's own, written from the IHE ITI TF-2
// audit tables of ITI-55, ITI-38 and ITI-39; no mapping code is shared.

const auditTime = "2006-01-02T15:04:05.000Z"

// xmlWriter writes elements with an optional namespace prefix, indented or
// on one line.
type xmlWriter struct {
	b      strings.Builder
	prefix string
	pretty bool
	depth  int
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

func xmlEsc(s string) string { return xmlEscaper.Replace(s) }

func (w *xmlWriter) indent() {
	if w.pretty {
		if w.b.Len() > 0 {
			w.b.WriteByte('\n')
		}
		w.b.WriteString(strings.Repeat("  ", w.depth))
	}
}

// tag writes "<name attrs"; attrs are name, value pairs, empty values left out.
func (w *xmlWriter) tag(name string, attrs []string) {
	w.indent()
	w.b.WriteString("<" + w.prefix + name)
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] != "" {
			w.b.WriteString(" " + attrs[i] + `="` + xmlEsc(attrs[i+1]) + `"`)
		}
	}
}

func (w *xmlWriter) open(name string, attrs ...string) {
	w.tag(name, attrs)
	w.b.WriteString(">")
	w.depth++
}

func (w *xmlWriter) empty(name string, attrs ...string) {
	w.tag(name, attrs)
	w.b.WriteString("/>")
}

func (w *xmlWriter) text(name, text string, attrs ...string) {
	w.tag(name, attrs)
	w.b.WriteString(">" + xmlEsc(text) + "</" + w.prefix + name + ">")
}

func (w *xmlWriter) close(name string) {
	w.depth--
	w.indent()
	w.b.WriteString("</" + w.prefix + name + ">")
}

// code writes a coded value in the shape's attribute names.
func (w *xmlWriter) code(shape, name, code, system, display string, extra ...string) {
	attrs := []string{"csd-code", code, "codeSystemName", system, "originalText", display}
	if shape == ShapeRFC3881 {
		attrs = []string{"code", code, "codeSystemName", system, "displayName", display}
	}
	w.empty(name, append(attrs, extra...)...)
}

// auditParticipant is one ActiveParticipant.
type auditParticipant struct {
	userID, altUserID, userName string
	requestor                   bool
	role, roleSystem, roleName  string
	host                        string
}

// auditSpec is everything one gateway's record of one transaction says.
type auditSpec struct {
	shape                string
	eventID, eventName   string
	action               string
	at                   time.Time
	outcome              int
	outcomeText          string
	tx                   [2]string // "ITI-55", "Cross Gateway Patient Discovery"
	purpose              purposeCode
	participants         []auditParticipant
	writer               Gateway
	patient              string
	queryID, queryHome   string
	query                []byte
	docs                 []xcaDoc
	retrieve, encodingOK bool
}

// auditXML renders one AuditMessage.
func auditXML(s auditSpec) []byte {
	w := &xmlWriter{pretty: s.shape == ShapeDICOM}
	root := []string{}
	switch s.shape {
	case ShapeDICOMPrefixed:
		w.prefix = "am:"
		root = []string{"xmlns:am", "http://dicom.nema.org/resources/ontology/DCM/audit"}
	case ShapeDICOM:
		root = []string{"xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"}
	}
	w.b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	if !w.pretty {
		w.b.WriteString("\n")
	}
	w.open("AuditMessage", root...)
	w.open("EventIdentification", "EventActionCode", s.action, "EventDateTime", s.at.UTC().Format(auditTime),
		"EventOutcomeIndicator", fmt.Sprint(s.outcome))
	w.code(s.shape, "EventID", s.eventID, "DCM", s.eventName)
	w.code(s.shape, "EventTypeCode", s.tx[0], "IHE Transactions", s.tx[1])
	if s.outcomeText != "" {
		w.text("EventOutcomeDescription", s.outcomeText)
	}
	if s.purpose.Code != "" {
		w.code(s.shape, "PurposeOfUse", s.purpose.Code, s.purpose.System, s.purpose.Display)
	}
	w.close("EventIdentification")
	for _, p := range s.participants {
		auditActive(w, s.shape, p)
	}
	auditSource(w, s)
	auditObjects(w, s)
	w.close("AuditMessage")
	return []byte(w.b.String())
}

func auditActive(w *xmlWriter, shape string, p auditParticipant) {
	napType := "1"
	if p.host == "" {
		napType = ""
	}
	alt := p.altUserID
	if shape == ShapeRFC3881 {
		alt = "" // optional, and this sender leaves it out
	}
	w.open("ActiveParticipant", "UserID", p.userID, "AlternativeUserID", alt, "UserName", p.userName,
		"UserIsRequestor", fmt.Sprint(p.requestor), "NetworkAccessPointID", p.host, "NetworkAccessPointTypeCode", napType)
	if p.role != "" && !(shape == ShapeRFC3881 && p.roleSystem != "DCM") {
		w.code(shape, "RoleIDCode", p.role, p.roleSystem, p.roleName)
	}
	w.close("ActiveParticipant")
}

func auditSource(w *xmlWriter, s auditSpec) {
	if s.shape == ShapeRFC3881 {
		w.open("AuditSourceIdentification", "AuditEnterpriseSiteID", s.writer.Community, "AuditSourceID", s.writer.ID)
		w.empty("AuditSourceTypeCode", "code", "4")
	} else {
		w.open("AuditSourceIdentification", "AuditSourceID", s.writer.ID, "AuditEnterpriseSiteID", s.writer.Community)
		w.code(s.shape, "AuditSourceTypeCode", "4", "DCM", "Application Server Process or Thread")
	}
	w.close("AuditSourceIdentification")
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func auditObjects(w *xmlWriter, s auditSpec) {
	w.open("ParticipantObjectIdentification", "ParticipantObjectID", s.patient,
		"ParticipantObjectTypeCode", "1", "ParticipantObjectTypeCodeRole", "1")
	w.code(s.shape, "ParticipantObjectIDTypeCode", "2", "RFC-3881", "Patient Number")
	w.close("ParticipantObjectIdentification")
	if s.retrieve {
		for _, d := range s.docs {
			w.open("ParticipantObjectIdentification", "ParticipantObjectID", d.ID,
				"ParticipantObjectTypeCode", "2", "ParticipantObjectTypeCodeRole", "3")
			w.code(s.shape, "ParticipantObjectIDTypeCode", "9", "RFC-3881", "Report Number")
			w.empty("ParticipantObjectDetail", "type", "Repository Unique Id", "value", b64(d.Repository))
			w.empty("ParticipantObjectDetail", "type", "ihe:homeCommunityID", "value", b64(d.Home))
			w.close("ParticipantObjectIdentification")
		}
		return
	}
	w.open("ParticipantObjectIdentification", "ParticipantObjectID", s.queryID,
		"ParticipantObjectTypeCode", "2", "ParticipantObjectTypeCodeRole", "24")
	w.code(s.shape, "ParticipantObjectIDTypeCode", s.tx[0], "IHE Transactions", s.tx[1])
	w.text("ParticipantObjectQuery", base64.StdEncoding.EncodeToString(s.query))
	if s.encodingOK && s.shape != ShapeRFC3881 {
		w.empty("ParticipantObjectDetail", "type", "QueryEncoding", "value", b64("UTF-8"))
	}
	w.empty("ParticipantObjectDetail", "type", "ihe:homeCommunityID", "value", b64(s.queryHome))
	w.close("ParticipantObjectIdentification")
}

// auditRecords are the two gateways' audit records of one transaction:
// the responding gateway's when it answered, the initiating gateway's when
// it got the answer (or gave up). In XCPD deferred mode each gateway
// audits two transactions: the deferred request, accepted at once, and
// the deferred response when it comes.
func (g *xcaGenerator) auditRecords(t *xcaTx) []XCAMessage {
	r, j := t.row, t.j
	var out []XCAMessage
	// The responding gateway accepts a deferred request at once; the
	// initiating one records the acceptance when it reaches it.
	accepted := r.RequestedAt.Add(time.Duration(20+g.rng.IntN(100)) * time.Millisecond)
	for _, side := range []string{SideInitiating, SideResponding} {
		writer, at := j.requester, r.AnsweredAt.Add(time.Duration(5+g.rng.IntN(75))*time.Millisecond)
		if side == SideResponding {
			if r.ErrorCode == "timeout" {
				continue // it never answered, and never audited
			}
			writer, at = j.responder, r.AnsweredAt
		}
		if r.Deferred {
			acceptedAt := accepted
			if side == SideInitiating {
				acceptedAt = accepted.Add(time.Duration(5+g.rng.IntN(75)) * time.Millisecond)
			}
			out = append(out, g.auditRecord(t, side, writer, acceptedAt, deferredRequest))
			out = append(out, g.auditRecord(t, side, writer, at, deferredResponse))
			continue
		}
		out = append(out, g.auditRecord(t, side, writer, at, ""))
	}
	return out
}

// The EventTypeCode display names that mark XCPD deferred mode in an
// audit (IHE has no separate code for them).
const (
	deferredRequest  = "Deferred Request"
	deferredResponse = "Deferred Response"
)

// auditRecord is one gateway's record of (one part of) a transaction,
// deferred naming the part in deferred mode.
func (g *xcaGenerator) auditRecord(t *xcaTx, side string, writer Gateway, at time.Time, deferred string) XCAMessage {
	at = at.Truncate(time.Millisecond)
	spec := g.auditSpec(t, side, writer, at)
	what := "audit"
	if deferred != "" {
		spec.tx[1] += " " + deferred
		what = "audit-" + strings.ToLower(strings.ReplaceAll(deferred, " ", "-"))
		if deferred == deferredRequest {
			spec.outcome, spec.outcomeText = 0, ""
		}
	}
	return XCAMessage{
		Time: at, DeliverAt: at, Network: t.j.network.Name, Gateway: writer.ID, Side: side,
		TransactionID: t.row.TransactionID, What: what,
		Raw: syslogMessage(writer, at, g.rng.IntN(30000)+1000, auditXML(spec)),
	}
}

func (g *xcaGenerator) auditSpec(t *xcaTx, side string, writer Gateway, at time.Time) auditSpec {
	r, j := t.row, t.j
	s := auditSpec{
		shape: writer.Shape, eventID: "110112", eventName: "Query", action: "E", at: at,
		outcome: r.EventOutcome, tx: transactionNames[r.Kind], purpose: j.purpose, writer: writer,
		patient: j.patient, queryID: t.queryID, queryHome: j.responder.Community, query: t.query,
		docs: t.docs, encodingOK: r.Kind == KindDocumentQuery,
	}
	if r.EventOutcome != 0 {
		s.outcomeText = t.detail
		if r.ErrorCode != "" && r.ErrorCode != "timeout" {
			s.outcomeText = r.ErrorCode + ": " + t.detail
		}
	}
	ig := auditParticipant{
		userID: j.requester.Endpoint("xcpd-reply"), altUserID: fmt.Sprint(1000 + g.rng.IntN(30000)),
		requestor: j.human == nil, role: "110153", roleSystem: "DCM", roleName: "Source Role ID", host: j.requester.Host,
	}
	rg := auditParticipant{
		userID: j.responder.Endpoint(strings.ToLower(s.tx[0])), requestor: false,
		role: "110152", roleSystem: "DCM", roleName: "Destination Role ID", host: j.responder.Host,
	}
	if r.Kind == KindDocumentRetrieve {
		// Documents flow from the responding gateway: it is the Source.
		s.retrieve, s.eventID, s.eventName, s.action = true, "110107", "Import", "C"
		if side == SideResponding {
			s.eventID, s.eventName, s.action = "110106", "Export", "R"
		}
		ig.role, ig.roleName, rg.role, rg.roleName = rg.role, rg.roleName, ig.role, ig.roleName
		s.participants = []auditParticipant{rg, ig}
	} else {
		s.participants = []auditParticipant{ig, rg}
	}
	if h := j.human; h != nil {
		issuer := "https://idp." + j.requester.domain()
		s.participants = append(s.participants, auditParticipant{
			userID: h.user + "@" + j.requester.domain(), userName: h.name + "<" + h.user + "@" + issuer + ">",
			requestor: true, role: h.role, roleSystem: "2.16.840.1.113883.6.96", roleName: h.roleName,
		})
	}
	return s
}
