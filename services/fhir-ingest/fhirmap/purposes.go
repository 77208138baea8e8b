package fhirmap

import (
	"encoding/json"
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/purpose"
)

// The purpose of a request, from what FHIR carries: AuditEvent.purposeOfEvent
// and agent.purposeOfUse (BALP's place for the XUA assertion's purpose),
// a Task's purpose-of-use input, and the security labels (meta.security)
// of the request resource, of the Bundle carrying it and of the resources
// a message carries. Each pattern
// reads them in its order (patterns.go) and purpose.Pick, the rule of
// every format, chooses: the first code the purpose table knows, else the
// first one sent, as "unknown". Security labels also say confidentiality
// and handling, so only their codings of a purpose-of-use system
// (purpose.IsSystem) count; every coding of a purpose element does.

// purposes collects a request's purpose codings in reading order.
type purposes []purpose.Coding

// concepts adds every coding of purpose elements.
func (p *purposes) concepts(ccs []codeableConcept) {
	for _, cc := range ccs {
		for _, c := range cc.Coding {
			*p = append(*p, purpose.Coding{System: c.System, Code: c.Code})
		}
	}
}

// labels adds the purpose-of-use codings among a resource's security
// labels. Labels that are not an array of codings are skipped: they do
// not identify the message, so they cost its purpose, not the message.
func (p *purposes) labels(h head) {
	if h.Meta == nil || len(h.Meta.Security) == 0 {
		return
	}
	var codings []coding
	if json.Unmarshal(h.Meta.Security, &codings) != nil {
		return
	}
	for _, c := range codings {
		if purpose.IsSystem(c.System) {
			*p = append(*p, purpose.Coding{System: c.System, Code: c.Code})
		}
	}
}

// resource adds the security labels of an embedded resource (a Bundle
// entry), read as leniently: an entry whose head does not decode adds
// nothing here (its own mapping judges it).
func (p *purposes) resource(raw json.RawMessage) {
	if len(raw) == 0 {
		return
	}
	var h head
	if decode(raw, &h, "") == nil {
		p.labels(h)
	}
}

// apply sets the purpose picked on events; none sets nothing (the format
// carried none: "" downstream, seen as "unknown").
func (p purposes) apply(evs ...*hinscorev1.ExchangeEvent) {
	name, code := purpose.Pick(p...)
	if code == "" {
		return
	}
	for _, ev := range evs {
		ev.Purpose, ev.PurposeCode = string(name), code
	}
}

// taskInputs adds the purpose a Task states as an input (CDex's
// purpose-of-use input slice): an input whose type names a purpose of use
// ("purpose-of-use", "POU", "purposeOfUse") and its valueCodeableConcept,
// every coding of which counts. Inputs that do not decode add nothing.
func (p *purposes) taskInputs(raw json.RawMessage) {
	if len(raw) == 0 {
		return
	}
	var inputs []struct {
		Type  codeableConcept  `json:"type"`
		Value *codeableConcept `json:"valueCodeableConcept"`
	}
	if json.Unmarshal(raw, &inputs) != nil {
		return
	}
	for _, in := range inputs {
		if in.Value != nil && namesPurpose(in.Type) {
			p.concepts([]codeableConcept{*in.Value})
		}
	}
}

// namesPurpose reports whether a type coding names a purpose of use.
func namesPurpose(cc codeableConcept) bool {
	for _, c := range cc.Coding {
		code := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(c.Code))
		if code == "purposeofuse" || code == "pou" {
			return true
		}
	}
	return false
}

// purposeConcepts are an AuditEvent's purpose elements in the order both
// its mappings read them: purposeOfEvent, then each agent's purposeOfUse.
func (a *auditEvent) purposeConcepts() []codeableConcept {
	ccs := append([]codeableConcept(nil), a.PurposeOfEvent...)
	for _, ag := range a.Agent {
		ccs = append(ccs, ag.PurposeOfUse...)
	}
	return ccs
}
