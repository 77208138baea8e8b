package simulator

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var xcaStart = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func xcaPlan(t *testing.T, cfg XCAConfig) *XCAPlan {
	t.Helper()
	if cfg.Start.IsZero() {
		cfg.Start = xcaStart
	}
	p, err := GenerateXCA(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The audit as encoding/xml reads it, by local names (any prefix), with
// either schema's coded-value attributes.
type tCode struct {
	CSD     string `xml:"csd-code,attr"`
	Code    string `xml:"code,attr"`
	System  string `xml:"codeSystemName,attr"`
	Orig    string `xml:"originalText,attr"`
	Display string `xml:"displayName,attr"`
}

func (c tCode) code() string { return c.CSD + c.Code }

type tObject struct {
	ID      string `xml:"ParticipantObjectID,attr"`
	Type    int    `xml:"ParticipantObjectTypeCode,attr"`
	Role    int    `xml:"ParticipantObjectTypeCodeRole,attr"`
	IDType  tCode  `xml:"ParticipantObjectIDTypeCode"`
	Query   string `xml:"ParticipantObjectQuery"`
	Details []struct {
		Type  string `xml:"type,attr"`
		Value string `xml:"value,attr"`
	} `xml:"ParticipantObjectDetail"`
}

func (o tObject) detail(t *testing.T, typ string) string {
	for _, d := range o.Details {
		if d.Type == typ {
			b, err := base64.StdEncoding.DecodeString(d.Value)
			if err != nil {
				t.Fatalf("detail %s: %v", typ, err)
			}
			return string(b)
		}
	}
	return ""
}

type tAudit struct {
	XMLName xml.Name `xml:"AuditMessage"`
	Event   struct {
		Action   string  `xml:"EventActionCode,attr"`
		DateTime string  `xml:"EventDateTime,attr"`
		Outcome  int     `xml:"EventOutcomeIndicator,attr"`
		ID       tCode   `xml:"EventID"`
		Types    []tCode `xml:"EventTypeCode"`
		Desc     string  `xml:"EventOutcomeDescription"`
		Purposes []tCode `xml:"PurposeOfUse"`
	} `xml:"EventIdentification"`
	Participants []struct {
		UserID    string  `xml:"UserID,attr"`
		UserName  string  `xml:"UserName,attr"`
		Requestor bool    `xml:"UserIsRequestor,attr"`
		Host      string  `xml:"NetworkAccessPointID,attr"`
		Roles     []tCode `xml:"RoleIDCode"`
	} `xml:"ActiveParticipant"`
	Source struct {
		ID   string `xml:"AuditSourceID,attr"`
		Site string `xml:"AuditEnterpriseSiteID,attr"`
	} `xml:"AuditSourceIdentification"`
	Objects []tObject `xml:"ParticipantObjectIdentification"`
}

var (
	rfc5424Header = regexp.MustCompile(`^<85>1 (\S+) (\S+) IHE_XCA_GW \d+ IHE\+RFC-3881 - \x{FEFF}`)
	bsdHeader     = regexp.MustCompile(`^<85>([A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d) (\S+) IHE_XCA_GW\[\d+\]: `)
)

// syslogBody checks a syslog message's header against the gateway and the
// record's time, and returns the AuditMessage.
func syslogBody(t *testing.T, gw Gateway, m XCAMessage) []byte {
	t.Helper()
	if gw.Syslog == SyslogBSD {
		h := bsdHeader.FindSubmatch(m.Raw)
		if h == nil || string(h[2]) != gw.Host || string(h[1]) != m.Time.UTC().Format(time.Stamp) {
			t.Fatalf("%s: BSD header: %.80q", gw.ID, m.Raw)
		}
		return m.Raw[len(h[0]):]
	}
	h := rfc5424Header.FindSubmatch(m.Raw)
	if h == nil || string(h[2]) != gw.Host || string(h[1]) != m.Time.UTC().Format(auditTime) {
		t.Fatalf("%s: RFC 5424 header: %.80q", gw.ID, m.Raw)
	}
	return m.Raw[len(h[0]):]
}

// wellFormed reads a document to its end with encoding/xml.
func wellFormed(t *testing.T, what string, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("%s: not well-formed XML: %v\n%s", what, err, b)
		}
	}
}

func gatewayOf(t *testing.T, p *XCAPlan, network, id string) Gateway {
	n, _ := p.Network(network)
	for _, g := range n.Gateways {
		if g.ID == id {
			return g
		}
	}
	t.Fatalf("no gateway %s/%s", network, id)
	return Gateway{}
}

func TestXCAAuditsAreWellFormedAndTrue(t *testing.T) {
	checkAudits(t, xcaPlan(t, XCAConfig{Journeys: 400}))
}

// TestXCAPartialQueries: a behaviour the defaults do not have (partial
// query answers, which the default mixes keep to retrieves) gives audits
// and SOAP copies as true as the others.
func TestXCAPartialQueries(t *testing.T) {
	b := XCABehaviours()
	for i := range b {
		b[i].Query = []ClassWeight{{Partial, 1}}
	}
	p := xcaPlan(t, XCAConfig{Journeys: 60, Behaviours: b})
	partial := 0
	for _, r := range p.Requests() {
		if r.Kind == KindDocumentQuery {
			partial++
			if r.Outcome != Partial || r.Documents < 1 || r.ErrorCode != "XDSUnavailableCommunity" {
				t.Fatalf("%s: partial query %+v", r.TransactionID, r)
			}
		}
	}
	if partial == 0 {
		t.Fatal("no query")
	}
	checkAudits(t, p)
	checkSOAPCopies(t, p)
}

func checkAudits(t *testing.T, p *XCAPlan) {
	t.Helper()
	rows := map[string]XCATruthRow{}
	for _, r := range p.Requests() {
		rows[r.TransactionID] = r
	}
	shapes, what := map[string]int{}, map[string]int{}
	audits := 0
	for _, m := range p.AllMessages("carequal-east") {
		gw := gatewayOf(t, p, m.Network, m.Gateway)
		body := syslogBody(t, gw, m)
		wellFormed(t, m.Gateway, body)
		var a tAudit
		if err := xml.Unmarshal(body, &a); err != nil {
			t.Fatalf("%s: %v", m.Gateway, err)
		}
		r, ok := rows[m.TransactionID]
		if !ok {
			t.Fatalf("message of unknown transaction %s", m.TransactionID)
		}
		checkAudit(t, p, r, m, gw, a)
		shapes[gw.Shape]++
		audits++
		what[m.What]++
	}
	if audits == 0 || len(shapes) != 3 {
		t.Fatalf("audits %d, shapes %v: want all three shapes", audits, shapes)
	}
	if what["audit-deferred-request"] == 0 || what["audit-deferred-response"] == 0 {
		t.Fatalf("audit records %v: want deferred-mode records", what)
	}
}

func checkAudit(t *testing.T, p *XCAPlan, r XCATruthRow, m XCAMessage, gw Gateway, a tAudit) {
	t.Helper()
	n, _ := p.Network(r.Network)
	wantEvent, wantAction := "110112", "E"
	if r.Kind == KindDocumentRetrieve {
		wantEvent, wantAction = "110107", "C"
		if m.Side == SideResponding {
			wantEvent, wantAction = "110106", "R"
		}
	}
	if a.Event.ID.code() != wantEvent || a.Event.Action != wantAction || len(a.Event.Types) != 1 ||
		a.Event.Types[0].code() != r.Transaction || a.Event.Types[0].System != "IHE Transactions" {
		t.Fatalf("%s %s: event %+v, want %s %s %s", r.TransactionID, m.Side, a.Event, wantEvent, wantAction, r.Transaction)
	}
	mode := map[string]string{"audit-deferred-request": "Deferred Request", "audit-deferred-response": "Deferred Response"}[m.What]
	if name := a.Event.Types[0].Display + a.Event.Types[0].Orig; (mode != "") != r.Deferred ||
		(mode != "") != strings.Contains(name, "Deferred") || !strings.Contains(name, mode) {
		t.Fatalf("%s: record %s named %q, deferred %v", r.TransactionID, m.What, name, r.Deferred)
	}
	if a.Event.Outcome != r.EventOutcome || (r.EventOutcome != 0) != (a.Event.Desc != "") {
		t.Fatalf("%s: outcome %d %q, truth %d", r.TransactionID, a.Event.Outcome, a.Event.Desc, r.EventOutcome)
	}
	if r.ExceptionCode != "" && !strings.Contains(a.Event.Desc, r.ExceptionCode) {
		t.Fatalf("%s: description %q does not cite %s", r.TransactionID, a.Event.Desc, r.ExceptionCode)
	}
	if at, err := time.Parse(time.RFC3339Nano, a.Event.DateTime); err != nil || !at.Equal(m.Time) {
		t.Fatalf("%s: EventDateTime %q, message time %s", r.TransactionID, a.Event.DateTime, m.Time)
	}
	var purpose string
	for _, pu := range a.Event.Purposes {
		purpose = pu.System + "|" + pu.code()
	}
	if purpose != r.PurposeCode {
		t.Fatalf("%s: purpose %q, truth %q", r.TransactionID, purpose, r.PurposeCode)
	}
	if a.Source.ID != gw.ID || a.Source.Site != gw.Community {
		t.Fatalf("%s: source %+v, want %s", r.TransactionID, a.Source, gw.ID)
	}
	checkParticipants(t, n, r, a)
	checkObjects(t, r, a)
}

// checkParticipants: Source and Destination are the gateways (the
// responding one is the Source of a retrieve), a human requestor is a
// person, never one of the network's organisations.
func checkParticipants(t *testing.T, n XCANetwork, r XCATruthRow, a tAudit) {
	t.Helper()
	src, dst := r.RequesterCommunity, r.ResponderCommunity
	if r.Kind == KindDocumentRetrieve {
		src, dst = dst, src
	}
	roles := map[string]string{}
	requestors := 0
	for _, ap := range a.Participants {
		if ap.Requestor {
			requestors++
		}
		if len(ap.Roles) == 0 || ap.Roles[0].System != "DCM" {
			for _, g := range n.Gateways {
				if strings.Contains(ap.UserName+ap.UserID, g.Name) || ap.UserID == g.ID || ap.UserID == g.Community {
					t.Fatalf("%s: human requestor %q names organisation %s", r.TransactionID, ap.UserName, g.Name)
				}
			}
			if !ap.Requestor {
				t.Fatalf("%s: human participant not the requestor", r.TransactionID)
			}
			continue
		}
		for _, g := range n.Gateways {
			if g.Host == ap.Host {
				roles[ap.Roles[0].code()] = g.Community
			}
		}
	}
	if roles["110153"] != src || roles["110152"] != dst || requestors != 1 {
		t.Fatalf("%s %s: source %s destination %s requestors %d, want %s %s 1", r.TransactionID, r.Kind, roles["110153"], roles["110152"], requestors, src, dst)
	}
}

func checkObjects(t *testing.T, r XCATruthRow, a tAudit) {
	t.Helper()
	var patients, queries, docs int
	for _, o := range a.Objects {
		switch {
		case o.Type == 1 && o.Role == 1:
			patients++
			if o.ID != r.Patient {
				t.Fatalf("%s: patient %q, truth %q", r.TransactionID, o.ID, r.Patient)
			}
		case o.Type == 2 && o.Role == 24:
			queries++
			q, err := base64.StdEncoding.DecodeString(o.Query)
			if err != nil || o.IDType.code() != r.Transaction {
				t.Fatalf("%s: query object %+v: %v", r.TransactionID, o.IDType, err)
			}
			wellFormed(t, r.TransactionID+" query", q)
			if home := o.detail(t, "ihe:homeCommunityID"); home != r.ResponderCommunity {
				t.Fatalf("%s: query home %q, truth %q", r.TransactionID, home, r.ResponderCommunity)
			}
		case o.Type == 2 && o.Role == 3:
			docs++
			if o.detail(t, "ihe:homeCommunityID") != r.ResponderCommunity || o.detail(t, "Repository Unique Id") == "" {
				t.Fatalf("%s: document object %+v", r.TransactionID, o)
			}
		}
	}
	wantQ, wantD := 1, 0
	if r.Kind == KindDocumentRetrieve {
		wantQ, wantD = 0, r.Documents
	}
	if patients != 1 || queries != wantQ || docs != wantD {
		t.Fatalf("%s: %d patients, %d queries, %d documents; want 1, %d, %d", r.TransactionID, patients, queries, docs, wantQ, wantD)
	}
}

// tEnvelope reads the parts of a SOAP copy the truth speaks of.
type tEnvelope struct {
	Header struct {
		Action    string `xml:"Action"`
		MessageID string `xml:"MessageID"`
		RelatesTo string `xml:"RelatesTo"`
		Security  struct {
			Created   string `xml:"Timestamp>Created"`
			Attribute []struct {
				Name  string `xml:"Name,attr"`
				Value struct {
					Text    string `xml:",chardata"`
					Purpose struct {
						Code       string `xml:"code,attr"`
						CodeSystem string `xml:"codeSystem,attr"`
					} `xml:"PurposeOfUse"`
				} `xml:"AttributeValue"`
			} `xml:"Assertion>AttributeStatement>Attribute"`
		} `xml:"Security"`
	} `xml:"Header"`
	Body struct {
		Inner []byte `xml:",innerxml"`
	} `xml:"Body"`
}

func TestXCASOAPCopiesAreWellFormedAndTrue(t *testing.T) {
	p := xcaPlan(t, XCAConfig{Journeys: 400})
	seen := checkSOAPCopies(t, p)
	if seen["request"] == 0 || seen["response"] == 0 || seen["deferred-response"] == 0 || seen["ack"] != seen["deferred-response"] || seen["deferred-response-ack"] != seen["deferred-response"] {
		t.Fatalf("SOAP copies %v: want requests, responses and deferred responses", seen)
	}
}

// checkSOAPCopies checks every SOAP copy against its truth row and counts
// them by kind.
func checkSOAPCopies(t *testing.T, p *XCAPlan) map[string]int {
	t.Helper()
	rows := map[string]XCATruthRow{}
	for _, r := range p.Requests() {
		rows[r.TransactionID] = r
	}
	seen := map[string]int{}
	for _, m := range p.AllMessages("ehx-central") {
		wellFormed(t, m.What, m.Raw)
		var e tEnvelope
		if err := xml.Unmarshal(m.Raw, &e); err != nil {
			t.Fatal(err)
		}
		r := rows[m.TransactionID]
		created, err := time.Parse(time.RFC3339Nano, e.Header.Security.Created)
		if err != nil || !created.Equal(m.Time) {
			t.Fatalf("%s %s: wsu:Created %q, time %s", r.TransactionID, m.What, e.Header.Security.Created, m.Time)
		}
		if !m.Duplicate {
			seen[m.What]++
		}
		switch m.What {
		case "request":
			if e.Header.MessageID != r.TransactionID || e.Header.RelatesTo != "" || !m.Time.Equal(r.RequestedAt) {
				t.Fatalf("%s: request MessageID %q", r.TransactionID, e.Header.MessageID)
			}
			checkAssertion(t, r, e)
		case "response", "deferred-response":
			if e.Header.RelatesTo != r.TransactionID || !m.Time.Equal(r.AnsweredAt) {
				t.Fatalf("%s: %s RelatesTo %q at %s, truth answered %s", r.TransactionID, m.What, e.Header.RelatesTo, m.Time, r.AnsweredAt)
			}
			checkSOAPAnswer(t, r, string(e.Body.Inner))
		case "ack":
			if !r.Deferred || e.Header.RelatesTo != r.TransactionID {
				t.Fatalf("%s: deferred-mode ack of a transaction not deferred", r.TransactionID)
			}
		case "deferred-response-ack":
			if !r.Deferred || e.Header.RelatesTo == "" || e.Header.RelatesTo == r.TransactionID {
				t.Fatalf("%s: the acknowledgement of a deferred response must relate to the response, not the request", r.TransactionID)
			}
		}
	}
	return seen
}

func checkAssertion(t *testing.T, r XCATruthRow, e tEnvelope) {
	t.Helper()
	var purpose, org string
	for _, a := range e.Header.Security.Attribute {
		switch a.Name {
		case "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse":
			purpose = "urn:oid:" + a.Value.Purpose.CodeSystem + "|" + a.Value.Purpose.Code
		case "urn:nhin:names:saml:homeCommunityId":
			org = a.Value.Text
		}
	}
	if purpose != r.PurposeCode && !(purpose == "" && r.PurposeCode == "") {
		t.Fatalf("%s: assertion purpose %q, truth %q", r.TransactionID, purpose, r.PurposeCode)
	}
	if org != r.RequesterCommunity {
		t.Fatalf("%s: assertion community %q, truth %q", r.TransactionID, org, r.RequesterCommunity)
	}
}

// checkSOAPAnswer: the status the answer gives is the truth's.
func checkSOAPAnswer(t *testing.T, r XCATruthRow, body string) {
	t.Helper()
	var want []string
	switch {
	case r.ErrorCode == FaultCode:
		want = []string{"<soap:Fault>"}
	case r.Kind == KindPatientDiscovery && strings.HasSuffix(r.ErrorCode, "Requested"):
		want = []string{`<queryResponseCode code="NF"/>`, `<code code="` + r.ErrorCode + `" codeSystem="1.3.6.1.4.1.19376.1.2.27.1"/>`}
	case r.Kind == KindPatientDiscovery:
		code := r.ErrorCode
		if code == "" {
			code = "OK"
		}
		want = []string{`<queryResponseCode code="` + code + `"/>`}
	case r.Outcome == Partial:
		want = []string{"ResponseStatusType:PartialSuccess", `errorCode="` + r.ErrorCode + `"`}
	case r.ErrorCode != "":
		want = []string{"ResponseStatusType:Failure", `errorCode="` + r.ErrorCode + `"`}
	default:
		want = []string{"ResponseStatusType:Success"}
	}
	if r.ExceptionCode != "" {
		want = append(want, "45 CFR "+r.ExceptionCode)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Fatalf("%s (%s %s %s): answer lacks %q:\n%s", r.TransactionID, r.Kind, r.Outcome, r.ErrorCode, w, body)
		}
	}
}

func TestXCADeterministic(t *testing.T) {
	dump := func(p *XCAPlan) []byte {
		var b bytes.Buffer
		csv, err := p.truthCSV()
		if err != nil {
			t.Fatal(err)
		}
		b.Write(csv)
		for _, n := range p.Networks() {
			for _, m := range p.AllMessages(n) {
				b.WriteString(m.DeliverAt.String() + m.Gateway + m.Side + m.What + strconv.FormatBool(m.Duplicate))
				b.Write(m.Raw)
			}
		}
		return b.Bytes()
	}
	a := dump(xcaPlan(t, XCAConfig{Journeys: 200, Seed: 7}))
	b := dump(xcaPlan(t, XCAConfig{Journeys: 200, Seed: 7}))
	c := dump(xcaPlan(t, XCAConfig{Journeys: 200, Seed: 8}))
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed gave different plans")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different seeds gave the same plan")
	}
	// Defect rates draw from their own stream: turning them off changes
	// no transaction.
	clean := xcaPlan(t, XCAConfig{Journeys: 200, Seed: 7, LossRate: -1, DuplicateRate: -1, LateRate: -1})
	noisy := xcaPlan(t, XCAConfig{Journeys: 200, Seed: 7})
	for i, r := range clean.Requests() {
		n := noisy.Requests()[i]
		if r.TransactionID != n.TransactionID || r.Outcome != n.Outcome || !r.AnsweredAt.Equal(n.AnsweredAt) {
			t.Fatalf("row %d differs with defects on: %+v vs %+v", i, r, n)
		}
	}
}

// within fails unless got/n is within 4 standard deviations of p.
func within(t *testing.T, what string, got, n int, p float64) {
	t.Helper()
	if n == 0 {
		t.Fatalf("%s: no trials", what)
	}
	share := float64(got) / float64(n)
	sd := math.Sqrt(p * (1 - p) / float64(n))
	t.Logf("%s: %d/%d = %.4f, configured %.4f (±%.4f)", what, got, n, share, p, 4*sd)
	if math.Abs(share-p) > 4*sd {
		t.Fatalf("%s: %.4f is not within 4 sd of %.4f", what, share, p)
	}
}

func TestXCADefectRates(t *testing.T) {
	cfg := XCAConfig{Journeys: 3000, LossRate: 0.1, DuplicateRate: 0.05, LateRate: 0.08}
	p := xcaPlan(t, cfg)
	var twoSided, lost, sides, late int
	for _, r := range p.Requests() {
		if r.ErrorCode == "timeout" {
			if r.Sides != SideInitiating {
				t.Fatalf("%s: a timed-out transaction audited by %s", r.TransactionID, r.Sides)
			}
			sides++
		} else {
			twoSided++
			if r.Sides != SideBoth {
				lost++
				sides++
			} else {
				sides += 2
			}
		}
		late += len(strings.Fields(r.LateSides))
	}
	within(t, "one side lost", lost, twoSided, cfg.LossRate)
	within(t, "late sides", late, sides, cfg.LateRate)
	within(t, "duplicated messages", p.Duplicates(), p.MessageCount(), cfg.DuplicateRate)
	for _, n := range p.Networks() {
		for _, m := range p.AllMessages(n) {
			d := m.DeliverAt.Sub(m.Time)
			switch {
			case m.Late && (d < cfg.withDefaults().LateMin || d > cfg.withDefaults().LateMax+5*time.Second):
				t.Fatalf("late message delivered %s after its time", d)
			case !m.Late && !m.Duplicate && d != 0:
				t.Fatalf("on-time message delivered %s after its time", d)
			}
		}
	}
}

func TestXCATruthConsistent(t *testing.T) {
	p := xcaPlan(t, XCAConfig{Journeys: 2000})
	journeys := map[string][]XCATruthRow{}
	var order []string
	purposes := map[string]int{}
	for _, r := range p.Requests() {
		if _, ok := journeys[r.Journey]; !ok {
			order = append(order, r.Journey)
		}
		journeys[r.Journey] = append(journeys[r.Journey], r)
		purposes[r.Purpose]++
		checkRow(t, r)
	}
	for _, id := range order {
		steps := journeys[id]
		for i, r := range steps {
			if r.Step != i+1 || r.Kind != []string{KindPatientDiscovery, KindDocumentQuery, KindDocumentRetrieve}[i] {
				t.Fatalf("%s: step %d is %d %s", id, i+1, r.Step, r.Kind)
			}
			if i > 0 {
				prev := steps[i-1]
				if !slices.Contains([]string{Fulfilled, FulfilledLate, Partial}, prev.Outcome) || !r.RequestedAt.After(prev.AnsweredAt) {
					t.Fatalf("%s: step %d follows a %s answered %s", id, r.Step, prev.Outcome, prev.AnsweredAt)
				}
				if r.Patient != prev.Patient || r.Requester != prev.Requester || r.Responder != prev.Responder || r.Purpose != prev.Purpose {
					t.Fatalf("%s: steps disagree on patient, parties or purpose", id)
				}
			}
			if r.Runaround && r.Kind != KindPatientDiscovery && (r.Outcome == Fulfilled || r.Outcome == Partial) {
				t.Fatalf("%s: a runaround responder returned documents", id)
			}
		}
	}
	requested := 0
	for _, r := range p.Requests() {
		if strings.HasSuffix(r.ErrorCode, "Requested") {
			requested++
			if !r.Runaround || r.Outcome != NotFound || r.Kind != KindPatientDiscovery {
				t.Fatalf("%s: demographics requested by a %s responder, class %s", r.TransactionID, r.Behaviour, r.Outcome)
			}
		}
	}
	if requested == 0 {
		t.Fatal("no runaround responder asked for more demographics")
	}
	suspect := p.Suspect()
	for _, n := range p.Networks() {
		want := 0
		for _, r := range p.Requests() {
			if r.Network == n && (r.Outcome == RefusedUnjustified || r.Outcome == Unanswered ||
				r.Outcome == FulfilledLate && r.LatencyMs > 3*SLAOf(r.Kind).Milliseconds()) {
				want++
			}
		}
		if suspect[n] != want || want == 0 {
			t.Fatalf("%s: Suspect %d, rows %d", n, suspect[n], want)
		}
		for _, patient := range p.Runarounds()[n] {
			if !strings.Contains(patient, "^^^&") {
				t.Fatalf("%s: runaround patient %q", n, patient)
			}
		}
		if len(p.Runarounds()[n]) == 0 {
			t.Fatalf("%s: no runaround journeys", n)
		}
	}
	for _, want := range []string{"treatment", "individual_access", "payment", ""} {
		if purposes[want] == 0 {
			t.Fatalf("no transaction with purpose %q: %v", want, purposes)
		}
	}
}

func checkRow(t *testing.T, r XCATruthRow) {
	t.Helper()
	if (r.Feed == FeedSOAP) != r.Timed {
		t.Fatalf("%s: feed %s timed %v", r.TransactionID, r.Feed, r.Timed)
	}
	if r.Outcome == Unanswered && (r.Feed != FeedSOAP || r.Answered() || r.LatencyMs != -1) {
		t.Fatalf("%s: unanswered on %s, answered %s", r.TransactionID, r.Feed, r.AnsweredAt)
	}
	if r.Answered() && r.AnsweredAt.Sub(r.RequestedAt).Milliseconds() != r.LatencyMs {
		t.Fatalf("%s: latency %d", r.TransactionID, r.LatencyMs)
	}
	late := time.Duration(r.LatencyMs)*time.Millisecond > SLAOf(r.Kind)
	switch {
	case r.Deferred && (r.Kind != KindPatientDiscovery || !late ||
		r.Outcome != map[string]string{FeedSOAP: FulfilledLate, FeedATNA: Fulfilled}[r.Feed]):
		t.Fatalf("%s: deferred %s %s latency %d", r.TransactionID, r.Feed, r.Outcome, r.LatencyMs)
	case !r.Deferred && r.ErrorCode != "timeout" && late:
		t.Fatalf("%s: an answer that is neither deferred nor a timeout came after the SLA", r.TransactionID)
	}
	if (r.ExceptionCode != "") != (r.Outcome == RefusedException) {
		t.Fatalf("%s: exception %q with class %s", r.TransactionID, r.ExceptionCode, r.Outcome)
	}
	if (r.Feed == FeedATNA) != (r.EventOutcome >= 0) {
		t.Fatalf("%s: event outcome %d on %s", r.TransactionID, r.EventOutcome, r.Feed)
	}
	if r.Purpose == "" && r.PurposeCode != "" || r.Purpose != "" && r.PurposeCode == "" {
		t.Fatalf("%s: purpose %q code %q", r.TransactionID, r.Purpose, r.PurposeCode)
	}
	if r.RecordedAt.Before(r.RequestedAt) || (r.Feed == FeedATNA && !r.Deferred && r.RecordedAt.Before(r.AnsweredAt)) {
		t.Fatalf("%s: recorded %s, requested %s, answered %s", r.TransactionID, r.RecordedAt, r.RequestedAt, r.AnsweredAt)
	}
}

func TestXCAConfigErrors(t *testing.T) {
	bad := XCANetworks()
	bad[0].Feed = "fax"
	bad[0].Gateways[4].Behaviour = "mystery"
	bad[1].Exceptions = []string{"999.999"}
	_, err := GenerateXCA(XCAConfig{Networks: bad, LossRate: 0.9})
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{`Feed: "fax"`, `unknown "mystery"`, `"999.999"`, "LossRate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestXCAWriteTruth(t *testing.T) {
	p := xcaPlan(t, XCAConfig{Journeys: 100, Seed: 7})
	dir := t.TempDir()
	if err := p.WriteTruth(dir); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, XCATruthCSV))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recs[0], XCATruthHeader) || len(recs)-1 != len(p.Requests()) {
		t.Fatalf("xca_truth.csv: header %v, %d rows for %d transactions", recs[0], len(recs)-1, len(p.Requests()))
	}
	for i, r := range p.Requests() {
		rec := recs[i+1]
		if rec[2] != r.TransactionID || rec[14] != r.Outcome || rec[12] != r.Purpose || rec[23] != r.Sides || rec[21] != strconv.FormatBool(r.Timed) {
			t.Fatalf("row %d: %v does not say %+v", i, rec, r)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, XCATruthJSON))
	if err != nil {
		t.Fatal(err)
	}
	var s xcaSummary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	total := 0
	truth := p.Truth()
	for _, n := range s.Networks {
		for class, c := range n.Outcomes {
			if truth[n.Name][class] != c {
				t.Fatalf("%s %s: summary %d, truth %d", n.Name, class, c, truth[n.Name][class])
			}
			total += c
		}
	}
	if total != len(p.Requests()) || s.Messages != p.MessageCount() || s.Transactions != total {
		t.Fatalf("summary: %d transactions, %d messages; plan %d, %d", total, s.Messages, len(p.Requests()), p.MessageCount())
	}
	var msgs bytes.Buffer
	seen := map[string]bool{}
	for _, n := range p.Networks() {
		for _, m := range p.AllMessages(n) {
			gw := gatewayOf(t, p, n, m.Gateway)
			key := n + gw.Shape + gw.Syslog + m.What
			if seen[key] || m.Duplicate {
				continue
			}
			seen[key] = true
			msgs.WriteString("# " + n + " " + m.Gateway + " " + m.Side + " " + m.What + "\n")
			msgs.Write(m.Raw)
			msgs.WriteString("\n")
		}
	}
	small := xcaPlan(t, XCAConfig{Journeys: 8, Seed: 7})
	smallCSV, err := small.truthCSV()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "xca_truth.csv.golden", smallCSV)
	golden(t, "xca_messages.golden", msgs.Bytes())
	dirCSV, err := os.ReadFile(filepath.Join(dir, XCADirectoryFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range XCANetworks() {
		for _, g := range n.Gateways {
			if !strings.Contains(string(dirCSV), g.Community+","+g.OrgID+",") {
				t.Fatalf("directory lacks %s", g.Community)
			}
		}
	}
}
