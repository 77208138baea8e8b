package join

import (
	"google.golang.org/protobuf/encoding/protowire"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// view is one version of a chain's outcome before it is encoded.
type view struct {
	network, key string
	version      uint32
	steps        []step   // every step, sorted by stepLess
	src          *step    // who asked: the request, or an orphan's first answer
	profile      *profile // src's
	responder    string
	token        *step // the patient token's step: the first that has one
	ack          *step // the first answer, nil when none
	acked        int64 // the first answer's time, 0 when none
	hasTta       bool
	tta          uint64
	sla, grace   int64
	slaDays      int  // the SLA in business days, 0 when it is a duration
	untimed      bool // src is untimed: no times are observed, it is never late
	// purpose and communities: src's, else the first step's that has them
	purpose, purposeCode         string
	requesterComm, responderComm string
	sides                        string // which gateways' records the steps are
	class                        hinscorev1.OutcomeClass
	decided                      int64
	decider                      *step // the deciding message (an orphan's is its first answer)
	hasTtf                       bool
	ttf                          uint64
	overflowed                   bool // closed by the pending cap (not decided since)
}

func nonNegative(d int64) uint64 {
	if d < 0 {
		// Clocks of different systems disagree; an answer stamped before
		// its request was answered at once.
		return 0
	}
	return uint64(d)
}

// outcome appends the next version of a chain's outcome to out, encoded.
func (j *Join) outcome(n *netState, ch *chain, out *Outcomes) {
	steps := ch.decode(j.stepBuf[:0])
	j.stepBuf = steps
	v := view{network: n.name, key: ch.key(), steps: steps}
	// The request is the first to arrive (a re-sent one is only a step);
	// event ids are unique within a chain, so it is found again once the
	// steps are sorted.
	// Of a cross-community transaction, the initiating gateway's record of
	// the request is the one: each gateway is the authority on itself, and
	// the responding one knows the requester only by its address.
	var reqID string
	var reqPacked, hasReq bool
	for i := range steps {
		if steps[i].role != hinscorev1.Role_ROLE_REQUEST {
			continue
		}
		initiating := j.stepCross(&steps[i]).side == hinscorev1.Side_SIDE_INITIATING
		if !hasReq || initiating {
			reqID, reqPacked, hasReq = steps[i].eventID, steps[i].idPacked, true
		}
		if initiating {
			break
		}
	}
	sortSteps(steps)
	ch.version++
	v.version = ch.version
	// Who asked comes from the request; an orphan only has its answers.
	v.src = &steps[0]
	var requested int64
	for i := range steps {
		if hasReq && steps[i].eventID == reqID && steps[i].idPacked == reqPacked {
			v.src, requested = &steps[i], steps[i].t
			break
		}
	}
	v.profile = j.profiles.get(v.src.profile)
	x := j.cross(v.profile)
	l := j.limits(n, v.profile.requestKind, x.purpose)
	v.sla, v.grace, v.slaDays, v.untimed = j.span(l, v.src.t), l.Grace, l.BusinessDays, x.untimed
	j.answers(&v)
	j.context(&v, x)
	if v.hasTta = hasReq && v.ack != nil && j.timed(&v, v.ack); v.hasTta {
		v.tta = nonNegative(v.acked - requested)
	}
	j.decision(&v, ch, requested)
	w := Entry{start: len(out.buf), Version: uint64(v.version), Network: n.name, Class: v.class}
	j.ids.outcomeID(&w.ID, n.name, v.key)
	out.buf = j.appendOutcome(out.buf, &w, &v)
	w.end = len(out.buf)
	out.list = append(out.list, w)
}

// answers fills in who answered, with which patient token, and when the
// first answer came.
func (j *Join) answers(v *view) {
	v.responder = v.profile.responderOrg
	v.token = v.src
	for i := range v.steps {
		s := &v.steps[i]
		if v.responder == "" && s.answer() {
			v.responder = j.profiles.get(s.profile).responderOrg
		}
		if v.token.token == "" {
			v.token = s
		}
		if v.ack == nil && s.answer() {
			v.ack, v.acked = s, s.t
		}
	}
}

// context fills in the purpose, the home communities and the sides: the
// purpose and communities from src (whose cross-community fields are x),
// else from the first step that has them (an answer may carry what its
// request did not); the sides from every step.
func (j *Join) context(v *view, x *crossFields) {
	v.purpose, v.purposeCode = x.purpose, x.purposeCode
	v.requesterComm, v.responderComm = x.requesterCommunity, x.responderCommunity
	var initiating, responding bool
	for i := range v.steps {
		if j.profiles.get(v.steps[i].profile).xc == 0 {
			continue
		}
		q := j.stepCross(&v.steps[i])
		if v.purpose == "" && v.purposeCode == "" {
			v.purpose, v.purposeCode = q.purpose, q.purposeCode
		}
		if v.requesterComm == "" {
			v.requesterComm = q.requesterCommunity
		}
		if v.responderComm == "" {
			v.responderComm = q.responderCommunity
		}
		initiating = initiating || q.side == hinscorev1.Side_SIDE_INITIATING
		responding = responding || q.side == hinscorev1.Side_SIDE_RESPONDING
	}
	switch {
	case initiating && responding:
		v.sides = "both"
	case initiating:
		v.sides = "initiating"
	case responding:
		v.sides = "responding"
	}
}

// timed reports whether the time from src to step s was observed: neither
// is untimed (an untimed event's time is when the exchange was recorded,
// not when it happened).
func (j *Join) timed(v *view, s *step) bool {
	return !v.untimed && !j.stepCross(s).untimed
}

// decision fills in what decided the chain, when, and its class; requested
// is its request's time.
func (j *Join) decision(v *view, ch *chain, requested int64) {
	switch ch.state {
	case stateOrphan:
		v.class, v.decided, v.decider = hinscorev1.OutcomeClass_OUTCOME_CLASS_ORPHAN, ch.decidedAt, v.src
	case stateUnanswered:
		v.class, v.decided = hinscorev1.OutcomeClass_OUTCOME_CLASS_UNANSWERED, ch.decidedAt
	case stateDecided:
		d := &v.steps[j.decider(ch, v.steps)]
		// Without an observed time to fulfil nothing is late, not even an
		// answer recorded after the chain was declared unanswered.
		var ttf int64
		var late bool
		if j.timed(v, d) {
			ttf, late = d.t-requested, ch.flags&flagLate != 0
			v.hasTtf, v.ttf = d.answer(), nonNegative(ttf)
		}
		v.class = classifyParts(d.role, d.status, j.profiles.get(d.profile).exceptionCode, ttf, v.sla, late)
		v.decided, v.decider = d.t, d
	}
	v.overflowed = ch.flags&flagOverflow != 0 && ch.state != stateDecided
}

// appendOutcome appends the Outcome message of v, whose entry is w.
func (j *Join) appendOutcome(b []byte, w *Entry, v *view) []byte {
	d := v.decider
	b = protowire.AppendTag(b, fOutcomeID, protowire.BytesType)
	b = protowire.AppendBytes(b, w.ID[:])
	b = appendUintField(b, fVersion, w.Version)
	b = appendStrField(b, fNetwork, v.network)
	b = appendStrField(b, fRequestID, v.src.messageID)
	b = appendStrField(b, fCorrelationKey, v.key)
	b = appendStrField(b, fRequestKind, v.profile.requestKind)
	b = appendStrField(b, fRequesterOrg, v.profile.requesterOrg)
	b = appendStrField(b, fResponderOrg, v.responder)
	b = appendIntField(b, fOutcomeClass, int64(v.class))
	if d != nil {
		b = appendStrField(b, fExceptionCode, j.profiles.get(d.profile).exceptionCode)
		b = appendReasons(b, d.reasons)
	}
	if v.overflowed {
		b = appendStrField(b, fReasonCodes, OverflowReason)
	}
	b = appendStepText(b, fPatientToken, v.token, true)
	b = appendIntField(b, fRequestedAtMs, v.src.t)
	b = appendIntField(b, fAcknowledgedAtMs, v.acked)
	if d != nil && d.answer() {
		b = appendIntField(b, fAnsweredAtMs, d.t)
	}
	b = appendBoolField(b, fHasTta, v.hasTta)
	b = appendUintField(b, fTtaMs, v.tta)
	b = appendBoolField(b, fHasTtf, v.hasTtf)
	b = appendUintField(b, fTtfMs, v.ttf)
	b = appendUintField(b, fSlaMs, uint64(v.sla))
	b = appendUintField(b, fGraceMs, uint64(v.grace))
	b = appendIntField(b, fDecidedAtMs, v.decided)
	b = appendStrField(b, fRuleVersion, RuleVersion)
	b = appendStrField(b, fMappingVersion, v.profile.mappingVersion)
	if d != nil {
		b = appendStrField(b, fResponseID, d.messageID)
		b = appendUintField(b, fRecordCount, uint64(d.recordCount))
	}
	for i := range v.steps {
		p := j.profiles.get(v.steps[i].profile)
		b = appendStepMsg(b, &v.steps[i], p, j.cross(p).side)
	}
	b = appendStrField(b, fPurpose, v.purpose)
	b = appendStrField(b, fPurposeCode, v.purposeCode)
	b = appendStrField(b, fRequesterCommunity, v.requesterComm)
	b = appendStrField(b, fResponderCommunity, v.responderComm)
	b = appendStrField(b, fSides, v.sides)
	b = appendUintField(b, fSLABusinessDays, uint64(v.slaDays))
	return appendBoolField(b, fUntimed, v.untimed)
}
