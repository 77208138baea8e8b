package soap

import "github.com/hinscore/hinscore/services/lib/atna/xmlscan"

// issueClass is the detected issue code that only says "an administrative
// issue" (ActAdministrativeDetectedIssueCode): the codes under it matter.
const issueClass = "ActAdministrativeDetectedIssueCode"

// hl7 reads the parts of an ITI-55 body (PRPA_IN201305UV02,
// PRPA_IN201306UV02, MCCI_IN000002UV01) the mapping uses. Paths are
// relative to the body's element.
func (p *parser) hl7(el string, attrs []xmlscan.Attr) {
	h := p.m.HL7
	rel := p.path[3:]
	parent := p.path[len(p.path)-2]
	switch rel[0] {
	case "id":
		h.ID = ii(attrs)
	case "creationTime":
		h.CreationTime = attrValue(attrs, "value")
	case "sender":
		device(&h.Sender, el, parent, attrs)
	case "receiver":
		device(&h.Receiver, el, parent, attrs)
	case "acknowledgement":
		switch {
		case el == "typeCode":
			h.AckCode = attrValue(attrs, "code")
		case el == "id" && parent == "targetMessage":
			h.Target = ii(attrs)
		case el == "code" && parent == "acknowledgementDetail":
			if c := attrValue(attrs, "code"); c != "" {
				h.AckDetails = append(h.AckDetails, c)
			}
		case el == "text" && parent == "acknowledgementDetail":
			p.want(func(s string) {
				if s != "" {
					h.AckText = append(h.AckText, s)
				}
			})
		}
	case "controlActProcess":
		p.controlAct(h, el, parent, attrs)
	}
}

func device(d *Device, el, parent string, attrs []xmlscan.Attr) {
	if el != "id" {
		return
	}
	switch parent {
	case "device":
		setOnce(&d.ID, attrValue(attrs, "root"))
	case "representedOrganization":
		setOnce(&d.Organization, attrValue(attrs, "root"))
	}
}

func (p *parser) controlAct(h *HL7v3, el, parent string, attrs []xmlscan.Attr) {
	switch {
	case el == "queryId" && h.QueryID == (II{}):
		h.QueryID = ii(attrs)
	case el == "responsePriorityCode" && parent == "queryByParameter":
		h.ResponsePriority = attrValue(attrs, "code")
	case el == "value" && parent == "livingSubjectId" && p.m.Body == BodyDiscoveryRequest:
		h.Patients = append(h.Patients, ii(attrs))
	case el == "registrationEvent":
		h.Matches++
	case el == "id" && parent == "patient" && p.path[len(p.path)-3] == "subject1":
		h.Patients = append(h.Patients, ii(attrs))
	case el == "id" && parent == "assignedEntity" && p.path[len(p.path)-3] == "custodian":
		if r := attrValue(attrs, "root"); r != "" && !contains(h.Custodians, r) {
			h.Custodians = append(h.Custodians, r)
		}
	case el == "queryResponseCode":
		h.ResponseCode = attrValue(attrs, "code")
	case el == "code" && p.within("detectedIssueEvent"):
		if c := attrValue(attrs, "code"); c != "" && c != issueClass && !contains(h.Issues, c) {
			h.Issues = append(h.Issues, c)
		}
	}
}
