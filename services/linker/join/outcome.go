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
	acked        int64 // the first answer's time, 0 when none
	hasTta       bool
	tta          uint64
	sla, grace   int64
	class        hinscorev1.OutcomeClass
	decided      int64
	decider      *step // the deciding message (an orphan's is its first answer)
	hasTtf       bool
	ttf          uint64
	overflowed   bool // closed by the pending cap (not decided since)
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
	var reqID string
	var reqPacked, hasReq bool
	for i := range steps {
		if steps[i].role == hinscorev1.Role_ROLE_REQUEST {
			reqID, reqPacked, hasReq = steps[i].eventID, steps[i].idPacked, true
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
	v.sla, v.grace = j.limits(n, v.profile.requestKind)
	j.answers(&v)
	if v.hasTta = hasReq && v.acked != 0; v.hasTta {
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
		if v.acked == 0 && s.answer() {
			v.acked = s.t
		}
	}
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
		d := &v.steps[ch.decider(v.steps)]
		t := d.t - requested
		v.class = classifyParts(d.role, d.status, j.profiles.get(d.profile).exceptionCode, t, v.sla, ch.flags&flagLate != 0)
		v.decided, v.decider = d.t, d
		if d.answer() {
			v.hasTtf, v.ttf = true, nonNegative(t)
		}
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
		b = appendStepMsg(b, &v.steps[i], j.profiles.get(v.steps[i].profile).messageType)
	}
	return b
}
