package simulator

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// The exchange purposes journeys carry, with how often; a code of ""
// carries none. The canonical names are DOMAIN.md's (the simulator keeps
// its own table: it is the truth the purpose mapping is checked against).
type purposeCode struct {
	System, Code, Display, Canonical string
	Weight                           float64
}

const (
	systemTEFCA     = "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1"
	systemActReason = "urn:oid:2.16.840.1.113883.5.8"
)

var xcaPurposes = []purposeCode{
	{systemTEFCA, "T-TRTMNT", "Treatment", "treatment", 0.42},
	{systemActReason, "TREAT", "treatment", "treatment", 0.15},
	{systemTEFCA, "T-IAS", "Individual Access Services", "individual_access", 0.10},
	{systemActReason, "PATRQT", "patient requested", "individual_access", 0.05},
	{systemTEFCA, "T-PYMNT", "Payment", "payment", 0.08},
	{systemActReason, "HPAYMT", "healthcare payment", "payment", 0.03},
	{systemTEFCA, "T-HCO", "Health Care Operations", "operations", 0.07},
	{systemTEFCA, "T-PH", "Public Health", "public_health", 0.03},
	{"", "", "", "", 0.07},
}

// sysCode is "system|code" ("" when no code).
func (p purposeCode) sysCode() string {
	if p.Code == "" {
		return ""
	}
	return p.System + "|" + p.Code
}

// person is a human requestor named in the XUA assertion: never an
// organisation.
type person struct {
	name, user, role, roleName string
}

var requestors = []person{
	{"Jane Smith", "jsmith", "112247003", "Medical doctor"},
	{"Ravi Patel", "rpatel", "224535009", "Registered nurse"},
	{"Maria Garcia", "mgarcia", "112247003", "Medical doctor"},
	{"Wei Chen", "wchen", "309343006", "Physician"},
	{"Amara Okafor", "aokafor", "224535009", "Registered nurse"},
}

var transactionNames = map[string][2]string{
	KindPatientDiscovery: {"ITI-55", "Cross Gateway Patient Discovery"},
	KindDocumentQuery:    {"ITI-38", "Cross Gateway Query"},
	KindDocumentRetrieve: {"ITI-39", "Cross Gateway Retrieve"},
}

// xcaGenerator draws journeys with the HL7 generator's distributions.
type xcaGenerator struct {
	*generator
	x   XCAConfig
	def *rand.Rand // feed defects: loss, lateness, duplicates
}

func (g *xcaGenerator) run() *XCAPlan {
	p := &XCAPlan{cfg: g.x}
	index := map[string]int{}
	shares := make([]float64, len(g.x.Networks))
	for i, n := range g.x.Networks {
		shares[i] = n.Share
		for _, gw := range n.Gateways {
			index[n.Name+"/"+gw.ID] = len(p.feeds)
			p.feeds = append(p.feeds, xcaFeed{network: n, gateway: gw})
		}
	}
	type start struct {
		at      time.Time
		network int
	}
	starts := make([]start, g.x.Journeys)
	for i := range starts {
		starts[i] = start{at: g.requestTime(), network: g.pick(shares)}
	}
	slices.SortStableFunc(starts, func(a, b start) int { return a.at.Compare(b.at) })
	seq := make([]int, len(g.x.Networks))
	for _, s := range starts {
		seq[s.network]++
		n := g.x.Networks[s.network]
		rows, msgs := g.journey(n, seq[s.network], s.at)
		p.rows = append(p.rows, rows...)
		for _, m := range msgs {
			f := &p.feeds[index[n.Name+"/"+m.Gateway]]
			f.msgs = append(f.msgs, m)
		}
	}
	slices.SortStableFunc(p.rows, func(a, b XCATruthRow) int { return a.RequestedAt.Compare(b.RequestedAt) })
	for i := range p.feeds {
		slices.SortStableFunc(p.feeds[i].msgs, func(a, b XCAMessage) int { return a.DeliverAt.Compare(b.DeliverAt) })
	}
	return p
}

// journeyState is what the steps of one patient journey share.
type journeyState struct {
	network   XCANetwork
	id        string
	requester Gateway
	responder Gateway
	behaviour XCABehaviour
	patient   string
	purpose   purposeCode
	human     *person
	docs      []xcaDoc // found by the query, asked for by the retrieve
}

// xcaDoc is one document of a responder's repository.
type xcaDoc struct {
	ID, Repository, Home string
}

func (g *xcaGenerator) journey(n XCANetwork, num int, at time.Time) ([]XCATruthRow, []XCAMessage) {
	init, resp := n.initiating(), n.responding()
	weights := make([]float64, len(resp))
	for i, r := range resp {
		weights[i] = r.Weight
	}
	j := &journeyState{network: n, id: fmt.Sprintf("%s-J%06d", n.Code, num)}
	j.requester = init[g.rng.IntN(len(init))]
	j.responder = resp[g.pick(weights)]
	j.behaviour, _ = findBehaviour(j.responder.Behaviour, g.x.Behaviours)
	j.patient = fmt.Sprintf("%07d^^^&%s&ISO", g.rng.IntN(10_000_000), n.patientOID())
	pw := make([]float64, len(xcaPurposes))
	for i, pc := range xcaPurposes {
		pw[i] = pc.Weight
	}
	j.purpose = xcaPurposes[g.pick(pw)]
	if g.rng.Float64() >= n.NoHumanShare {
		h := requestors[g.rng.IntN(len(requestors))]
		j.human = &h
	}
	var rows []XCATruthRow
	var msgs []XCAMessage
	mixes := [][]ClassWeight{j.behaviour.Discovery, j.behaviour.Query, j.behaviour.Retrieve}
	for step, kind := range []string{KindPatientDiscovery, KindDocumentQuery, KindDocumentRetrieve} {
		class := g.pickClass(mixes[step])
		row, ms := g.transaction(j, step+1, kind, class, at)
		rows, msgs = append(rows, row), append(msgs, ms...)
		if row.Outcome != Fulfilled && row.Outcome != FulfilledLate && row.Outcome != Partial {
			break
		}
		if step < 2 && g.rng.Float64() < n.StopShare {
			break
		}
		at = row.AnsweredAt.Add(200*time.Millisecond + time.Duration(g.rng.Int64N(4800))*time.Millisecond)
	}
	return rows, msgs
}

// uuid draws a random (version 4) UUID from the plan's stream.
func (g *xcaGenerator) uuid() string {
	hi, lo := g.rng.Uint64(), g.rng.Uint64()
	hi = hi&^0xf000 | 0x4000
	lo = lo&^(0xc<<60) | 0x8<<60
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", hi>>32, hi>>16&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

// xcaTx is one transaction being generated: its truth and what its
// messages need.
type xcaTx struct {
	j         *journeyState
	row       XCATruthRow
	messageID string // the request's wsa:MessageID
	hl7ID     string // ITI-55: the request's HL7 v3 message id
	queryID   string // ITI-55 queryId, ITI-38 stored query id
	query     []byte // the request body the audits quote
	docs      []xcaDoc
	returned  int // documents returned (query: found; retrieve: delivered)
	detail    string
}

func (g *xcaGenerator) transaction(j *journeyState, step int, kind, class string, at time.Time) (XCATruthRow, []XCAMessage) {
	n := j.network
	names := transactionNames[kind]
	t := &xcaTx{j: j, messageID: "urn:uuid:" + g.uuid()}
	t.row = XCATruthRow{
		Network: n.Name, Feed: n.Feed, TransactionID: t.messageID, Journey: j.id, Step: step,
		Kind: kind, Transaction: names[0],
		Requester: j.requester.OrgID, RequesterCommunity: j.requester.Community,
		Responder: j.responder.OrgID, ResponderCommunity: j.responder.Community, Behaviour: j.behaviour.Name,
		Purpose: j.purpose.Canonical, PurposeCode: j.purpose.sysCode(),
		Outcome: class, EventOutcome: -1, RequestedAt: at, LatencyMs: -1,
		Timed: n.Feed == FeedSOAP, Patient: j.patient, Runaround: j.behaviour.Runaround,
	}
	if n.Feed == FeedATNA && class == Unanswered {
		// The initiating gateway gives up and audits a failure: the
		// audit trail never shows an unanswered transaction.
		t.row.Outcome, t.row.ErrorCode = ErrorTransient, "timeout"
	}
	g.answerDetails(t)
	t.query = g.requestBody(t)
	if t.row.Outcome != Unanswered {
		latency := g.lognormalMs(j.behaviour.Latency, 50, float64((SLAOf(kind) - 1500*time.Millisecond).Milliseconds()))
		if t.row.Deferred {
			// Deferred answers come minutes later, after the SLA: late
			// where the feed times them (SOAP copies); an audit trail
			// records when each part ended, never how long it took.
			latency = int64(2*time.Minute/time.Millisecond) + g.lognormalMs(LogNormal{MedianMs: 240_000, Sigma: 0.6}, 1000, 1_800_000)
			if n.Feed == FeedSOAP {
				t.row.Outcome = FulfilledLate
			}
		}
		if t.row.ErrorCode == "timeout" {
			latency = GatewayTimeout.Milliseconds()
		}
		t.row.LatencyMs = latency
		t.row.AnsweredAt = at.Add(time.Duration(latency) * time.Millisecond)
	}
	if n.Feed == FeedATNA {
		t.row.EventOutcome = eventOutcome(t.row)
	}
	var msgs []XCAMessage
	if n.Feed == FeedATNA {
		msgs = g.auditRecords(t)
	} else {
		msgs = g.soapCopies(t)
	}
	msgs = g.defects(t, msgs)
	if kind == KindDocumentQuery && t.returned > 0 {
		j.docs = t.docs[:t.returned]
	}
	return t.row, msgs
}

// answerDetails draws what the answer says beyond its class: codes,
// exceptions, documents, deferred mode.
func (g *xcaGenerator) answerDetails(t *xcaTx) {
	r, j := &t.row, t.j
	switch r.Outcome {
	case RefusedException:
		r.ExceptionCode = j.network.Exceptions[g.rng.IntN(len(j.network.Exceptions))]
		t.detail = fmt.Sprintf("Disclosure denied by patient consent policy under 45 CFR %s (%s)", r.ExceptionCode, exceptionNames[r.ExceptionCode])
	case RefusedUnjustified:
		t.detail = unjustifiedTexts[g.rng.IntN(len(unjustifiedTexts))]
	case ErrorTransient:
		if r.ErrorCode == "timeout" {
			t.detail = "No response from the responding gateway before the timeout"
		}
	}
	if r.ErrorCode == "" {
		r.ErrorCode = g.errorCode(r.Kind, r.Outcome)
	}
	if r.ErrorCode == "NF" && j.behaviour.Runaround {
		// No match, and a request for more demographics: asked again
		// and again for one patient, a runaround signal.
		r.ErrorCode = demographicsRequests[g.rng.IntN(len(demographicsRequests))]
	}
	if t.detail == "" {
		t.detail = errorTexts[r.ErrorCode]
	}
	if t.detail == "" && r.Outcome == NotFound {
		t.detail = "No documents found for the patient"
	}
	switch r.Kind {
	case KindPatientDiscovery:
		t.queryID = g.uuid()
		r.Deferred = r.Outcome == Fulfilled && g.rng.Float64() < j.behaviour.Deferred
	case KindDocumentQuery:
		t.queryID = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d" // FindDocuments
		n := 1 + g.rng.IntN(3)
		if r.Outcome == Partial {
			n = max(n, 2) // some found, some not reachable
		}
		for range n {
			t.docs = append(t.docs, g.document(j))
		}
		switch r.Outcome {
		case Fulfilled:
			t.returned = n
		case Partial:
			t.returned = n - 1
		}
		r.Documents = t.returned
	case KindDocumentRetrieve:
		t.docs = j.docs
		if len(t.docs) == 0 {
			t.docs = []xcaDoc{g.document(j)}
		}
		t.returned = len(t.docs)
		switch {
		case r.Outcome == Partial && len(t.docs) == 1:
			// A partial answer needs a document it could not return.
			t.docs = append(t.docs, g.document(j))
			t.returned = 1
		case r.Outcome == Partial:
			t.returned = len(t.docs) - 1
		case r.Outcome != Fulfilled:
			t.returned = 0
		}
		r.Documents = len(t.docs)
	}
}

func (g *xcaGenerator) document(j *journeyState) xcaDoc {
	base := j.responder.oid()
	return xcaDoc{
		ID:         fmt.Sprintf("%s.2.%d", base, 1+g.rng.IntN(1_000_000_000)),
		Repository: base + ".1",
		Home:       j.responder.Community,
	}
}

// errorCode is what the answer's status says for a class, per transaction.
func (g *xcaGenerator) errorCode(kind, class string) string {
	choose := func(codes ...string) string { return codes[g.rng.IntN(len(codes))] }
	if kind == KindPatientDiscovery {
		switch class {
		case NotFound:
			return "NF"
		case ErrorTransient, RefusedException, RefusedUnjustified:
			return "AE"
		case ErrorPermanent:
			return "QE"
		}
		return ""
	}
	switch class {
	case NotFound:
		if kind == KindDocumentQuery && g.rng.Float64() < 0.5 {
			return "" // Success with no documents
		}
		return "XDSUnknownPatientId"
	case ErrorTransient:
		if kind == KindDocumentRetrieve {
			return choose("XDSRepositoryBusy", "XDSUnavailableCommunity")
		}
		return choose("XDSRegistryBusy", "XDSUnavailableCommunity")
	case ErrorPermanent:
		if kind == KindDocumentRetrieve {
			return "XDSDocumentUniqueIdError"
		}
		return choose("XDSTooManyResults", "XDSUnknownCommunity")
	case Partial:
		if kind == KindDocumentQuery {
			return "XDSUnavailableCommunity"
		}
		return "XDSDocumentUniqueIdError"
	case RefusedException, RefusedUnjustified:
		return "XDSRegistryError"
	}
	return ""
}

// demographicsRequests are XCPD detected-issue codes by which a responding
// gateway asks for more demographics before it will match.
var demographicsRequests = [...]string{
	"LivingSubjectBirthPlaceNameRequested", "PatientTelecomRequested", "LivingSubjectAdministrativeGenderRequested",
}

var errorTexts = map[string]string{
	"LivingSubjectBirthPlaceNameRequested":       "Additional demographics required: birth place",
	"PatientTelecomRequested":                    "Additional demographics required: telephone",
	"LivingSubjectAdministrativeGenderRequested": "Additional demographics required: gender",
	"NF":                       "No patient matched the demographics given",
	"AE":                       "Responding gateway temporarily unavailable, try again later",
	"QE":                       "Query parameters not supported",
	"XDSUnknownPatientId":      "Patient id not known to this community",
	"XDSRegistryBusy":          "Registry busy, try again later",
	"XDSRepositoryBusy":        "Repository busy, try again later",
	"XDSUnavailableCommunity":  "Community temporarily unavailable",
	"XDSTooManyResults":        "Query returned more results than allowed",
	"XDSUnknownCommunity":      "Unknown home community id",
	"XDSDocumentUniqueIdError": "Document not available in this repository",
}

// eventOutcome is the EventOutcomeIndicator gateways audit for an outcome.
func eventOutcome(r XCATruthRow) int {
	switch r.Outcome {
	case Fulfilled, FulfilledLate:
		return 0
	case Partial, NotFound:
		return 4
	case RefusedException, RefusedUnjustified:
		return 8
	case ErrorTransient:
		if r.ErrorCode == "timeout" {
			return 12
		}
		return 8
	}
	return 12
}

// defects drops one side of some transactions, delays some sides and
// re-sends some messages, then fills in the truth of what was sent.
func (g *xcaGenerator) defects(t *xcaTx, msgs []XCAMessage) []XCAMessage {
	sides := map[string]bool{}
	for _, m := range msgs {
		sides[m.Side] = true
	}
	if len(sides) == 2 && g.def.Float64() < g.x.LossRate {
		lost := []string{SideInitiating, SideResponding}[g.def.IntN(2)]
		msgs = slices.DeleteFunc(msgs, func(m XCAMessage) bool { return m.Side == lost })
		delete(sides, lost)
	}
	var late []string
	for _, side := range []string{SideInitiating, SideResponding} {
		if !sides[side] || g.def.Float64() >= g.x.LateRate {
			continue
		}
		late = append(late, side)
		by := g.x.LateMin + time.Duration(g.def.Int64N(int64(g.x.LateMax-g.x.LateMin)+1))
		for i := range msgs {
			if msgs[i].Side == side {
				msgs[i].DeliverAt = msgs[i].DeliverAt.Add(by.Truncate(time.Millisecond))
				msgs[i].Late = true
			}
		}
	}
	n := len(msgs)
	for i := range n {
		if g.def.Float64() < g.x.DuplicateRate {
			d := msgs[i]
			d.Duplicate = true
			d.DeliverAt = d.DeliverAt.Add(time.Duration(1+g.def.Int64N(5000)) * time.Millisecond)
			msgs = append(msgs, d)
			t.row.Duplicates++
		}
	}
	switch {
	case sides[SideInitiating] && sides[SideResponding]:
		t.row.Sides = SideBoth
	case sides[SideInitiating]:
		t.row.Sides = SideInitiating
	default:
		t.row.Sides = SideResponding
	}
	t.row.LateSides = strings.Join(late, " ")
	for _, m := range msgs {
		if t.row.RecordedAt.IsZero() || m.Time.Before(t.row.RecordedAt) {
			t.row.RecordedAt = m.Time
		}
	}
	return msgs
}
