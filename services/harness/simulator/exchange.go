package simulator

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// exchange is one request of a network with patterns, as drawn: who asks
// whom, of what kind, how it ends and when.
type exchange struct {
	spec      patternSpec
	kind      string
	q         query
	behaviour string
	class     string
	sla       time.Duration
	// latency is the time to the final answer (for cancelled: to the
	// cancel) in ms, -1 when nothing final comes; ack the time to an
	// interim answer, -1 when none comes.
	latency, ack int64
	a            answer
	records      int
	// The responder's mix and exceptions, for a batch's further entries.
	mix        []ClassWeight
	exceptions []string
}

func (x *exchange) finalAt() time.Time {
	return x.q.at.Add(time.Duration(x.latency) * time.Millisecond)
}

func (x *exchange) ackAt() time.Time { return x.q.at.Add(time.Duration(x.ack) * time.Millisecond) }

// row is the truth of the exchange's request.
func (x *exchange) row() TruthRow {
	r := TruthRow{
		Network: x.q.network.Name, ControlID: x.q.controlID, Requester: x.q.requester.Facility,
		Responder: x.q.responder.Facility, Outcome: x.class, ExceptionCode: x.a.cited(), RequestedAt: x.q.at,
		LatencyMs: -1, Patient: x.patient(), Kind: x.kind, Format: x.spec.format, Pattern: x.spec.name,
		Behaviour: x.behaviour, RecordCount: x.records, SLA: x.sla,
	}
	if x.spec.name == PatternQBP || x.spec.name == PatternQ23 || x.spec.name == PatternDSC {
		r.QueryTag = x.q.queryTag
	}
	switch {
	case x.class == Cancelled:
		// A cancel is the requester's, not an answer: nothing fulfilled.
		r.CancelledAt = x.finalAt()
	case x.latency >= 0:
		r.AnsweredAt, r.LatencyMs = x.finalAt(), x.latency
		r.AcknowledgedAt = r.AnsweredAt
	}
	if x.ack >= 0 {
		r.AcknowledgedAt = x.ackAt()
	}
	return r
}

// patient is the identifier asked for as a CX: the network's HL7 v2
// authority, or a FHIR network's OID.
func (x *exchange) patient() string {
	if x.q.network.fhir() {
		return x.q.mrn + "^^^&" + fhirPatientOID(x.q.network) + "&ISO"
	}
	return x.q.mrn + "^^^" + x.q.authority()
}

func patternWeights(p NetworkProfile) []float64 {
	w := make([]float64, len(p.Patterns))
	for i, pw := range p.Patterns {
		w[i] = pw.Weight
	}
	return w
}

// patterned generates one request slot of a network with patterns: its
// truth rows (several for a batch, two for a continued query) and its
// messages. A runaround journey's steps stay patient queries.
func (g *generator) patterned(p NetworkProfile, n int, s slot) ([]TruthRow, []Message) {
	if s.runaround != nil {
		row, msgs := g.request(p, n, s)
		return []TruthRow{row}, msgs
	}
	spec, _ := lookupPattern(p.Patterns[g.pick(patternWeights(p))].Pattern)
	x := g.exchange(p, n, s.at, spec)
	switch {
	case spec.entries:
		return g.entries(x)
	case spec.name == PatternDSC:
		return g.continued(x)
	case spec.format == FormatFHIR:
		return []TruthRow{x.row()}, g.fhirMessages(x)
	}
	return []TruthRow{x.row()}, x.hl7Messages()
}

// exchange draws a request of the pattern: kind, requester, responder
// (its profile's mix, latency and exceptions when the network has
// profiles), patient, class among those the pattern can say, timing and
// wording.
func (g *generator) exchange(p NetworkProfile, n int, at time.Time, spec patternSpec) *exchange {
	x := &exchange{spec: spec, kind: spec.kinds[g.rng.IntN(len(spec.kinds))]}
	x.sla = kindSLA(x.kind)
	x.q = query{network: p, at: at, controlID: fmt.Sprintf("%s%08d", p.Code, n), queryTag: fmt.Sprintf("%sQ%08d", p.Code, n)}
	x.q.requester = p.Requesters[g.rng.IntN(len(p.Requesters))]
	mix, lat, beyond, exceptions := g.mixAt(p, at), p.Latency, p.LateBeyondShare, p.Exceptions
	if len(p.ResponderProfiles) > 0 {
		rp := &p.ResponderProfiles[g.pick(responderWeights(p))]
		x.q.responder, x.behaviour = responderOrg(p, rp.Facility), rp.Behaviour
		mix, lat, beyond = rp.mixFor(g.cfg.Start, at, x.q.requester), rp.latency(p), rp.lateBeyondShare(p)
		if len(rp.Exceptions) > 0 {
			exceptions = rp.Exceptions
		}
	} else {
		x.q.responder = p.Responders[g.rng.IntN(len(p.Responders))]
	}
	x.q.mrn = fmt.Sprintf("%07d", g.rng.IntN(10_000_000))
	x.mix, x.exceptions = mix, exceptions
	x.class = g.pickClass(restrictMix(mix, spec.classes))
	g.timing(x, lat, beyond)
	x.a = g.answerFor(x.class, exceptions, p.ExceptionTextShare)
	if (x.class == Fulfilled || x.class == FulfilledLate || x.class == Partial) && spec.name != PatternAudit && spec.name != PatternREF {
		// An AuditEvent says whether, not what, an exchange returned; a
		// referral's answer accepts it, the records come another way.
		x.records = 1 + g.rng.IntN(3)
	}
	return x
}

// timing draws when the final and interim answers come. Answers that are
// not late come within the SLA less 1.5 s (the responder's latency
// stretched to the kind's pace); late ones after it, clear of the
// linker's boundaries.
func (g *generator) timing(x *exchange, lat LogNormal, beyond float64) {
	hi := float64((x.sla - 1500*time.Millisecond).Milliseconds())
	scaled := LogNormal{MedianMs: lat.MedianMs * kindScale(x.kind), Sigma: lat.Sigma}
	x.latency, x.ack = -1, -1
	switch x.class {
	case Unanswered:
	case FulfilledLate:
		x.latency = g.lateMsFor(x.sla, beyond)
	default:
		x.latency = g.lognormalMs(scaled, 50, hi)
	}
	if !x.interim() {
		return
	}
	until := x.latency
	if until < 0 {
		until = g.lognormalMs(scaled, 50, hi)
	}
	// Strictly before the final answer, so the order never depends on a tie.
	x.ack = 1 + g.rng.Int64N(max(until/2, 1))
}

// interim reports whether an interim answer precedes the final one: a
// commit ACK to every referral; an order's acceptance when a result or
// nothing follows; a Task received before anything but a rejection.
func (x *exchange) interim() bool {
	switch x.spec.name {
	case PatternREF:
		return true
	case PatternORM, PatternOML:
		return slices.Contains([]string{Fulfilled, FulfilledLate, Unanswered, Cancelled}, x.class)
	case PatternTask, PatternSubscription:
		return !slices.Contains([]string{RefusedException, RefusedUnjustified, Redirected}, x.class)
	}
	return false
}

// continued is a query answered in pieces (DSC): the first answer returns
// part of the hits with a continuation pointer, fulfilled on time; the
// requester's continuation query (its own control id, the same query tag
// and a DSC naming the pointer) is a request of its own, answered as the
// responder's mix draws.
func (g *generator) continued(x *exchange) ([]TruthRow, []Message) {
	first := *x
	first.class, first.a = Fulfilled, g.answerFor(Fulfilled, nil, 0)
	first.latency = min(x.latency, (x.sla-2*time.Second).Milliseconds()/2)
	if first.latency < 0 {
		first.latency = g.lognormalMs(LogNormal{MedianMs: 1200, Sigma: 0.5}, 50, float64(first.sla.Milliseconds()/2))
	}
	first.records = 2
	next := *x
	next.q.controlID = x.q.controlID + "D"
	next.q.at = first.finalAt().Add(time.Duration(1+g.rng.IntN(3000)) * time.Millisecond)
	pointer := fmt.Sprintf("%sP%d", x.q.queryTag, 2)
	msgs := first.hl7Messages()
	msgs[len(msgs)-1].Raw = first.q.continuedAnswer(first.a, first.finalAt(), pointer, 5)
	msgs = append(msgs, next.hl7Messages()...)
	msgs[len(msgs)-1-boolInt(next.latency >= 0)].Raw = next.q.continuation(pointer)
	return []TruthRow{first.row(), next.row()}, msgs
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// drift scales the suspect classes of a mix by 1 + drift × months.
func drift(mix []ClassWeight, perMonth, months float64) []ClassWeight {
	if perMonth == 0 {
		return mix
	}
	scale := math.Max(0, 1+perMonth*months)
	out := make([]ClassWeight, len(mix))
	for i, w := range mix {
		out[i] = w
		if suspectClass(w.Class) {
			out[i].Weight *= scale
		}
	}
	return out
}
