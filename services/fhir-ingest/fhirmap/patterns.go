package fhirmap

import (
	"encoding/json"
	"slices"
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/domain/quality"
)

// messageKinds gives the request kind of a message by its event
// (MessageHeader.eventCoding.code or eventUri, lower case): the first row
// whose text the event contains wins; kind "" makes it a notification.
// Unmatched events are patient queries.
var messageKinds = [...]struct{ contains, kind string }{
	{"notif", ""},
	{"admit", ""},
	{"discharge", ""},
	{"document", KindDocumentQuery},
	{"referral", KindReferral},
	{"service-request", KindReferral},
	{"order", KindOrder},
	{"query", KindPatientQuery},
	{"search", KindPatientQuery},
	{"task", KindRecordRequest},
	{"record", KindRecordRequest},
}

func messageKind(event string) string {
	event = strings.ToLower(event)
	for _, k := range messageKinds {
		if strings.Contains(event, k.contains) {
			return k.kind
		}
	}
	return KindPatientQuery
}

// entryKinds gives the request kind of a batch/transaction entry by its
// method and the resource type its URL names.
var entryKinds = [...]struct{ method, resource, kind string }{
	{"GET", "DocumentReference", KindDocumentQuery},
	{"GET", "Binary", KindDocumentQuery},
	{"GET", "Composition", KindDocumentQuery},
	{"GET", "", KindPatientQuery},
	{"HEAD", "", KindPatientQuery},
	{"POST", "Task", KindRecordRequest},
	{"POST", "ServiceRequest", KindOrder},
	{"POST", "", KindRecordWrite},
	{"PUT", "", KindRecordWrite},
	{"PATCH", "", KindRecordWrite},
	{"DELETE", "", KindRecordWrite},
}

func entryKind(method, rawURL string) (string, bool) {
	res := rawURL
	if i := strings.IndexAny(res, "/?"); i >= 0 {
		res = res[:i]
	}
	for _, k := range entryKinds {
		if k.method == method && (k.resource == "" || k.resource == res) {
			return k.kind, true
		}
	}
	return "", false
}

// bundle maps a Bundle by its type.
func (c *mapCtx) bundle(b *bundle, body []byte, path string, depth int) ([]*hinscorev1.ExchangeEvent, error) {
	ident := identity(b.head, body)
	switch b.Type {
	case "message":
		return c.messageBundle(b, ident, path)
	case "batch", "transaction":
		return c.batch(b, ident, path, false)
	case "batch-response", "transaction-response":
		return c.batch(b, ident, path, true)
	case "history", "subscription-notification":
		return c.history(b, path, depth)
	case "":
		return nil, invalid(path+".type", "missing")
	default:
		return nil, notExchange(path+".type", "a %s Bundle is not an exchange event: send message, batch, transaction, their responses, or history (subscription notification)", b.Type)
	}
}

func bundleTime(b *bundle, path string) timeField {
	if b.Timestamp != "" {
		return timeField{path + ".timestamp", b.Timestamp}
	}
	return metaTime(b.head)
}

// messageBundle maps a message: its first entry is the MessageHeader.
func (c *mapCtx) messageBundle(b *bundle, ident, path string) ([]*hinscorev1.ExchangeEvent, error) {
	if len(b.Entry) == 0 || len(b.Entry[0].Resource) == 0 {
		return nil, invalid(path+".entry[0].resource", "a message Bundle starts with its MessageHeader")
	}
	hpath := path + ".entry[0].resource"
	var mh messageHeader
	if err := decode(b.Entry[0].Resource, &mh, hpath); err != nil {
		return nil, err
	}
	if mh.ResourceType != "MessageHeader" {
		return nil, invalid(hpath, "is a %q: a message Bundle starts with its MessageHeader", mh.ResourceType)
	}
	return c.message(&mh, b, ident, bundleTime(b, path), hpath, path)
}

// message maps a MessageHeader, alone (b nil) or heading its Bundle.
func (c *mapCtx) message(mh *messageHeader, b *bundle, ident string, tf timeField, hpath, path string) ([]*hinscorev1.ExchangeEvent, error) {
	t := c.eventTime(tf)
	event := mh.EventURI
	if mh.EventCoding != nil {
		event = mh.EventCoding.Code
	}
	msgType := "Bundle/message"
	if b == nil {
		msgType = "MessageHeader"
	}
	if event != "" {
		msgType += "^" + event
	}
	var dest messageDestination
	if len(mh.Destination) > 0 {
		dest = mh.Destination[0]
	}
	var src messageSource
	if mh.Source != nil {
		src = *mh.Source
	}
	ev := c.newEvent(ident, "", mh.ID, msgType, t)
	senderOrg := org(mh.Sender)
	if senderOrg == "" {
		senderOrg = src.Endpoint
	}
	receiverOrg := org(dest.Receiver)
	if receiverOrg == "" {
		receiverOrg = dest.Endpoint
	}
	var entries []entry
	if b != nil {
		entries = b.Entry[1:]
	}
	var pp purposes
	if b != nil {
		pp.labels(b.head)
	}
	pp.labels(mh.head)
	if mh.Response != nil {
		pp.apply(ev) // an answer's own labels only: its entries are what it returns
		return c.messageAnswer(ev, mh, entries, dest, senderOrg, receiverOrg, hpath, path)
	}
	if mh.ID == "" {
		return nil, invalid(hpath+".id", "a request MessageHeader needs an id: its answer names it in response.identifier")
	}
	ev.RequestKind = messageKind(event)
	ev.Role = hinscorev1.Role_ROLE_REQUEST
	if ev.RequestKind == "" {
		ev.Role = hinscorev1.Role_ROLE_NOTIFICATION
	}
	ev.CorrelationKey = key(c.in.Network, src.Endpoint, mh.ID)
	ev.RequesterOrg, ev.ResponderOrg = senderOrg, receiverOrg
	for _, e := range entries {
		pp.resource(e.Resource) // the focus of the message and what supports it
		if ev.PatientToken == "" {
			c.patientFrom(ev, e.Resource)
		}
	}
	pp.apply(ev)
	for _, f := range mh.Focus {
		if ev.PatientToken == "" && strings.HasPrefix(f.Reference, "Patient") {
			c.patientToken(ev, f.Identifier)
		}
	}
	return []*hinscorev1.ExchangeEvent{ev}, nil
}

// messageAnswer maps the answer a MessageHeader carries (its response
// names the request): the status of its code and issues, and the records
// its other entries hold.
func (c *mapCtx) messageAnswer(ev *hinscorev1.ExchangeEvent, mh *messageHeader, entries []entry, dest messageDestination, senderOrg, receiverOrg, hpath, path string) ([]*hinscorev1.ExchangeEvent, error) {
	if mh.Response.Identifier == "" {
		return nil, invalid(hpath+".response.identifier", "an answer must name the MessageHeader.id of its request")
	}
	ev.Role = hinscorev1.Role_ROLE_RESPONSE
	ev.InReplyTo = mh.Response.Identifier
	ev.CorrelationKey = key(c.in.Network, dest.Endpoint, mh.Response.Identifier)
	ev.RequesterOrg, ev.ResponderOrg = receiverOrg, senderOrg
	ev.AckCode = mh.Response.Code
	rule, ok := c.m.Table.Lookup(SourceMessage, mh.Response.Code)
	if !ok {
		return nil, badValue(hpath+".response.code", "%q: want ok, transient-error or fatal-error", mh.Response.Code)
	}
	ev.Status = rule.Status
	var r reasons
	r.add(SourceMessage + "|" + mh.Response.Code)
	records := uint32(0)
	for i, e := range entries {
		h, err := decodeHead(e.Resource)
		if err != nil {
			return nil, within(path+".entry["+itoa(i+1)+"].resource", err)
		}
		switch h.ResourceType {
		case "OperationOutcome":
			var oo operationOutcome
			if err := decode(e.Resource, &oo, path+".entry["+itoa(i+1)+"].resource"); err != nil {
				return nil, err
			}
			if st, known, _ := c.issues(&oo, &r); known && ev.Status != hinscorev1.Status_STATUS_OK {
				ev.Status = st
			}
		case "Patient":
			c.patientFrom(ev, e.Resource)
		default:
			records++
		}
	}
	if ev.Status == hinscorev1.Status_STATUS_OK {
		ev.RecordCount = records
	}
	r.apply(ev)
	return []*hinscorev1.ExchangeEvent{ev}, nil
}

// patientFrom sets the token from a Patient, or from the subject of a Task
// or the patients of a searchset, when raw is one of those.
func (c *mapCtx) patientFrom(ev *hinscorev1.ExchangeEvent, raw json.RawMessage) {
	var p struct {
		patient
		For     *reference `json:"for"`
		Subject *reference `json:"subject"`
		Entry   []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return
	}
	switch p.ResourceType {
	case "Patient":
		for i := range p.Identifier {
			if p.Identifier[i].Value != "" {
				c.patientToken(ev, &p.Identifier[i])
				return
			}
		}
	case "Bundle":
		for _, e := range p.Entry {
			if ev.PatientToken != "" {
				return
			}
			c.patientFrom(ev, e.Resource)
		}
	default:
		for _, r := range []*reference{p.For, p.Subject} {
			if r != nil && ev.PatientToken == "" {
				c.patientToken(ev, r.Identifier)
			}
		}
	}
}

// batch maps each entry of a batch or transaction (requests) or of their
// responses, keyed by the correlation id and the entry position.
func (c *mapCtx) batch(b *bundle, ident, path string, response bool) ([]*hinscorev1.ExchangeEvent, error) {
	corr := c.in.CorrelationID
	if corr == "" && b.Identifier != nil {
		corr = b.Identifier.Value
	}
	if corr == "" {
		corr = b.ID
	}
	if corr == "" {
		return nil, invalid(path+".id", "a %s needs an X-Correlation-ID header, Bundle.identifier or Bundle.id to meet its answer", b.Type)
	}
	t := c.eventTime(bundleTime(b, path))
	if len(b.Entry) == 0 {
		return nil, invalid(path+".entry", "a %s without entries", b.Type)
	}
	// An entry's own labels come before its Bundle's; an answer's entries
	// are what it returns, so a response takes its Bundle's only.
	var bundlePurposes purposes
	bundlePurposes.labels(b.head)
	events := make([]*hinscorev1.ExchangeEvent, 0, len(b.Entry))
	for i, e := range b.Entry {
		epath := path + ".entry[" + itoa(i) + "]"
		pos := "#" + itoa(i)
		ev := c.newEvent(ident, "entry"+pos, corr+pos, "Bundle/"+b.Type, t)
		ev.CorrelationKey = key(c.in.Network, "", corr+pos)
		if !response {
			if e.Request == nil || e.Request.Method == "" || e.Request.URL == "" {
				return nil, invalid(epath+".request", "a %s entry needs request.method and request.url", b.Type)
			}
			kind, ok := entryKind(e.Request.Method, e.Request.URL)
			if !ok {
				return nil, badValue(epath+".request.method", "%q is not an HTTP verb of FHIR", e.Request.Method)
			}
			ev.Role, ev.RequestKind = hinscorev1.Role_ROLE_REQUEST, kind
			ev.MessageType += "^" + e.Request.Method
			c.patientToken(ev, queryPatient(e.Request.URL))
			if ev.PatientToken == "" && len(e.Resource) > 0 {
				c.patientFrom(ev, e.Resource)
			}
			var pp purposes
			pp.resource(e.Resource)
			append(pp, bundlePurposes...).apply(ev)
			events = append(events, ev)
			continue
		}
		if e.Response == nil {
			// An answer without its status is still an answer: read as
			// one whose status says nothing (flagged).
			e.Response = &entryResponse{}
		}
		ev.Role = hinscorev1.Role_ROLE_RESPONSE
		ev.InReplyTo = corr + pos
		var oo *operationOutcome
		if len(e.Response.Outcome) > 0 {
			oo = &operationOutcome{}
			if err := decode(e.Response.Outcome, oo, epath+".response.outcome"); err != nil {
				return nil, err
			}
		}
		var r reasons
		c.httpAnswer(ev, e.Response.Status, oo, &r)
		if len(e.Resource) > 0 {
			c.searchResult(ev, e.Resource)
			c.patientFrom(ev, e.Resource)
		}
		r.apply(ev)
		bundlePurposes.apply(ev)
		events = append(events, ev)
	}
	return events, nil
}

// searchResult reads how many records a searchset answer holds: none is
// "not found".
func (c *mapCtx) searchResult(ev *hinscorev1.ExchangeEvent, raw json.RawMessage) {
	var s struct {
		ResourceType string            `json:"resourceType"`
		Type         string            `json:"type"`
		Total        *uint32           `json:"total"`
		Entry        []json.RawMessage `json:"entry"`
	}
	if json.Unmarshal(raw, &s) != nil || s.ResourceType != "Bundle" || s.Type != "searchset" {
		return
	}
	n := uint32(len(s.Entry))
	if s.Total != nil {
		n = *s.Total
	}
	ev.RecordCount = n
	if n == 0 && ev.Status == hinscorev1.Status_STATUS_OK {
		ev.Status = hinscorev1.Status_STATUS_NOT_FOUND
	}
}

// history maps a history Bundle or a subscription notification: each entry
// is mapped as if posted alone (so a Task version seen both ways has the
// same event id); the SubscriptionStatus (R4B/R5) or its Parameters (R4
// backport) and non-exchange resources (included Patients ...) are skipped.
func (c *mapCtx) history(b *bundle, path string, depth int) ([]*hinscorev1.ExchangeEvent, error) {
	var events []*hinscorev1.ExchangeEvent
	var numbered []numberedEntry
	for i, e := range b.Entry {
		if len(e.Resource) == 0 {
			continue // a deleted version, or an id-only notification
		}
		epath := path + ".entry[" + itoa(i) + "].resource"
		h, err := decodeHead(e.Resource)
		if err != nil {
			return nil, within(epath, err)
		}
		switch h.ResourceType {
		case "Bundle", "Task", "MessageHeader", "AuditEvent":
		default:
			continue
		}
		_, evs, err := c.resource(h.ResourceType, e.Resource, epath, depth+1)
		if err != nil {
			return nil, within(epath, err)
		}
		events = append(events, evs...)
		if len(evs) > 0 {
			numbered = append(numbered, numberedEntry{fullURL: e.FullURL, typeID: h.ResourceType + "/" + h.ID, events: evs})
		}
	}
	readNumbering(b).stamp(numbered)
	return events, nil
}

// task maps one Task version by its status (the task rows of the table).
func (c *mapCtx) task(tk *task, body []byte, path string) ([]*hinscorev1.ExchangeEvent, error) {
	rule, ok := c.m.Table.Lookup(SourceTask, tk.Status)
	if !ok {
		if tk.Status == "" {
			return nil, invalid(path+".status", "missing")
		}
		return nil, badValue(path+".status", "%q is not a Task status", tk.Status)
	}
	taskID := ""
	for _, id := range tk.Identifier {
		if id.Value != "" {
			taskID = id.System + "|" + id.Value
			break
		}
	}
	if taskID == "" && tk.ID != "" {
		taskID = "Task/" + tk.ID
	}
	if taskID == "" {
		return nil, invalid(path+".identifier", "a Task needs an identifier or an id: its versions are linked by it")
	}
	modified := []timeField{{path + ".lastModified", tk.LastModified}, metaTime(tk.head)}
	authored := timeField{path + ".authoredOn", tk.AuthoredOn}
	var t timeFieldList
	if rule.Role == hinscorev1.Role_ROLE_REQUEST {
		t = append(timeFieldList{authored}, modified...)
	} else {
		t = append(modified, authored)
	}
	when := c.eventTime(t...)
	msgID := taskID
	if tk.ID != "" {
		msgID = "Task/" + tk.ID
		if tk.Meta != nil && tk.Meta.VersionID != "" {
			msgID += "/_history/" + tk.Meta.VersionID
		}
	}
	ev := c.newEvent(identity(tk.head, body), "", msgID, "Task^"+tk.Status, when)
	ev.Role, ev.Status = rule.Role, rule.Status
	ev.AckCode = tk.Status
	requester, owner := org(tk.Requester), org(tk.Owner)
	ev.CorrelationKey = key(c.in.Network, requester, taskID)
	ev.RequesterOrg, ev.ResponderOrg = requester, owner
	if ev.Role == hinscorev1.Role_ROLE_REQUEST {
		ev.RequestKind = KindRecordRequest
	}
	if tk.For != nil {
		c.patientToken(ev, tk.For.Identifier)
	}
	var pp purposes
	pp.labels(tk.head) // every version of the Task: an answer that keeps them says its request's purpose
	pp.taskInputs(tk.Input)
	pp.apply(ev)
	if ev.Role == hinscorev1.Role_ROLE_RESPONSE || ev.Role == hinscorev1.Role_ROLE_CANCEL {
		var r reasons
		r.add(SourceTask + "|" + tk.Status)
		r.concept(tk.StatusReason)
		r.concept(tk.BusinessStatus)
		if tk.Status == "completed" {
			ev.RecordCount = uint32(len(tk.Output))
			if len(tk.Output) == 0 {
				ev.Status = hinscorev1.Status_STATUS_NOT_FOUND
			}
		} else if ev.Role == hinscorev1.Role_ROLE_RESPONSE {
			// A reason coded in the issue-type vocabulary (throttled,
			// too-costly, not-found ...) is more precise than the status.
			for _, cc := range []*codeableConcept{tk.StatusReason, tk.BusinessStatus} {
				if cc == nil {
					continue
				}
				for _, cd := range cc.Coding {
					if ir, ok := c.m.Table.Lookup(SourceIssue, cd.Code); ok {
						ev.Status = ir.Status
					}
				}
			}
		}
		r.apply(ev)
	}
	return []*hinscorev1.ExchangeEvent{ev}, nil
}

type timeFieldList = []timeField

// auditExchangeTypes are the AuditEvent.type codes that record an
// exchange (a REST interaction, a DICOM query or export); any other
// AuditEvent (login, application start ...) is a notification.
var auditExchangeTypes = [...]string{"rest", "110112", "110106"}

// audit maps an AuditEvent of an exchange to its request and its answer;
// one of a cross-community transaction goes through lib/atna/toevent
// (auditatna.go).
func (c *mapCtx) audit(a *auditEvent, body []byte, path string) ([]*hinscorev1.ExchangeEvent, error) {
	if a.Recorded == "" && (a.Period == nil || a.Period.Start == "") {
		// recorded is required, but the exchange is still identified: it
		// is dated by its arrival.
		c.flag(quality.NoTimestamp)
	}
	if evs, ok, err := c.crossCommunity(a, body, path); ok {
		return evs, err
	}
	ident := identity(a.head, body)
	recorded := timeField{path + ".recorded", a.Recorded}
	typ := ""
	if a.Type != nil {
		typ = a.Type.Code
	}
	exchange := slices.Contains(auditExchangeTypes[:], typ)
	msgType := "AuditEvent^" + typ
	if len(a.Subtype) > 0 && a.Subtype[0].Code != "" {
		msgType += "^" + a.Subtype[0].Code
	}
	msgID := "AuditEvent/" + a.ID
	if a.ID == "" {
		msgID = ident
	}
	requester, responder := a.parties()
	kind := KindPatientQuery
	var pid *identifier
	for _, e := range a.Entity {
		if e.What == nil {
			continue
		}
		ref := e.What.Reference
		if strings.HasPrefix(ref, "DocumentReference") || strings.HasPrefix(ref, "Binary") {
			kind = KindDocumentQuery
		}
		if pid == nil && e.What.Identifier != nil && (strings.HasPrefix(ref, "Patient") || (e.Type != nil && e.Type.Code == "1")) {
			pid = e.What.Identifier
		}
	}
	var pp purposes
	pp.concepts(a.purposeConcepts())
	rule, known := c.m.Table.Lookup(SourceAudit, a.Outcome)
	if exchange && !known {
		// Observed, but how it ended is not said (or not in a form we
		// read): recorded, flagged, and not scored, rather than refused.
		c.flag(quality.NoOutcome)
		exchange = false
	}
	if !exchange {
		t := c.eventTime(recorded)
		ev := c.newEvent(ident, "", msgID, msgType, t)
		ev.Role = hinscorev1.Role_ROLE_NOTIFICATION
		ev.CorrelationKey = key(c.in.Network, requester, msgID)
		ev.RequesterOrg, ev.ResponderOrg = requester, responder
		c.patientToken(ev, pid)
		pp.apply(ev)
		return []*hinscorev1.ExchangeEvent{ev}, nil
	}
	var start, end timeField
	if a.Period != nil {
		start, end = timeField{path + ".period.start", a.Period.Start}, timeField{path + ".period.end", a.Period.End}
	}
	reqTime := c.eventTime(start, recorded)
	ansTime := c.eventTime(end, recorded)
	corr := key(c.in.Network, requester, msgID)
	req := c.newEvent(ident, "request", msgID, msgType, reqTime)
	req.Role, req.RequestKind, req.CorrelationKey = hinscorev1.Role_ROLE_REQUEST, kind, corr
	req.RequesterOrg, req.ResponderOrg = requester, responder
	ans := c.newEvent(ident, "response", msgID, msgType, ansTime)
	ans.Role, ans.Status, ans.CorrelationKey, ans.InReplyTo = rule.Role, rule.Status, corr, msgID
	ans.RequesterOrg, ans.ResponderOrg = requester, responder
	ans.AckCode = a.Outcome
	c.patientToken(req, pid)
	c.patientToken(ans, pid)
	pp.apply(req, ans) // one AuditEvent records both: the answer says the purpose too
	var r reasons
	r.add(SourceAudit + "|" + a.Outcome)
	r.text(a.OutcomeDesc)
	r.apply(ans)
	return []*hinscorev1.ExchangeEvent{req, ans}, nil
}

// parties are an AuditEvent's requester (the first requesting agent) and
// responder (the observer, else the first other agent).
func (a *auditEvent) parties() (requester, responder string) {
	for _, ag := range a.Agent {
		name := org(ag.Who)
		if name == "" {
			name = ag.Name
		}
		if ag.Requestor && requester == "" {
			requester = name
		} else if !ag.Requestor && responder == "" {
			responder = name
		}
	}
	if a.Source != nil && org(a.Source.Observer) != "" {
		responder = org(a.Source.Observer)
	}
	return requester, responder
}

// outcome maps an OperationOutcome posted alone: the answer to the request
// its X-Correlation-ID names.
func (c *mapCtx) outcome(oo *operationOutcome, body []byte, path string) ([]*hinscorev1.ExchangeEvent, error) {
	if c.in.CorrelationID == "" {
		return nil, notExchange(path, "an OperationOutcome alone names no request: send it with the X-Correlation-ID of the request it answers, or inside its batch-response or message")
	}
	if len(oo.Issue) == 0 {
		return nil, invalid(path+".issue", "missing")
	}
	t := c.eventTime(metaTime(oo.head))
	ev := c.newEvent(identity(oo.head, body), "", c.in.CorrelationID, "OperationOutcome", t)
	ev.Role = hinscorev1.Role_ROLE_RESPONSE
	ev.CorrelationKey = key(c.in.Network, "", c.in.CorrelationID)
	ev.InReplyTo = c.in.CorrelationID
	var r reasons
	st, known, failed := c.issues(oo, &r)
	switch {
	case known:
	case failed:
		// An error the table has no row for is still an error, never a
		// success.
		st = hinscorev1.Status_STATUS_ERROR_PERMANENT
	default:
		var noted bool
		if st, noted = c.note(oo); !noted {
			st = hinscorev1.Status_STATUS_OK // only warnings and information of no consequence: it succeeded
		}
	}
	ev.Status = st
	r.apply(ev)
	return []*hinscorev1.ExchangeEvent{ev}, nil
}
