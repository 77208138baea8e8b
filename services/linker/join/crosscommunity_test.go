package join_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/proto/outcomeclass"
	"github.com/hinscore/hinscore/services/lib/domain/calendar"
	"github.com/hinscore/hinscore/services/lib/domain/partition"
	"github.com/hinscore/hinscore/services/linker/join"
	"github.com/hinscore/hinscore/services/linker/join/jointest"
)

// Keys of the base "q1" windowed at T0+t (windows of 10 minutes, T0
// starting one).
const (
	w0 = "q1|@w2945376" // [0, 600s)
	w1 = "q1|@w2945377" // [600s, 1200s)
)

func events(groups ...[]*hinscorev1.ExchangeEvent) []*hinscorev1.ExchangeEvent {
	return slices.Concat(groups...)
}

func one(e *hinscorev1.ExchangeEvent) []*hinscorev1.ExchangeEvent {
	return []*hinscorev1.ExchangeEvent{e}
}

// crossCommunityCases are the two gateways' records of one transaction:
// one chain, one outcome, the sides seen, and the window lookup.
func crossCommunityCases() []chainCase {
	OK, I, R := hinscorev1.Status_STATUS_OK, jointest.Initiating, jointest.Responding
	req, resp := hinscorev1.Role_ROLE_REQUEST, hinscorev1.Role_ROLE_RESPONSE
	return []chainCase{
		{
			name:   "both gateways' audits of one transaction make one outcome",
			events: events(jointest.Audit(I, "ia", "q1", 100*s, OK), jointest.Audit(R, "ra", "q1", 101*s, OK)),
			want: []string{
				w0 + " v1 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response sides=initiating untimed",
				w0 + " v2 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response,ra-request sides=both untimed",
				w0 + " v3 fulfilled req=ia-request resp=ra-response ttf=-1 tta=-1 decided=101000 steps=ia-request,ia-response,ra-request,ra-response sides=both untimed",
			},
		},
		{
			name:   "the two audits straddle a window boundary",
			events: events(jointest.Audit(I, "ia", "q1", 599*s, OK), jointest.Audit(R, "ra", "q1", 601*s, OK)),
			want: []string{
				w0 + " v1 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=599000 steps=ia-request,ia-response sides=initiating untimed",
				w0 + " v2 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=599000 steps=ia-request,ia-response,ra-request sides=both untimed",
				w0 + " v3 fulfilled req=ia-request resp=ra-response ttf=-1 tta=-1 decided=601000 steps=ia-request,ia-response,ra-request,ra-response sides=both untimed",
			},
		},
		{
			name:   "the later window's record first: the chain is of its window",
			events: events(jointest.Audit(R, "ra", "q1", 601*s, OK), jointest.Audit(I, "ia", "q1", 599*s, OK)),
			want: []string{
				w1 + " v1 fulfilled req=ra-request resp=ra-response ttf=-1 tta=-1 decided=601000 steps=ra-request,ra-response sides=responding untimed",
				w1 + " v2 fulfilled req=ia-request resp=ra-response ttf=-1 tta=-1 decided=601000 steps=ia-request,ra-request,ra-response sides=both untimed",
				w1 + " v3 fulfilled req=ia-request resp=ra-response ttf=-1 tta=-1 decided=601000 steps=ia-request,ia-response,ra-request,ra-response sides=both untimed",
			},
		},
		{
			name:   "the earlier window's neighbour too",
			events: events(jointest.Audit(I, "ia", "q1", 2*s, OK), jointest.Audit(R, "ra", "q1", -2*s, OK)),
			want: []string{
				w0 + " v1 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=2000 steps=ia-request,ia-response sides=initiating untimed",
				w0 + " v2 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=2000 steps=ra-request,ia-request,ia-response sides=both untimed",
				w0 + " v3 fulfilled req=ia-request resp=ra-response ttf=-1 tta=-1 decided=-2000 steps=ra-request,ra-response,ia-request,ia-response sides=both untimed",
			},
		},
		{
			name:   "the same query a day later is another transaction",
			events: events(jointest.Audit(I, "ia", "q1", 100*s, OK), jointest.Audit(I, "ib", "q1", 86400*s+100*s, OK)),
			want: []string{
				w0 + " v1 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response sides=initiating untimed",
				"q1|@w2945520 v1 fulfilled req=ib-request resp=ib-response ttf=-1 tta=-1 decided=86500000 steps=ib-request,ib-response sides=initiating untimed",
			},
		},
		{
			name: "a neighbouring window's chain more than a window away starts another",
			events: events(jointest.Audit(I, "ia", "q1", 0, OK), one(jointest.XC(R, req, "rb", "q1", 1199*s, 0)),
				one(jointest.Tick(1400*s))),
			want: []string{
				w0 + " v1 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=0 steps=ia-request,ia-response sides=initiating untimed",
				w1 + " v1 unanswered req=rb resp= ttf=-1 tta=-1 decided=1289000 steps=rb sides=responding",
			},
		},
		{
			name: "an answer waits in the next window; its request in the window before links to it",
			events: []*hinscorev1.ExchangeEvent{jointest.XC(R, resp, "rs", "q1", 601*s, OK), jointest.XC(I, req, "ir", "q1", 599*s, 0),
				jointest.Tick(900 * s)},
			want: []string{w1 + " v1 fulfilled req=ir resp=rs ttf=2000 tta=2000 decided=601000 steps=ir,rs sides=both"},
		},
		{
			name: "between chains in both neighbouring windows, the nearer in time",
			events: events(jointest.Audit(I, "ia", "q1", -100*s, OK), one(jointest.XC(R, req, "rb", "q1", 650*s, 0)),
				one(jointest.XC(R, resp, "rx", "q1", 300*s, OK))),
			want: []string{
				"q1|@w2945375 v1 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=-100000 steps=ia-request,ia-response sides=initiating untimed",
				w1 + " v1 fulfilled req=rb resp=rx ttf=0 tta=0 decided=300000 steps=rx,rb sides=responding",
			},
		},
	}
}

// lateRecordCases are the other gateway's record delivered late, a
// duplicated record, and timed copies of both sides.
func lateRecordCases() []chainCase {
	OK, I, R := hinscorev1.Status_STATUS_OK, jointest.Initiating, jointest.Responding
	req, resp := hinscorev1.Role_ROLE_REQUEST, hinscorev1.Role_ROLE_RESPONSE
	return []chainCase{
		{
			name: "the other gateway's record later than the side wait is a straggler of the compacted chain, not a second transaction",
			events: events(jointest.Audit(I, "ia", "q1", 599*s, OK), one(jointest.Tick(599*s+900*s+30*s+1)),
				jointest.Audit(R, "ra", "q1", 601*s, OK)),
			want: []string{
				w0 + " v1 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=599000 steps=ia-request,ia-response sides=initiating untimed",
			},
		},
		{
			name: "the other gateway's record delivered minutes late, within the side wait, still joins",
			events: events(jointest.Audit(I, "ia", "q1", 100*s, OK), one(jointest.Tick(700*s)),
				jointest.Audit(R, "ra", "q1", 101*s, OK)),
			want: []string{
				w0 + " v1 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response sides=initiating untimed",
				w0 + " v2 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response,ra-request sides=both untimed",
				w0 + " v3 fulfilled req=ia-request resp=ra-response ttf=-1 tta=-1 decided=101000 steps=ia-request,ia-response,ra-request,ra-response sides=both untimed",
			},
		},
		{
			name:   "a duplicated audit record stays a duplicate",
			events: events(jointest.Audit(I, "ia", "q1", 100*s, OK), jointest.Audit(I, "ia", "q1", 100*s, OK)),
			want: []string{
				w0 + " v1 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response sides=initiating untimed",
			},
		},
		{
			name: "timed copies of both sides: the other side's request is not a re-send, the responding answer decides",
			events: []*hinscorev1.ExchangeEvent{jointest.XC(I, req, "ir", "q1", 0, 0), jointest.XC(R, req, "rr", "q1", 1*s, 0),
				jointest.XC(R, resp, "rs", "q1", 3*s, OK), jointest.XC(I, resp, "is", "q1", 2*s, OK)},
			want: []string{
				w0 + " v1 fulfilled req=ir resp=rs ttf=3000 tta=3000 decided=3000 steps=ir,rr,rs sides=both",
				w0 + " v2 fulfilled req=ir resp=rs ttf=3000 tta=2000 decided=3000 steps=ir,rr,is,rs sides=both",
			},
		},
	}
}

// txKeyed gives events the transaction key of the base "q1" (a queryId, a
// MessageID: partition.Transaction), unwindowed.
func txKeyed(evs ...[]*hinscorev1.ExchangeEvent) []*hinscorev1.ExchangeEvent {
	out := events(evs...)
	for _, e := range out {
		e.CorrelationKey = partition.Transaction("q1")
	}
	return out
}

// transactionKeyCases are the records of a transaction with an id unique
// to it: they link at any delay, and the decided chain waits for the
// other side as a windowed one does.
func transactionKeyCases() []chainCase {
	OK, I, R := hinscorev1.Status_STATUS_OK, jointest.Initiating, jointest.Responding
	req, resp, interim := hinscorev1.Role_ROLE_REQUEST, hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Role_ROLE_INTERIM
	const tx = "q1|@t"
	untimed := func(e *hinscorev1.ExchangeEvent) []*hinscorev1.ExchangeEvent {
		e.Untimed = true
		return one(e)
	}
	return []chainCase{
		{
			name: "a transaction key: the other gateway's record delivered minutes late, within the side wait, still joins",
			events: txKeyed(jointest.Audit(I, "ia", "q1", 100*s, OK), one(jointest.Tick(700*s)),
				jointest.Audit(R, "ra", "q1", 101*s, OK)),
			want: []string{
				tx + " v1 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response sides=initiating untimed",
				tx + " v2 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response,ra-request sides=both untimed",
				tx + " v3 fulfilled req=ia-request resp=ra-response ttf=-1 tta=-1 decided=101000 steps=ia-request,ia-response,ra-request,ra-response sides=both untimed",
			},
		},
		{
			name: "a deferred answer three hours after its request links to it",
			events: txKeyed(untimed(jointest.XC(I, req, "ir", "q1", 0, 0)),
				untimed(jointest.XC(R, interim, "ack", "q1", 1*s, hinscorev1.Status_STATUS_ACCEPTED)),
				one(jointest.Tick(3*3600*s)), untimed(jointest.XC(R, resp, "rs", "q1", 3*3600*s, OK))),
			want: []string{
				tx + " v1 unanswered req=ir resp= ttf=-1 tta=-1 decided=90000 steps=ir,ack sides=both untimed",
				tx + " v2 fulfilled req=ir resp=rs ttf=-1 tta=-1 decided=10800000 steps=ir,ack,rs sides=both untimed",
			},
		},
	}
}

// sideRuleCases are the two sides' answers disagreeing.
func sideRuleCases() []chainCase {
	OK, I, R := hinscorev1.Status_STATUS_OK, jointest.Initiating, jointest.Responding
	return []chainCase{
		{
			name: "the initiating gateway's failure is not hidden by the responding one's success",
			events: events(jointest.Audit(I, "ia", "q1", 100*s, hinscorev1.Status_STATUS_ERROR_TRANSIENT),
				jointest.Audit(R, "ra", "q1", 99*s, OK)),
			want: []string{
				w0 + " v1 error_transient req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response sides=initiating untimed",
				w0 + " v2 error_transient req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ra-request,ia-request,ia-response sides=both untimed",
				w0 + " v3 error_transient req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ra-request,ra-response,ia-request,ia-response sides=both untimed",
			},
		},
		{
			name: "the responding gateway's refusal decides over the initiating one's success",
			events: events(jointest.Audit(I, "ia", "q1", 100*s, OK),
				jointest.Audit(R, "ra", "q1", 101*s, hinscorev1.Status_STATUS_REFUSED)),
			want: []string{
				w0 + " v1 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response sides=initiating untimed",
				w0 + " v2 fulfilled req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response,ra-request sides=both untimed",
				w0 + " v3 refused_unjustified req=ia-request resp=ra-response ttf=-1 tta=-1 decided=101000 steps=ia-request,ia-response,ra-request,ra-response sides=both untimed",
			},
		},
		{
			name: "no such patient at the responder, an error at the initiator: the error decides",
			events: events(jointest.Audit(R, "ra", "q1", 101*s, hinscorev1.Status_STATUS_NOT_FOUND),
				jointest.Audit(I, "ia", "q1", 100*s, hinscorev1.Status_STATUS_ERROR_PERMANENT)),
			want: []string{
				w0 + " v1 not_found req=ra-request resp=ra-response ttf=-1 tta=-1 decided=101000 steps=ra-request,ra-response sides=responding untimed",
				w0 + " v2 not_found req=ia-request resp=ra-response ttf=-1 tta=-1 decided=101000 steps=ia-request,ra-request,ra-response sides=both untimed",
				w0 + " v3 error_permanent req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response,ra-request,ra-response sides=both untimed",
			},
		},
		{
			name: "both failed: the responding gateway's record says why",
			events: events(jointest.Audit(I, "ia", "q1", 100*s, hinscorev1.Status_STATUS_ERROR_TRANSIENT),
				jointest.Audit(R, "ra", "q1", 101*s, hinscorev1.Status_STATUS_REFUSED)),
			want: []string{
				w0 + " v1 error_transient req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response sides=initiating untimed",
				w0 + " v2 error_transient req=ia-request resp=ia-response ttf=-1 tta=-1 decided=100000 steps=ia-request,ia-response,ra-request sides=both untimed",
				w0 + " v3 refused_unjustified req=ia-request resp=ra-response ttf=-1 tta=-1 decided=101000 steps=ia-request,ia-response,ra-request,ra-response sides=both untimed",
			},
		},
	}
}

// untimedCases are requests and answers whose event time is when they were
// recorded, not when they happened: no times, never late, still unanswered
// after SLA and grace.
func untimedCases() []chainCase {
	OK := hinscorev1.Status_STATUS_OK
	untimed := func(e *hinscorev1.ExchangeEvent) *hinscorev1.ExchangeEvent {
		return jointest.With(e, func(e *hinscorev1.ExchangeEvent) { e.Untimed = true })
	}
	return []chainCase{
		{
			name:   "an untimed request answered after its SLA is not late and has no times",
			events: []*hinscorev1.ExchangeEvent{untimed(jointest.Req("r1", "k1", 0)), untimed(jointest.Resp("a1", "k1", 70*s, OK))},
			want:   []string{"k1 v1 fulfilled req=r1 resp=a1 ttf=-1 tta=-1 decided=70000 steps=r1,a1 untimed"},
		},
		{
			name:   "an untimed request never answered is unanswered after SLA and grace",
			events: []*hinscorev1.ExchangeEvent{untimed(jointest.Req("r1", "k1", 0)), jointest.Tick(121 * s)},
			want:   []string{"k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=90000 steps=r1 untimed"},
		},
		{
			name: "an untimed request answered after it was declared unanswered is fulfilled, not late",
			events: []*hinscorev1.ExchangeEvent{untimed(jointest.Req("r1", "k1", 0)), jointest.Tick(121 * s),
				untimed(jointest.Resp("a1", "k1", 125*s, OK))},
			want: []string{
				"k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=90000 steps=r1 untimed",
				"k1 v2 fulfilled req=r1 resp=a1 ttf=-1 tta=-1 decided=125000 steps=r1,a1 untimed",
			},
		},
		{
			name:   "a timed request with an untimed answer: no time to fulfil, not late",
			events: []*hinscorev1.ExchangeEvent{jointest.Req("r1", "k1", 0), untimed(jointest.Resp("a1", "k1", 70*s, OK))},
			want:   []string{"k1 v1 fulfilled req=r1 resp=a1 ttf=-1 tta=-1 decided=70000 steps=r1,a1"},
		},
		{
			name: "a timed interim, then an untimed answer: acknowledged in time, no time to fulfil",
			events: []*hinscorev1.ExchangeEvent{jointest.Req("r1", "k1", 0), jointest.Interim("i1", "k1", 2*s),
				untimed(jointest.Resp("a1", "k1", 70*s, OK))},
			want: []string{"k1 v1 fulfilled req=r1 resp=a1 ttf=-1 tta=2000 decided=70000 steps=r1,i1,a1"},
		},
		{
			name: "a timed request declared unanswered, then an untimed answer: not late, no time to fulfil",
			events: []*hinscorev1.ExchangeEvent{jointest.Req("r1", "k1", 0), jointest.Tick(121 * s),
				untimed(jointest.Resp("a1", "k1", 125*s, OK))},
			want: []string{
				"k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=90000 steps=r1",
				"k1 v2 fulfilled req=r1 resp=a1 ttf=-1 tta=-1 decided=125000 steps=r1,a1",
			},
		},
	}
}

// TestOutcomeCrossCommunityFields checks what a cross-community outcome
// carries: purpose, communities, sides, each step's side, untimed.
func TestOutcomeCrossCommunityFields(t *testing.T) {
	j := join.New(testRules(nil))
	var outs []*hinscorev1.Outcome
	evs := events(jointest.Audit(jointest.Responding, "ra", "q1", 100*s, hinscorev1.Status_STATUS_OK),
		jointest.Audit(jointest.Initiating, "ia", "q1", 101*s, hinscorev1.Status_STATUS_OK))
	// The request the outcome reads its purpose from carries none: an
	// answer that has one gives it.
	evs[0].Purpose, evs[0].PurposeCode, evs[0].ResponderCommunity = "", "", ""
	for _, e := range evs {
		outs = jointest.Observe(j, e, jointest.T0, outs)
	}
	o := outs[len(outs)-1]
	checks := []struct {
		field     string
		got, want any
	}{
		{"purpose", o.GetPurpose(), "treatment"},
		{"purpose_code", o.GetPurposeCode(), "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1|T-TRTMNT"},
		{"requester_community", o.GetRequesterCommunity(), "urn:oid:1.2.3"},
		{"responder_community", o.GetResponderCommunity(), "urn:oid:4.5.6"},
		{"sides", o.GetSides(), "both"},
		{"untimed", o.GetUntimed(), true},
		{"has_tta", o.GetHasTta(), false},
		{"has_ttf", o.GetHasTtf(), false},
		{"sla_business_days", o.GetSlaBusinessDays(), uint32(0)},
		{"rule_version", o.GetRuleVersion(), "link/2"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	var sides []string
	for _, st := range o.GetSteps() {
		sides = append(sides, st.GetMessageId()+":"+st.GetSide().String())
	}
	want := "ra-request:SIDE_RESPONDING ra-response:SIDE_RESPONDING ia-request:SIDE_INITIATING ia-response:SIDE_INITIATING"
	if got := strings.Join(sides, " "); got != want {
		t.Errorf("step sides %s, want %s", got, want)
	}
}

// TestBusinessDaySLA: 45 CFR 171.204(b)'s ten business days for a request
// on the Friday before Thanksgiving 2026 (20 November, 10:00 in New York):
// Thanksgiving (26 November) does not count, the day after it does, so the
// deadline is Monday 7 December at 10:00. sla_ms is the span that gives
// this request.
func TestBusinessDaySLA(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	r := testRules(func(r *join.Rules) {
		r.Limits = func(network, kind, purpose string) join.Limit {
			return join.Limit{BusinessDays: 10, Grace: 30 * s}
		}
		r.Calendar = calendar.USFederal().In(ny)
	})
	asked := time.Date(2026, 11, 20, 10, 0, 0, 0, ny)
	deadline := time.Date(2026, 12, 7, 10, 0, 0, 0, ny)
	at := func(k, id string, tm time.Time, role hinscorev1.Role) *hinscorev1.ExchangeEvent {
		e := jointest.Ev("net", role, id, k, 0, hinscorev1.Status_STATUS_OK)
		e.EventTimeMs = tm.UnixMilli()
		return e
	}
	req := hinscorev1.Role_ROLE_REQUEST
	resp := hinscorev1.Role_ROLE_RESPONSE
	evs := []*hinscorev1.ExchangeEvent{
		at("k1", "r1", asked, req), at("k2", "r2", asked, req), at("k3", "r3", asked, req),
		at("k1", "a1", deadline.Add(-time.Minute), resp),
		at("k2", "a2", deadline.Add(time.Minute), resp),
		at("tick", "t", deadline.Add(2*time.Minute), hinscorev1.Role_ROLE_NOTIFICATION),
	}
	j := join.New(r)
	var outs []*hinscorev1.Outcome
	for _, e := range evs {
		outs = jointest.Observe(j, e, jointest.T0, outs)
	}
	got := map[string]*hinscorev1.Outcome{}
	for _, o := range outs {
		got[o.GetCorrelationKey()] = o
	}
	span := uint64(deadline.Sub(asked).Milliseconds())
	if span != 17*24*3600*1000 {
		t.Fatalf("test setup: span %d", span)
	}
	for k, want := range map[string]string{"k1": "fulfilled", "k2": "fulfilled_late", "k3": "unanswered"} {
		o := got[k]
		if c := jointest.Summarize(o).Class; c != want || o.GetSlaMs() != span || o.GetSlaBusinessDays() != 10 {
			t.Errorf("%s: %s sla %d ms, %d business days; want %s, %d ms, 10", k, c, o.GetSlaMs(), o.GetSlaBusinessDays(), want, span)
		}
	}
	if d := got["k3"].GetDecidedAtMs(); d != deadline.Add(30*time.Second).UnixMilli() {
		t.Errorf("k3 unanswered as of %s, want the deadline plus grace", time.UnixMilli(d).In(ny))
	}
	// A day counts in the calendar's zone: Thursday 19 November at 23:30 in
	// New York is already Friday in UTC, whose ten business days end on the
	// next Monday rather than on Friday 4 December.
	late := time.Date(2026, 11, 19, 23, 30, 0, 0, ny)
	for _, tc := range []struct {
		loc  *time.Location
		want time.Time
	}{{ny, time.Date(2026, 12, 4, 23, 30, 0, 0, ny)}, {time.UTC, time.Date(2026, 12, 7, 4, 30, 0, 0, time.UTC)}} {
		r.Calendar = calendar.USFederal().In(tc.loc)
		j := join.New(r)
		outs := jointest.Observe(j, at("k", "r", late, req), jointest.T0, nil)
		outs = jointest.Observe(j, at("k", "a", late.Add(time.Hour), resp), jointest.T0, outs)
		if got := late.Add(time.Duration(outs[0].GetSlaMs()) * time.Millisecond); !got.Equal(tc.want) {
			t.Errorf("in %s: deadline %s, want %s", tc.loc, got, tc.want)
		}
	}
}

// TestCrossCommunityCountedOnce runs generated cross-community traffic
// (both gateways' audits, one side lost, duplicates, late records, window
// boundaries, timed copies) and checks that every transaction is one
// outcome whose sides are the sides its records came from; and that the
// order records arrive in within the lateness changes neither the count,
// nor any transaction's class and sides.
func TestCrossCommunityCountedOnce(t *testing.T) {
	const transactions = 2000
	r := testRules(nil)
	events := jointest.GenCrossEvents(4, transactions)
	sidesOf := map[string]map[hinscorev1.Side]bool{}
	for _, e := range events {
		if base, _, ok := partition.SplitWindowed(e.GetCorrelationKey()); ok {
			if sidesOf[base] == nil {
				sidesOf[base] = map[hinscorev1.Side]bool{}
			}
			sidesOf[base][e.GetSide()] = true
		}
	}
	var windowJoins uint64
	run := func(evs []*hinscorev1.ExchangeEvent) map[string]string {
		j := join.New(r)
		var outs []*hinscorev1.Outcome
		for _, e := range evs {
			outs = jointest.Observe(j, e, jointest.T0, outs)
		}
		windowJoins = j.Stats().WindowJoins
		byBase := map[string]string{}
		for _, o := range jointest.FinalOutcomes(outs) {
			base, _, _ := partition.SplitWindowed(o.GetCorrelationKey())
			if _, dup := byBase[base]; dup {
				t.Fatalf("transaction %s has two outcomes", base)
			}
			byBase[base] = outcomeclass.Name(o.GetOutcomeClass()) + " " + o.GetSides()
		}
		return byBase
	}
	want := run(events)
	if len(want) != transactions {
		t.Fatalf("%d outcomes for %d transactions", len(want), transactions)
	}
	// One transaction in twenty straddles a boundary (its second record, and
	// the duplicates of it, join across).
	if windowJoins < transactions/40 {
		t.Fatalf("%d events joined a neighbouring window's chain, want at least %d", windowJoins, transactions/40)
	}
	t.Logf("%d events, %d joined a neighbouring window's chain", len(events), windowJoins)
	counts := map[string]int{}
	for base, got := range want {
		s := sidesOf[base]
		sides := map[[2]bool]string{{true, true}: "both", {true, false}: "initiating", {false, true}: "responding"}[[2]bool{s[jointest.Initiating], s[jointest.Responding]}]
		if _, cls, _ := strings.Cut(got, " "); cls != sides {
			t.Fatalf("%s: %s, its records come from %s", base, got, sides)
		}
		counts[got]++
	}
	for _, c := range []string{"fulfilled both", "fulfilled initiating", "fulfilled responding", "error_transient both", "refused_unjustified both", "not_found both"} {
		if counts[c] == 0 {
			t.Fatalf("generated traffic has no %q outcome: %v", c, counts)
		}
	}
	for seed := range uint64(3) {
		rng := rand.New(rand.NewPCG(seed, 22))
		shuffled := slices.Clone(events[:len(events)-1])
		// Swap neighbours a few seconds apart: each still arrives within
		// the lateness.
		for i := 1; i < len(shuffled); i++ {
			if rng.IntN(3) == 0 && shuffled[i].EventTimeMs-shuffled[i-1].EventTimeMs < 10*s {
				shuffled[i], shuffled[i-1] = shuffled[i-1], shuffled[i]
			}
		}
		got := run(append(shuffled, events[len(events)-1]))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("seed %d: the arrival order changed the transactions' outcomes", seed)
		}
	}
}
