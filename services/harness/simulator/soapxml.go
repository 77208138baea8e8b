package simulator

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// SOAP 1.2 messages of ITI-55, ITI-38 and ITI-39 as gateways exchange
// them, with WS-Addressing and the XUA assertion; the simulator's own
// templates, written from IHE ITI TF-2.

// SOAP actions (wsa:Action) of the cross-community transactions.
const (
	ActionXCPD              = "urn:hl7-org:v3:PRPA_IN201305UV02:CrossGatewayPatientDiscovery"
	ActionXCPDResponse      = "urn:hl7-org:v3:PRPA_IN201306UV02:CrossGatewayPatientDiscovery"
	ActionXCPDDeferred      = "urn:hl7-org:v3:PRPA_IN201305UV02:Deferred:CrossGatewayPatientDiscovery"
	ActionXCPDDeferredReply = "urn:hl7-org:v3:PRPA_IN201306UV02:Deferred:CrossGatewayPatientDiscovery"
	ActionXCPDAck           = "urn:hl7-org:v3:MCCI_IN000002UV01"
	ActionXCAQuery          = "urn:ihe:iti:2007:CrossGatewayQuery"
	ActionXCAQueryResponse  = "urn:ihe:iti:2007:CrossGatewayQueryResponse"
	ActionXCARetrieve       = "urn:ihe:iti:2007:CrossGatewayRetrieve"
	ActionXCARetrieveResp   = "urn:ihe:iti:2007:CrossGatewayRetrieveResponse"
)

const (
	nsRim    = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
	nsQuery  = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
	nsRS     = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
	nsXDSB   = "urn:ihe:iti:xds-b:2007"
	statusNS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:"
)

// requestBody is the transaction's request, the SOAP Body's content; the
// audits of ITI-55 and ITI-38 quote it (base64) as ParticipantObjectQuery.
func (g *xcaGenerator) requestBody(t *xcaTx) []byte {
	switch t.row.Kind {
	case KindPatientDiscovery:
		t.hl7ID = g.uuid()
		return []byte(pdqRequest(t))
	case KindDocumentQuery:
		return []byte(adhocRequest(t))
	}
	return []byte(retrieveRequest(t))
}

func hl7Device(typeCode, deviceOID, communityOID string) string {
	code := map[string]string{"receiver": "RCV", "sender": "SND"}[typeCode]
	return `<` + typeCode + ` typeCode="` + code + `"><device classCode="DEV" determinerCode="INSTANCE"><id root="` +
		deviceOID + `"/><asAgent classCode="AGNT"><representedOrganization classCode="ORG" determinerCode="INSTANCE"><id root="` +
		communityOID + `"/></representedOrganization></asAgent></device></` + typeCode + `>`
}

func (t *xcaTx) mrn() (id, oid string) {
	id, rest, _ := strings.Cut(t.j.patient, "^^^&")
	oid, _, _ = strings.Cut(rest, "&")
	return id, oid
}

func (t *xcaTx) queryByParameter() string {
	id, oid := t.mrn()
	priority := "I"
	if t.row.Deferred {
		priority = "D"
	}
	return `<queryByParameter><queryId root="` + t.queryID + `"/><statusCode code="new"/><responseModalityCode code="R"/>` +
		`<responsePriorityCode code="` + priority + `"/><parameterList>` +
		`<livingSubjectAdministrativeGender><value code="F"/><semanticsText>LivingSubject.administrativeGender</semanticsText></livingSubjectAdministrativeGender>` +
		`<livingSubjectBirthTime><value value="19700101"/><semanticsText>LivingSubject.birthTime</semanticsText></livingSubjectBirthTime>` +
		`<livingSubjectId><value root="` + oid + `" extension="` + id + `"/><semanticsText>LivingSubject.id</semanticsText></livingSubjectId>` +
		`<livingSubjectName><value><given>SIMULATED</given><family>PATIENT</family></value><semanticsText>LivingSubject.name</semanticsText></livingSubjectName>` +
		`</parameterList></queryByParameter>`
}

// pdqRequest is PRPA_IN201305UV02 from the initiating gateway.
func pdqRequest(t *xcaTx) string {
	j := t.j
	return `<PRPA_IN201305UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="` + t.hl7ID + `"/>` +
		`<creationTime value="` + hl7Time(t.row.RequestedAt) + `"/>` +
		`<interactionId root="2.16.840.1.113883.1.6" extension="PRPA_IN201305UV02"/><processingCode code="P"/>` +
		`<processingModeCode code="T"/><acceptAckCode code="AL"/>` +
		hl7Device("receiver", j.responder.oid()+".9", j.responder.oid()) + hl7Device("sender", j.requester.oid()+".9", j.requester.oid()) +
		`<controlActProcess classCode="CACT" moodCode="EVN"><code code="PRPA_TE201305UV02" codeSystem="2.16.840.1.113883.1.6"/>` +
		`<authorOrPerformer typeCode="AUT"><assignedDevice classCode="ASSIGNED"><id root="` + j.requester.oid() + `"/></assignedDevice></authorOrPerformer>` +
		t.queryByParameter() + `</controlActProcess></PRPA_IN201305UV02>`
}

// pdqResponse is PRPA_IN201306UV02: OK with the patient, NF, or AE/QE
// with an acknowledgement detail.
func pdqResponse(t *xcaTx, at time.Time, hl7ID, requestHL7ID string) string {
	j, r := t.j, t.row
	ack, code, detail, subject := "AA", "OK", "", ""
	switch {
	case r.ErrorCode == "NF":
		code = "NF"
	case strings.HasSuffix(r.ErrorCode, "Requested"):
		code = "NF"
		subject = `<reasonOf typeCode="RSON"><detectedIssueEvent classCode="ALRT" moodCode="EVN">` +
			`<code code="ActAdministrativeDetectedIssueCode" codeSystem="2.16.840.1.113883.5.4"/><triggerFor typeCode="TRIG">` +
			`<actOrderRequired classCode="ACT" moodCode="RQO"><code code="` + r.ErrorCode + `" codeSystem="1.3.6.1.4.1.19376.1.2.27.1"/>` +
			`</actOrderRequired></triggerFor></detectedIssueEvent></reasonOf>`
	case r.ErrorCode == "AE" || r.ErrorCode == "QE":
		ack, code = "AE", r.ErrorCode
		detail = `<acknowledgementDetail typeCode="E"><code code="` + detailCode(r) + `" codeSystem="2.16.840.1.113883.5.1100"/><text>` +
			xmlEsc(t.detail) + `</text></acknowledgementDetail>`
	}
	if code == "OK" {
		id, oid := t.mrn()
		subject = `<subject typeCode="SUBJ"><registrationEvent classCode="REG" moodCode="EVN"><statusCode code="active"/>` +
			`<subject1 typeCode="SBJ"><patient classCode="PAT"><id root="` + oid + `" extension="` + id + `"/><statusCode code="active"/>` +
			`<patientPerson><name><given>SIMULATED</given><family>PATIENT</family></name><administrativeGenderCode code="F"/><birthTime value="19700101"/></patientPerson>` +
			`</patient></subject1><custodian typeCode="CST"><assignedEntity classCode="ASSIGNED"><id root="` + j.responder.oid() + `"/></assignedEntity></custodian>` +
			`</registrationEvent></subject>`
	}
	return `<PRPA_IN201306UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="` + hl7ID + `"/>` +
		`<creationTime value="` + hl7Time(at) + `"/><interactionId root="2.16.840.1.113883.1.6" extension="PRPA_IN201306UV02"/>` +
		`<processingCode code="P"/><processingModeCode code="T"/><acceptAckCode code="NE"/>` +
		hl7Device("receiver", j.requester.oid()+".9", j.requester.oid()) + hl7Device("sender", j.responder.oid()+".9", j.responder.oid()) +
		`<acknowledgement><typeCode code="` + ack + `"/><targetMessage><id root="` + requestHL7ID + `"/></targetMessage>` + detail + `</acknowledgement>` +
		`<controlActProcess classCode="CACT" moodCode="EVN"><code code="PRPA_TE201306UV02" codeSystem="2.16.840.1.113883.1.6"/>` + subject +
		`<queryAck><queryId root="` + t.queryID + `"/><queryResponseCode code="` + code + `"/></queryAck>` + t.queryByParameter() +
		`</controlActProcess></PRPA_IN201306UV02>`
}

// detailCode is the acknowledgement detail's code of an XCPD error answer.
func detailCode(r XCATruthRow) string {
	switch r.Outcome {
	case RefusedException, RefusedUnjustified:
		return "InsufficientPrivileges"
	case ErrorPermanent:
		return "QueryParameterNotSupported"
	}
	return "ResponderBusy"
}

// deferredAck is the MCCI_IN000002UV01 a responding gateway returns at
// once for a deferred-mode request.
func deferredAck(t *xcaTx, at time.Time, hl7ID, requestHL7ID string) string {
	j := t.j
	return acceptAck(at, hl7ID, requestHL7ID,
		hl7Device("receiver", j.requester.oid()+".9", j.requester.oid())+hl7Device("sender", j.responder.oid()+".9", j.responder.oid()))
}

// responseAck is the initiating gateway's acceptance of a deferred
// response: the same acknowledgement, from the requester to the responder.
func responseAck(t *xcaTx, at time.Time, hl7ID, responseHL7ID string) string {
	j := t.j
	return acceptAck(at, hl7ID, responseHL7ID,
		hl7Device("receiver", j.responder.oid()+".9", j.responder.oid())+hl7Device("sender", j.requester.oid()+".9", j.requester.oid()))
}

// acceptAck is an MCCI_IN000002UV01 accept acknowledgement (CA) of the
// message targetHL7ID, between the devices given.
func acceptAck(at time.Time, hl7ID, targetHL7ID, devices string) string {
	return `<MCCI_IN000002UV01 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="` + hl7ID + `"/>` +
		`<creationTime value="` + hl7Time(at) + `"/><interactionId root="2.16.840.1.113883.1.6" extension="MCCI_IN000002UV01"/>` +
		`<processingCode code="P"/><processingModeCode code="T"/><acceptAckCode code="NE"/>` + devices +
		`<acknowledgement><typeCode code="CA"/><targetMessage><id root="` + targetHL7ID + `"/></targetMessage></acknowledgement></MCCI_IN000002UV01>`
}

func rimSlot(name string, values ...string) string {
	var b strings.Builder
	b.WriteString(`<rim:Slot name="` + name + `"><rim:ValueList>`)
	for _, v := range values {
		b.WriteString(`<rim:Value>` + xmlEsc(v) + `</rim:Value>`)
	}
	b.WriteString(`</rim:ValueList></rim:Slot>`)
	return b.String()
}

// adhocRequest is the ITI-38 FindDocuments AdhocQueryRequest.
func adhocRequest(t *xcaTx) string {
	return `<query:AdhocQueryRequest xmlns:query="` + nsQuery + `" xmlns:rim="` + nsRim + `">` +
		`<query:ResponseOption returnComposedObjects="true" returnType="LeafClass"/>` +
		`<rim:AdhocQuery id="` + t.queryID + `" home="` + t.j.responder.Community + `">` +
		rimSlot("$XDSDocumentEntryPatientId", "'"+t.j.patient+"'") +
		rimSlot("$XDSDocumentEntryStatus", "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')") +
		`</rim:AdhocQuery></query:AdhocQueryRequest>`
}

// registryErrors is a RegistryErrorList for a failed or partial answer.
func registryErrors(t *xcaTx, location string) string {
	if t.row.ErrorCode == "" {
		return ""
	}
	return `<rs:RegistryErrorList><rs:RegistryError errorCode="` + t.row.ErrorCode + `" codeContext="` + xmlEsc(t.detail) +
		`" location="` + xmlEsc(location) + `" severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"/></rs:RegistryErrorList>`
}

// responseStatus is the ebRS status of an XCA answer.
func responseStatus(t *xcaTx) string {
	switch {
	case t.row.Outcome == Partial:
		return statusNS + "PartialSuccess"
	case t.row.ErrorCode == "":
		return statusNS + "Success"
	}
	return statusNS + "Failure"
}

// adhocResponse is the ITI-38 AdhocQueryResponse: the documents found, or
// a RegistryErrorList.
func adhocResponse(t *xcaTx) string {
	var b strings.Builder
	b.WriteString(`<query:AdhocQueryResponse xmlns:query="` + nsQuery + `" xmlns:rim="` + nsRim + `" xmlns:rs="` + nsRS +
		`" status="` + responseStatus(t) + `">`)
	b.WriteString(registryErrors(t, t.j.responder.Community))
	b.WriteString(`<rim:RegistryObjectList>`)
	for i, d := range t.docs[:t.returned] {
		b.WriteString(fmt.Sprintf(`<rim:ExtrinsicObject id="urn:uuid:%s-doc-%d" home="%s" mimeType="text/xml" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1" status="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved">`,
			t.j.id, i+1, d.Home))
		b.WriteString(rimSlot("repositoryUniqueId", d.Repository))
		b.WriteString(`<rim:ExternalIdentifier id="urn:uuid:` + t.j.id + `-xid-` + fmt.Sprint(i+1) + `" identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" value="` +
			xmlEsc(t.j.patient) + `"/><rim:ExternalIdentifier id="urn:uuid:` + t.j.id + `-uid-` + fmt.Sprint(i+1) +
			`" identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="` + d.ID + `"/>`)
		b.WriteString(`</rim:ExtrinsicObject>`)
	}
	b.WriteString(`</rim:RegistryObjectList></query:AdhocQueryResponse>`)
	return b.String()
}

// retrieveRequest is the ITI-39 RetrieveDocumentSetRequest.
func retrieveRequest(t *xcaTx) string {
	var b strings.Builder
	b.WriteString(`<xdsb:RetrieveDocumentSetRequest xmlns:xdsb="` + nsXDSB + `">`)
	for _, d := range t.docs {
		b.WriteString(`<xdsb:DocumentRequest><xdsb:HomeCommunityId>` + d.Home + `</xdsb:HomeCommunityId><xdsb:RepositoryUniqueId>` +
			d.Repository + `</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId>` + d.ID + `</xdsb:DocumentUniqueId></xdsb:DocumentRequest>`)
	}
	b.WriteString(`</xdsb:RetrieveDocumentSetRequest>`)
	return b.String()
}

// retrieveResponse is the ITI-39 RetrieveDocumentSetResponse: the
// documents returned (a partial answer misses the last one).
func retrieveResponse(t *xcaTx) string {
	var b strings.Builder
	b.WriteString(`<xdsb:RetrieveDocumentSetResponse xmlns:xdsb="` + nsXDSB + `" xmlns:rs="` + nsRS + `">`)
	location := ""
	if t.returned < len(t.docs) {
		location = t.docs[len(t.docs)-1].ID
	}
	b.WriteString(`<rs:RegistryResponse status="` + responseStatus(t) + `">` + registryErrors(t, location) + `</rs:RegistryResponse>`)
	for _, d := range t.docs[:t.returned] {
		doc := base64.StdEncoding.EncodeToString([]byte(`<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="` + d.ID + `"/></ClinicalDocument>`))
		b.WriteString(`<xdsb:DocumentResponse><xdsb:HomeCommunityId>` + d.Home + `</xdsb:HomeCommunityId><xdsb:RepositoryUniqueId>` +
			d.Repository + `</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId>` + d.ID + `</xdsb:DocumentUniqueId>` +
			`<xdsb:mimeType>text/xml</xdsb:mimeType><xdsb:Document>` + doc + `</xdsb:Document></xdsb:DocumentResponse>`)
	}
	b.WriteString(`</xdsb:RetrieveDocumentSetResponse>`)
	return b.String()
}
