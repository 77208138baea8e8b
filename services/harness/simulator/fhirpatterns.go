package simulator

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The FHIR R4 patterns of DOMAIN.md's FHIR table: Task workflows,
// messaging Bundles, batch and transaction Bundles, AuditEvents of REST
// exchanges. Bodies are JSON built here from the standard's element
// names; nothing of hinscore's mapping is used.

// fhirPatientOID is the assigning authority of a FHIR network's patients.
func fhirPatientOID(p NetworkProfile) string {
	return "2.999.24." + strconv.Itoa(int(p.Code[0])*100+int(p.Code[1]))
}

// Code systems the FHIR bodies cite.
const (
	exceptionSystem = "urn:hinscore:ib-exception"
	issueTypeSystem = "http://hl7.org/fhir/issue-type"
	taskIDSystem    = "urn:oid:2.999.24.7"
)

type obj = map[string]any

func fhirTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func orgRef(o Org) obj { return obj{"identifier": obj{"value": o.Facility}} }

func (x *exchange) patientIdent() obj {
	return obj{"system": "urn:oid:" + fhirPatientOID(x.q.network), "value": x.q.mrn}
}

// endpoint is an organisation's messaging endpoint.
func endpoint(o Org) string { return "urn:hinscore-sim:endpoint:" + o.Facility }

func fhirMessage(at time.Time, kind MessageKind, id string, body obj) Message {
	// Maps of strings, numbers, booleans and maps always encode.
	raw, _ := json.Marshal(body)
	return Message{Time: at, DeliverAt: at, Kind: kind, ControlID: id, Raw: raw}
}

// fhirMessages are a Task's, a message's or an AuditEvent's bodies.
func (g *generator) fhirMessages(x *exchange) []Message {
	switch x.spec.name {
	case PatternTask, PatternSubscription:
		return x.taskVersions()
	case PatternMessage:
		return x.messageBundles()
	}
	return []Message{x.auditEvent()}
}

// reason is how a negative answer explains itself: a CodeableConcept with
// the cited exception or redirect coded (unless cited in text only), the
// error's words, or the refusal's.
func (a answer) reason() obj {
	text := a.text()
	switch {
	case a.class == RefusedException && !a.textOnly:
		return obj{"coding": []obj{{"system": exceptionSystem, "code": a.code, "display": exceptionNames[a.code]}}, "text": text}
	case a.class == Redirected:
		return obj{"coding": []obj{{"system": exceptionSystem, "code": a.code, "display": text}}, "text": text}
	case a.class == ErrorTransient:
		return obj{"coding": []obj{{"system": issueTypeSystem, "code": "transient"}}, "text": text}
	}
	return obj{"text": text}
}

// text is the answer's words (as the HL7 v2 answers word them).
func (a answer) text() string {
	switch a.class {
	case RefusedException:
		return fmt.Sprintf("Denied under 45 CFR %s %s", a.code, exceptionNames[a.code])
	case RefusedUnjustified:
		return unjustifiedTexts[a.variant]
	case Redirected:
		if a.code == "redirect-fax" {
			return "Send the request by fax"
		}
		return "Use the patient portal"
	case ErrorTransient, ErrorPermanent:
		return a.errCode.text
	case NotFound:
		return "No records for this patient"
	}
	return ""
}

// outcome is the OperationOutcome of a negative answer: the issue type
// says the class, the details carry the reason.
func (a answer) outcome() obj {
	code := map[string]string{
		NotFound: "not-found", RefusedException: "forbidden", RefusedUnjustified: "forbidden", Redirected: "forbidden",
		ErrorTransient: "transient", ErrorPermanent: "processing",
	}[a.class]
	issue := obj{"severity": "error", "code": code, "diagnostics": a.text()}
	if r := a.reason(); a.class != ErrorTransient && r["coding"] != nil {
		issue["details"] = r
	}
	return obj{"resourceType": "OperationOutcome", "issue": []obj{issue}}
}

// taskVersions: requested (authoredOn), received (the interim answer),
// then completed (outputs; none = not found), rejected, failed or
// cancelled by the requester; lastModified dates each version.
func (x *exchange) taskVersions() []Message {
	q := x.q
	version := func(n int, status string, at time.Time) obj {
		return obj{
			"resourceType": "Task", "id": q.controlID,
			"meta":       obj{"versionId": strconv.Itoa(n), "lastUpdated": fhirTime(at)},
			"identifier": []obj{{"system": taskIDSystem, "value": q.controlID}},
			"status":     status, "intent": "order",
			"code":       obj{"coding": []obj{{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}}},
			"for":        obj{"identifier": x.patientIdent()},
			"authoredOn": fhirTime(q.at), "lastModified": fhirTime(at),
			"requester": orgRef(q.requester), "owner": orgRef(q.responder),
		}
	}
	msgs := []Message{fhirMessage(q.at, KindRequest, q.controlID, version(1, "requested", q.at))}
	n := 1
	if x.ack >= 0 {
		n++
		msgs = append(msgs, x.taskUpdate(x.ackAt(), KindAnswer, version(n, "received", x.ackAt()), n))
	}
	if x.latency < 0 {
		return msgs
	}
	at := x.finalAt()
	n++
	v := version(n, "completed", at)
	kind := KindAnswer
	switch x.class {
	case Fulfilled, FulfilledLate:
		var out []obj
		for i := range x.records {
			out = append(out, obj{"type": obj{"text": "record"}, "valueReference": obj{"reference": "DocumentReference/" + q.controlID + "-" + strconv.Itoa(i+1)}})
		}
		v["output"] = out
	case NotFound:
	case Cancelled:
		v["status"], kind = "cancelled", KindCancel
	case ErrorTransient, ErrorPermanent:
		v["status"], v["statusReason"] = "failed", x.a.reason()
	default:
		v["status"], v["statusReason"] = "rejected", x.a.reason()
	}
	return append(msgs, x.taskUpdate(at, kind, v, n))
}

// taskUpdate is how a later Task version reaches hinscore: posted alone,
// or (PatternSubscription) inside the owner's subscription notification,
// an R4 backport history Bundle: the subscription-status Parameters, then
// the version.
func (x *exchange) taskUpdate(at time.Time, kind MessageKind, v obj, n int) Message {
	id := x.q.controlID + "/" + strconv.Itoa(n)
	if x.spec.name != PatternSubscription {
		return fhirMessage(at, kind, id, v)
	}
	status := obj{"resourceType": "Parameters", "parameter": []obj{
		{"name": "subscription", "valueReference": obj{"reference": "Subscription/" + x.q.responder.Facility}},
		{"name": "status", "valueCode": "active"},
		{"name": "type", "valueCode": "event-notification"},
	}}
	note := obj{
		"resourceType": "Bundle", "id": x.q.controlID + "-n" + strconv.Itoa(n), "type": "history", "timestamp": fhirTime(at),
		"entry": []obj{
			{"resource": status},
			{"resource": v, "request": obj{"method": "PUT", "url": "Task/" + x.q.controlID}, "response": obj{"status": "200"}},
		},
	}
	return fhirMessage(at, kind, id, note)
}

// messageEvents are the message events of the kinds a message asks.
var messageEvents = map[string]string{KindPatientQuery: "patient-query", KindReferral: "referral-request"}

// messageBundles: a message Bundle whose MessageHeader asks, and the
// answer whose MessageHeader.response names it; an ok answer carries the
// records, a failed one an OperationOutcome.
func (x *exchange) messageBundles() []Message {
	q := x.q
	event := obj{"system": "urn:hinscore-sim:message-event", "code": messageEvents[x.kind]}
	req := obj{
		"resourceType": "Bundle", "id": q.controlID + "-b", "type": "message", "timestamp": fhirTime(q.at),
		"entry": []obj{
			{"resource": obj{
				"resourceType": "MessageHeader", "id": q.controlID, "eventCoding": event,
				"source":      obj{"endpoint": endpoint(q.requester)},
				"destination": []obj{{"endpoint": endpoint(q.responder), "receiver": orgRef(q.responder)}},
				"sender":      orgRef(q.requester), "focus": []obj{{"reference": "Patient/p" + q.mrn}},
			}},
			{"resource": obj{"resourceType": "Patient", "id": "p" + q.mrn, "identifier": []obj{x.patientIdent()}}},
		},
	}
	msgs := []Message{fhirMessage(q.at, KindRequest, q.controlID, req)}
	if x.latency < 0 {
		return msgs
	}
	at := x.finalAt()
	code := map[string]string{ErrorTransient: "transient-error", Fulfilled: "ok", FulfilledLate: "ok"}[x.class]
	entries := []obj{{"resource": obj{
		"resourceType": "MessageHeader", "id": q.controlID + "R", "eventCoding": event,
		"source":      obj{"endpoint": endpoint(q.responder)},
		"destination": []obj{{"endpoint": endpoint(q.requester), "receiver": orgRef(q.requester)}},
		"sender":      orgRef(q.responder),
		"response":    obj{"identifier": q.controlID, "code": cmpOr(code, "fatal-error")},
	}}}
	if code == "ok" {
		for i := range x.records {
			entries = append(entries, obj{"resource": x.documentReference(i)})
		}
	} else {
		entries = append(entries, obj{"resource": x.a.outcome()})
	}
	ans := obj{"resourceType": "Bundle", "id": q.controlID + "-r", "type": "message", "timestamp": fhirTime(at), "entry": entries}
	return append(msgs, fhirMessage(at, KindAnswer, q.controlID+"R", ans))
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (x *exchange) documentReference(i int) obj {
	return obj{
		"resourceType": "DocumentReference", "id": x.q.controlID + "-" + strconv.Itoa(i+1), "status": "current",
		"subject": obj{"identifier": x.patientIdent()},
	}
}

// auditEvent is one AuditEvent recording a whole REST exchange: asked at
// period.start, answered at period.end (recorded), outcome 0 success, 4
// a refusal or a client error, 8 a server error.
func (x *exchange) auditEvent() Message {
	q := x.q
	at := x.finalAt()
	entities := []obj{{
		"what": obj{"reference": "Patient/p" + q.mrn, "identifier": x.patientIdent()},
		"type": obj{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
	}}
	if x.kind == KindDocumentQuery {
		entities = append(entities, obj{"what": obj{"reference": "DocumentReference?patient=p" + q.mrn}})
	}
	outcome := map[string]string{ErrorTransient: "8", ErrorPermanent: "4", RefusedException: "4"}[x.class]
	ev := obj{
		"resourceType": "AuditEvent", "id": q.controlID,
		"type":    obj{"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
		"subtype": []obj{{"system": "http://hl7.org/fhir/restful-interaction", "code": "search-type"}},
		"action":  "E", "period": obj{"start": fhirTime(q.at), "end": fhirTime(at)}, "recorded": fhirTime(at),
		"outcome": cmpOr(outcome, "0"),
		"agent": []obj{
			{"who": orgRef(q.requester), "requestor": true},
			{"who": orgRef(q.responder), "requestor": false},
		},
		"source": obj{"observer": orgRef(q.responder)}, "entity": entities,
	}
	if outcome != "" {
		ev["outcomeDesc"] = x.a.text()
	}
	// The one record of both carries the request: it arrives when written.
	return Message{Time: q.at, DeliverAt: at, Kind: KindRequest, ControlID: q.controlID, Raw: mustJSON(ev)}
}

func mustJSON(body obj) []byte { return fhirMessage(time.Time{}, 0, "", body).Raw }

// entries is a batch or a transaction: one to three requests (entries)
// of one kind from one requester to one responder, answered together.
// A batch's entries end each as the responder's mix draws (the first
// decides whether and when the response comes); a transaction's all
// alike. Neither names its parties: the truth's requester and responder
// are empty.
func (g *generator) entries(x *exchange) ([]TruthRow, []Message) {
	n := 1 + g.rng.IntN(3)
	list := []*exchange{x}
	for i := 1; i < n; i++ {
		e := *x
		e.q.mrn = fmt.Sprintf("%07d", g.rng.IntN(10_000_000))
		if x.spec.name == PatternBatch && x.class != Unanswered {
			e.class = g.pickClass(restrictMix(x.mix, []string{Fulfilled, NotFound, RefusedException, RefusedUnjustified, Redirected, ErrorTransient, ErrorPermanent}))
			if e.class == Fulfilled && x.class == FulfilledLate {
				e.class = FulfilledLate
			}
			e.a = g.answerFor(e.class, x.exceptions, x.q.network.ExceptionTextShare)
			e.records = 0
			if e.class == Fulfilled || e.class == FulfilledLate {
				e.records = 1 + g.rng.IntN(3)
			}
		}
		list = append(list, &e)
	}
	corr := x.q.controlID
	var rows []TruthRow
	for i, e := range list {
		if x.spec.name == PatternTxn {
			e.records = 0 // a transaction's answer returns no records
		}
		r := e.row()
		r.ControlID, r.Requester, r.Responder = corr+"#"+strconv.Itoa(i), "", ""
		rows = append(rows, r)
	}
	return rows, x.bundles(list, corr)
}

// bundles are the batch (or transaction) and, unless unanswered, its
// response: entry i answers request entry i; both travel with the
// X-Correlation-ID corr.
func (x *exchange) bundles(list []*exchange, corr string) []Message {
	q := x.q
	typ := "batch"
	if x.spec.name == PatternTxn {
		typ = "transaction"
	}
	var reqs []obj
	for _, e := range list {
		reqs = append(reqs, e.bundleRequest())
	}
	req := obj{"resourceType": "Bundle", "id": corr, "type": typ, "timestamp": fhirTime(q.at), "entry": reqs}
	first := fhirMessage(q.at, KindRequest, corr, req)
	first.CorrelationID = corr
	if x.latency < 0 {
		return []Message{first}
	}
	at := x.finalAt()
	var answers []obj
	for _, e := range list {
		answers = append(answers, e.bundleResponse())
	}
	ans := obj{"resourceType": "Bundle", "id": corr + "-r", "type": typ + "-response", "timestamp": fhirTime(at), "entry": answers}
	second := fhirMessage(at, KindAnswer, corr+"-r", ans)
	second.CorrelationID = corr
	return []Message{first, second}
}

// bundleRequest is a batch's search for the patient (or the patient's
// documents), or a transaction's new Task or ServiceRequest for them.
func (x *exchange) bundleRequest() obj {
	id := x.patientIdent()
	ident := id["system"].(string) + "|" + x.q.mrn
	switch x.kind {
	case KindDocumentQuery:
		return obj{"request": obj{"method": "GET", "url": "DocumentReference?patient.identifier=" + ident}}
	case KindRecordRequest:
		return obj{"request": obj{"method": "POST", "url": "Task"}, "resource": obj{
			"resourceType": "Task", "status": "requested", "intent": "order", "for": obj{"identifier": id},
		}}
	case KindOrder:
		return obj{"request": obj{"method": "POST", "url": "ServiceRequest"}, "resource": obj{
			"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": obj{"identifier": id},
		}}
	}
	return obj{"request": obj{"method": "GET", "url": "Patient?identifier=" + ident}}
}

// httpStatuses are the entry statuses of the classes' answers.
var httpStatuses = map[string]string{
	NotFound: "200 OK", RefusedException: "403 Forbidden", RefusedUnjustified: "403 Forbidden", Redirected: "403 Forbidden",
	ErrorTransient: "503 Service Unavailable", ErrorPermanent: "400 Bad Request",
}

// bundleResponse is the entry answering x: a searchset of the records
// found (none: not found), the created resource, or a status with an
// OperationOutcome.
func (x *exchange) bundleResponse() obj {
	if x.class == Fulfilled || x.class == FulfilledLate {
		if x.spec.name == PatternTxn {
			return obj{"response": obj{"status": "201 Created", "location": x.kindResource() + "/" + x.q.mrn + "/_history/1"}}
		}
		return obj{"response": obj{"status": "200 OK"}, "resource": x.searchset(x.records)}
	}
	if x.class == NotFound {
		return obj{"response": obj{"status": "200 OK"}, "resource": x.searchset(0)}
	}
	return obj{"response": obj{"status": httpStatuses[x.class], "outcome": x.a.outcome()}}
}

func (x *exchange) kindResource() string {
	if x.kind == KindOrder {
		return "ServiceRequest"
	}
	return "Task"
}

// searchset holds n matches: the patient, or the patient's documents.
func (x *exchange) searchset(n int) obj {
	entries := []obj{}
	for i := range n {
		r := obj{"resourceType": "Patient", "id": "p" + x.q.mrn + "-" + strconv.Itoa(i+1), "identifier": []obj{x.patientIdent()}}
		if x.kind == KindDocumentQuery {
			r = x.documentReference(i)
		}
		entries = append(entries, obj{"resource": r})
	}
	return obj{"resourceType": "Bundle", "type": "searchset", "total": n, "entry": entries}
}
