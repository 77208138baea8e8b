package fhirmap

import (
	"encoding/base64"
	"strconv"
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/atna"
	atnaevent "github.com/hinscore/hinscore/services/lib/atna/toevent"
)

// An AuditEvent is the FHIR form of the ATNA audit record (IHE RESTful
// ATNA, BALP). One of a cross-community transaction (XCPD ITI-55, XCA
// ITI-38, ITI-39 in its subtypes) is converted to the atna.Audit an
// AuditMessage reads into and mapped by lib/atna/toevent, so the same
// transaction gives the same events in either form. Every other AuditEvent
// (RESTful interactions, other DICOM events) keeps this package's mapping.

// toAudit converts an AuditEvent, element by element as BALP maps the
// DICOM AuditMessage onto it. The audit is whole even with an error (a
// value that is not base64, left out), so that the caller can tell
// whether it matters.
func (a *auditEvent) toAudit(path string) (*atna.Audit, error) {
	out := &atna.Audit{}
	ev := &out.Event
	ev.ActionCode = a.Action
	if a.Type != nil {
		ev.ID = atnaCode(*a.Type)
	}
	for _, st := range a.Subtype {
		ev.TypeCodes = append(ev.TypeCodes, atnaCode(st))
	}
	ev.OutcomeDescription = a.OutcomeDesc
	for _, cc := range a.purposeConcepts() {
		ev.PurposesOfUse = appendConcept(ev.PurposesOfUse, cc)
	}
	for _, ag := range a.Agent {
		out.Participants = append(out.Participants, agentParticipant(ag))
	}
	if s := a.Source; s != nil {
		out.Source = atna.Source{ID: refID(s.Observer), EnterpriseSiteID: s.Site}
		for _, c := range s.Type {
			out.Source.TypeCodes = append(out.Source.TypeCodes, atnaCode(c))
		}
	}
	var bad error
	for i, e := range a.Entity {
		o, err := entityObject(e, path+".entity["+itoa(i)+"]")
		if err != nil && bad == nil {
			bad = err
		}
		out.Objects = append(out.Objects, o)
	}
	return out, bad
}

func atnaCode(c coding) atna.Code {
	return atna.Code{Code: c.Code, System: c.System, Display: c.Display}
}

func appendConcept(codes []atna.Code, cc codeableConcept) []atna.Code {
	for _, c := range cc.Coding {
		codes = append(codes, atnaCode(c))
	}
	return codes
}

// agentParticipant: agent.type and agent.role carry the RoleIDCodes
// (110153 Source, 110152 Destination), who the UserID, altId the process
// id, network.address the NetworkAccessPointID.
func agentParticipant(ag auditAgent) atna.Participant {
	p := atna.Participant{UserID: refID(ag.Who), AlternativeUserID: ag.AltID, UserName: ag.Name, UserIsRequestor: ag.Requestor}
	if ag.Network != nil {
		p.NetworkAccessPointID = ag.Network.Address
		p.NetworkAccessPointTypeCode, _ = strconv.Atoi(ag.Network.Type)
	}
	if ag.Type != nil {
		p.RoleIDCodes = appendConcept(p.RoleIDCodes, *ag.Type)
	}
	for _, cc := range ag.Role {
		p.RoleIDCodes = appendConcept(p.RoleIDCodes, cc)
	}
	return p
}

// refID is what a reference names: its identifier's value, else its
// display (BALP's server agent: the endpoint URL), else the reference.
func refID(r *reference) string {
	switch {
	case r == nil:
		return ""
	case r.Identifier != nil && r.Identifier.Value != "":
		return r.Identifier.Value
	case r.Display != "":
		return r.Display
	}
	return r.Reference
}

// entityObject: entity.type and entity.role are the object's type code
// and role (1 person / 1 patient, 2 system object / 24 query, 3 report),
// query the base64 ParticipantObjectQuery, detail the
// ParticipantObjectDetails (valueString as is, valueBase64Binary decoded).
func entityObject(e auditEntity, path string) (atna.Object, error) {
	o := atna.Object{ID: refID(e.What), Name: e.Name}
	if e.What != nil && e.What.Identifier != nil && e.What.Identifier.System != "" && !strings.Contains(o.ID, "^") {
		// An identifier with a system reads as the AuditMessage's CX of
		// it, whose authority (patient.Authority) is that system again:
		// both forms give one token.
		sys := e.What.Identifier.System
		if oid, isOID := strings.CutPrefix(sys, "urn:oid:"); isOID {
			o.ID += "^^^&" + oid + "&ISO"
		} else {
			o.ID += "^^^&" + sys + "&URI"
		}
	}
	var err error
	if e.Type != nil {
		o.TypeCode, _ = strconv.Atoi(e.Type.Code)
	}
	if e.Role != nil {
		o.TypeCodeRole, _ = strconv.Atoi(e.Role.Code)
	}
	if e.Lifecycle != nil {
		o.DataLifeCycle, _ = strconv.Atoi(e.Lifecycle.Code)
	}
	if e.Query != "" {
		if o.Query, err = base64.StdEncoding.DecodeString(e.Query); err != nil {
			return o, badValue(path+".query", "not base64: %v", err)
		}
	}
	for i, d := range e.Detail {
		v := []byte(d.ValueString)
		if d.ValueBase64Binary != "" {
			if v, err = base64.StdEncoding.DecodeString(d.ValueBase64Binary); err != nil {
				return o, badValue(path+".detail["+itoa(i)+"].valueBase64Binary", "not base64: %v", err)
			}
		}
		o.Details = append(o.Details, atna.Detail{Type: d.Type, Value: v})
	}
	return o, nil
}

// crossCommunity maps an AuditEvent of a cross-community transaction
// through lib/atna/toevent; ok is false for any other AuditEvent.
func (c *mapCtx) crossCommunity(a *auditEvent, body []byte, path string) (evs []*hinscorev1.ExchangeEvent, ok bool, err error) {
	au, err := a.toAudit(path)
	if atnaevent.Kind(au) == "" {
		// Not this mapping's: a bad value in it is the other mapping's
		// to judge (it reads no query and no detail).
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	if au.Event.Outcome, err = strconv.Atoi(a.Outcome); err != nil {
		// No readable outcome: the generic mapping records it as a
		// flagged notification (quality.NoOutcome).
		return nil, false, nil
	}
	au.Event.DateTime = c.eventTime(timeField{path + ".recorded", a.Recorded})
	evs, err = atnaevent.Map(au, atnaevent.Input{
		Network: c.in.Network, Raw: []byte(identity(a.head, body)), Ingest: c.in.Ingest,
		Patients: c.m.Patients, PatientKeyID: c.m.PatientKeyID, Table: c.m.AuditTable,
		Format: hinscorev1.Format_FORMAT_FHIR,
	})
	if err != nil {
		return nil, true, invalid(path, "%v", err)
	}
	for _, ev := range evs {
		// Both rule sets made it: this package's conversion and the audit
		// mapping.
		ev.MappingVersion = c.version + "+" + ev.MappingVersion
	}
	return evs, true, nil
}
