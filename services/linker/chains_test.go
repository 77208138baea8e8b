package linker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/ids"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/proto/outcomeclass"
	"google.golang.org/protobuf/proto"
)

// t0 is the event-time origin of the tests (2026-01-01T00:00:00Z).
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const s = int64(1000) // one second in milliseconds

func at(ms int64) int64 { return t0.UnixMilli() + ms }

// ev builds an event; id is its message id and, with the network, its event id.
func ev(network string, role hinscorev1.Role, id, key string, t int64, st hinscorev1.Status) *hinscorev1.ExchangeEvent {
	return &hinscorev1.ExchangeEvent{
		EventId:        network + "/" + id,
		Network:        network,
		MessageId:      id,
		MessageType:    role.String(),
		Role:           role,
		RequestKind:    "patient_query",
		CorrelationKey: key,
		RequesterOrg:   "clinic",
		ResponderOrg:   "hospital",
		EventTimeMs:    at(t),
		Status:         st,
		PatientToken:   "tok",
		MappingVersion: "map/1",
	}
}

func req(id, key string, t int64) *hinscorev1.ExchangeEvent {
	return ev("net", hinscorev1.Role_ROLE_REQUEST, id, key, t, hinscorev1.Status_STATUS_UNSPECIFIED)
}

func resp(id, key string, t int64, st hinscorev1.Status) *hinscorev1.ExchangeEvent {
	return ev("net", hinscorev1.Role_ROLE_RESPONSE, id, key, t, st)
}

func interim(id, key string, t int64) *hinscorev1.ExchangeEvent {
	return ev("net", hinscorev1.Role_ROLE_INTERIM, id, key, t, hinscorev1.Status_STATUS_ACCEPTED)
}

func cancel(id, key string, t int64) *hinscorev1.ExchangeEvent {
	return ev("net", hinscorev1.Role_ROLE_CANCEL, id, key, t, hinscorev1.Status_STATUS_CANCELLED)
}

// tick is a notification: it only moves the network's event clock.
func tick(t int64) *hinscorev1.ExchangeEvent {
	return ev("net", hinscorev1.Role_ROLE_NOTIFICATION, fmt.Sprintf("tick-%d", t), "", t, hinscorev1.Status_STATUS_UNSPECIFIED)
}

func with(e *hinscorev1.ExchangeEvent, f func(*hinscorev1.ExchangeEvent)) *hinscorev1.ExchangeEvent {
	f(e)
	return e
}

// got is the part of an outcome the table compares, printed compactly.
type got struct {
	Key, Class        string
	Version           uint64
	Request, Response string
	TTF, TTA          int64 // -1 when absent
	DecidedAt         int64 // relative to t0
	Steps             string
	Reasons           string
}

func (g got) String() string {
	s := fmt.Sprintf("%s v%d %s req=%s resp=%s ttf=%d tta=%d decided=%d steps=%s",
		g.Key, g.Version, g.Class, g.Request, g.Response, g.TTF, g.TTA, g.DecidedAt, g.Steps)
	if g.Reasons != "" {
		s += " reasons=" + g.Reasons
	}
	return s
}

func summarize(o *hinscorev1.Outcome) got {
	g := got{
		Key: o.GetCorrelationKey(), Class: outcomeclass.Name(o.GetOutcomeClass()), Version: o.GetVersion(),
		Request: o.GetRequestId(), Response: o.GetResponseId(), TTF: -1, TTA: -1,
		DecidedAt: o.GetDecidedAtMs() - t0.UnixMilli(),
	}
	if o.GetHasTtf() {
		g.TTF = int64(o.GetTtfMs())
	}
	if o.GetHasTta() {
		g.TTA = int64(o.GetTtaMs())
	}
	var ids []string
	for _, st := range o.GetSteps() {
		ids = append(ids, st.GetMessageId())
	}
	g.Steps = strings.Join(ids, ",")
	g.Reasons = strings.Join(o.GetReasonCodes(), ",")
	return g
}

func testRules(t testing.TB, mutate func(*Config)) rules {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return newRules(cfg)
}

// TestChains runs each rule of the join on a short event sequence and checks
// every outcome it publishes, in order. Defaults: patient_query SLA 60s,
// grace 30s (deadline 90s), lateness 30s, so a tick at T moves the
// watermark to T-30s.
func TestChains(t *testing.T) {
	for _, tc := range append(chainCases(), overflowCases()...) {
		t.Run(tc.name, func(t *testing.T) {
			j := newChains(testRules(t, tc.cfg))
			var outs []*hinscorev1.Outcome
			for _, e := range tc.events {
				outs = j.observe(e, t0, outs)
			}
			var gotS []string
			for _, o := range outs {
				gotS = append(gotS, summarize(o).String())
			}
			if !slices.Equal(gotS, tc.want) {
				t.Fatalf("outcomes:\n got  %s\n want %s", strings.Join(gotS, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

// chainCase is one row of the join's table: events in, outcomes out.
type chainCase struct {
	name   string
	cfg    func(*Config)
	events []*hinscorev1.ExchangeEvent
	want   []string
}

// chainCases are the join rules, one case each.
func chainCases() []chainCase {
	OK := hinscorev1.Status_STATUS_OK
	return []chainCase{
		{
			name:   "fulfilled in time",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), resp("a1", "k1", 5*s, OK)},
			want:   []string{"k1 v1 fulfilled req=r1 resp=a1 ttf=5000 tta=5000 decided=5000 steps=r1,a1"},
		},
		{
			name:   "fulfilled after its SLA but within grace is late",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), resp("a1", "k1", 70*s, OK)},
			want:   []string{"k1 v1 fulfilled_late req=r1 resp=a1 ttf=70000 tta=70000 decided=70000 steps=r1,a1"},
		},
		{
			name:   "interim answer sets the time to acknowledge",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), interim("i1", "k1", 2*s), resp("a1", "k1", 10*s, OK)},
			want:   []string{"k1 v1 fulfilled req=r1 resp=a1 ttf=10000 tta=2000 decided=10000 steps=r1,i1,a1"},
		},
		{
			name:   "an accepted response is an interim, not a final",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), resp("i1", "k1", 1*s, hinscorev1.Status_STATUS_ACCEPTED), tick(121 * s)},
			want:   []string{"k1 v1 unanswered req=r1 resp= ttf=-1 tta=1000 decided=90000 steps=r1,i1"},
		},
		{
			name:   "no answer by SLA plus grace is unanswered",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), tick(120 * s), tick(121 * s)},
			want:   []string{"k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=90000 steps=r1"},
		},
		{
			name:   "late answer re-issues the same outcome as version 2",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), tick(121 * s), resp("a1", "k1", 130*s, OK)},
			want: []string{
				"k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=90000 steps=r1",
				"k1 v2 fulfilled_late req=r1 resp=a1 ttf=130000 tta=130000 decided=130000 steps=r1,a1",
			},
		},
		{
			name: "late refusal keeps its class",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), tick(121 * s),
				resp("a1", "k1", 130*s, hinscorev1.Status_STATUS_REFUSED)},
			want: []string{
				"k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=90000 steps=r1",
				"k1 v2 refused_unjustified req=r1 resp=a1 ttf=130000 tta=130000 decided=130000 steps=r1,a1",
			},
		},
		{
			name:   "an answer that moves the clock past its own deadline links first",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), resp("a1", "k1", 200*s, OK)},
			want:   []string{"k1 v1 fulfilled_late req=r1 resp=a1 ttf=200000 tta=200000 decided=200000 steps=r1,a1"},
		},
		{
			name:   "answer before its request waits and links",
			events: []*hinscorev1.ExchangeEvent{resp("a1", "k1", 5*s, OK), req("r1", "k1", 0)},
			want:   []string{"k1 v1 fulfilled req=r1 resp=a1 ttf=5000 tta=5000 decided=5000 steps=r1,a1"},
		},
		{
			name:   "answer never matched becomes an orphan",
			events: []*hinscorev1.ExchangeEvent{resp("a1", "k1", 5*s, OK), tick(65 * s), tick(66 * s)},
			want:   []string{"k1 v1 orphan req=a1 resp=a1 ttf=-1 tta=-1 decided=35000 steps=a1"},
		},
		{
			name:   "a request after its orphan re-issues it linked",
			events: []*hinscorev1.ExchangeEvent{resp("a1", "k1", 5*s, OK), tick(66 * s), req("r1", "k1", 0)},
			want: []string{
				"k1 v1 orphan req=a1 resp=a1 ttf=-1 tta=-1 decided=35000 steps=a1",
				"k1 v2 fulfilled req=r1 resp=a1 ttf=5000 tta=5000 decided=5000 steps=r1,a1",
			},
		},
		{
			name: "duplicates are ignored",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), req("r1", "k1", 0),
				resp("a1", "k1", 5*s, OK), resp("a1", "k1", 5*s, OK), tick(200 * s)},
			want: []string{"k1 v1 fulfilled req=r1 resp=a1 ttf=5000 tta=5000 decided=5000 steps=r1,a1"},
		},
		{
			name:   "requester cancel closes as cancelled",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), cancel("c1", "k1", 10*s), tick(200 * s)},
			want:   []string{"k1 v1 cancelled req=r1 resp=c1 ttf=-1 tta=-1 decided=10000 steps=r1,c1"},
		},
		{
			name:   "cancel after the deadline leaves it unanswered",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), tick(121 * s), cancel("c1", "k1", 125*s)},
			want: []string{
				"k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=90000 steps=r1",
				"k1 v2 unanswered req=r1 resp= ttf=-1 tta=-1 decided=90000 steps=r1,c1",
			},
		},
		{
			name: "the first final decides, later ones are kept as steps",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), resp("a1", "k1", 5*s, OK),
				resp("a2", "k1", 6*s, hinscorev1.Status_STATUS_REFUSED)},
			want: []string{
				"k1 v1 fulfilled req=r1 resp=a1 ttf=5000 tta=5000 decided=5000 steps=r1,a1",
				"k1 v2 fulfilled req=r1 resp=a1 ttf=5000 tta=5000 decided=5000 steps=r1,a1,a2",
			},
		},
		{
			name: "first by event time decides even when it arrives second",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), resp("a2", "k1", 6*s, hinscorev1.Status_STATUS_REFUSED),
				resp("a1", "k1", 5*s, OK)},
			want: []string{
				"k1 v1 refused_unjustified req=r1 resp=a2 ttf=6000 tta=6000 decided=6000 steps=r1,a2",
				"k1 v2 fulfilled req=r1 resp=a1 ttf=5000 tta=5000 decided=5000 steps=r1,a1,a2",
			},
		},
		{
			name: "a re-sent request is a step of its chain",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), req("r1b", "k1", 1*s),
				resp("a1", "k1", 5*s, OK)},
			want: []string{"k1 v1 fulfilled req=r1 resp=a1 ttf=5000 tta=5000 decided=5000 steps=r1,r1b,a1"},
		},
		{
			name: "a straggler after the chain is compacted is not an orphan",
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), resp("a1", "k1", 5*s, OK), tick(100 * s),
				resp("a9", "k1", 90*s, OK), tick(300 * s)},
			want: []string{"k1 v1 fulfilled req=r1 resp=a1 ttf=5000 tta=5000 decided=5000 steps=r1,a1"},
		},
		{
			name:   "notifications produce no outcome",
			events: []*hinscorev1.ExchangeEvent{tick(0), tick(500 * s)},
		},
		{
			name: "unknown request kind takes patient_query's SLA",
			events: []*hinscorev1.ExchangeEvent{
				with(req("r1", "k1", 0), func(e *hinscorev1.ExchangeEvent) { e.RequestKind = "telepathy" }),
				tick(121 * s)},
			want: []string{"k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=90000 steps=r1"},
		},
		{
			name: "document_query has five minutes",
			events: []*hinscorev1.ExchangeEvent{
				with(req("r1", "k1", 0), func(e *hinscorev1.ExchangeEvent) { e.RequestKind = "document_query" }),
				tick(200 * s), resp("a1", "k1", 240*s, OK)},
			want: []string{"k1 v1 fulfilled req=r1 resp=a1 ttf=240000 tta=240000 decided=240000 steps=r1,a1"},
		},
		{
			name: "SLA and grace from config, per network",
			cfg: func(c *Config) {
				c.SLA = map[string]time.Duration{"net/patient_query": 10 * time.Second}
				c.Grace = map[string]time.Duration{"patient_query": 5 * time.Second}
			},
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), resp("a1", "k1", 12*s, OK),
				req("r2", "k2", 0), tick(46 * s)},
			want: []string{
				"k1 v1 fulfilled_late req=r1 resp=a1 ttf=12000 tta=12000 decided=12000 steps=r1,a1",
				"k2 v1 unanswered req=r2 resp= ttf=-1 tta=-1 decided=15000 steps=r2",
			},
		},
		{
			name: "watermarks are per network",
			events: []*hinscorev1.ExchangeEvent{
				req("r1", "k1", 0),
				ev("other", hinscorev1.Role_ROLE_NOTIFICATION, "n1", "", 500*s, 0),
				resp("a1", "k1", 50*s, OK)},
			want: []string{"k1 v1 fulfilled req=r1 resp=a1 ttf=50000 tta=50000 decided=50000 steps=r1,a1"},
		},
		{
			name:   "no lateness: the watermark is the newest event time",
			cfg:    func(c *Config) { c.Lateness = 0 },
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), tick(91 * s)},
			want:   []string{"k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=90000 steps=r1"},
		},
	}
}

// overflowCases are the cap on pending chains (MaxPending): the oldest
// pending chain, in the order chains became pending, is closed with
// OverflowReason.
func overflowCases() []chainCase {
	OK := hinscorev1.Status_STATUS_OK
	capAt := func(n int) func(*Config) { return func(c *Config) { c.MaxPending = n } }
	return []chainCase{
		{
			name:   "overflow closes the oldest open request as unanswered",
			cfg:    capAt(2),
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), req("r2", "k2", 1*s), req("r3", "k3", 2*s), resp("a2", "k2", 3*s, OK)},
			want: []string{
				"k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=2000 steps=r1 reasons=hinscore|overflow",
				"k2 v1 fulfilled req=r2 resp=a2 ttf=2000 tta=2000 decided=3000 steps=r2,a2",
			},
		},
		{
			name:   "an answer to an overflowed request is classified on its own time",
			cfg:    capAt(1),
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), req("r2", "k2", 1*s), resp("a1", "k1", 5*s, OK), resp("b1", "k1", 6*s, OK)},
			want: []string{
				"k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=1000 steps=r1 reasons=hinscore|overflow",
				"k1 v2 fulfilled req=r1 resp=a1 ttf=5000 tta=5000 decided=5000 steps=r1,a1",
				"k1 v3 fulfilled req=r1 resp=a1 ttf=5000 tta=5000 decided=5000 steps=r1,a1,b1",
			},
		},
		{
			name:   "an overflowed waiting answer is an orphan until its request comes",
			cfg:    capAt(1),
			events: []*hinscorev1.ExchangeEvent{resp("a1", "k1", 5*s, OK), req("r2", "k2", 6*s), req("r1", "k1", 0)},
			want: []string{
				"k1 v1 orphan req=a1 resp=a1 ttf=-1 tta=-1 decided=6000 steps=a1 reasons=hinscore|overflow",
				"k2 v1 unanswered req=r2 resp= ttf=-1 tta=-1 decided=6000 steps=r2 reasons=hinscore|overflow",
				"k1 v2 fulfilled req=r1 resp=a1 ttf=5000 tta=5000 decided=5000 steps=r1,a1",
			},
		},
		{
			name:   "decided chains do not count against the cap",
			cfg:    capAt(1),
			events: []*hinscorev1.ExchangeEvent{req("r1", "k1", 0), resp("a1", "k1", 1*s, OK), req("r2", "k2", 2*s), tick(3 * s)},
			want:   []string{"k1 v1 fulfilled req=r1 resp=a1 ttf=1000 tta=1000 decided=1000 steps=r1,a1"},
		},
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		role   hinscorev1.Role
		status hinscorev1.Status
		code   string
		ttf    int64
		late   bool
		want   string
	}{
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_OK, "", 1000, false, "fulfilled"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_OK, "", 60000, false, "fulfilled"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_OK, "", 60001, false, "fulfilled_late"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_OK, "", 1000, true, "fulfilled_late"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_PARTIAL, "", 1000, false, "partial"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_NOT_FOUND, "", 1000, false, "not_found"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REFUSED, "171.204", 1000, false, "refused_exception"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REFUSED, "urn:hinscore:ib-exception|171.403", 1000, false, "refused_exception"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REFUSED, "171.999", 1000, false, "refused_unjustified"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REFUSED, "", 1000, false, "refused_unjustified"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REFUSED, "redirect-portal", 1000, false, "redirected"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REDIRECTED, "", 1000, false, "redirected"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_ERROR_TRANSIENT, "", 1000, false, "error_transient"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_ERROR_PERMANENT, "", 1000, false, "error_permanent"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_UNSPECIFIED, "", 1000, false, "error_permanent"},
		{hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_CANCELLED, "", 1000, false, "cancelled"},
		{hinscorev1.Role_ROLE_CANCEL, hinscorev1.Status_STATUS_UNSPECIFIED, "", 1000, false, "cancelled"},
	}
	for _, tc := range cases {
		e := &hinscorev1.ExchangeEvent{Role: tc.role, Status: tc.status, ExceptionCode: tc.code}
		if got := outcomeclass.Name(classify(e, tc.ttf, 60000, tc.late)); got != tc.want {
			t.Errorf("classify(%v %v %q ttf=%d late=%v) = %s, want %s", tc.role, tc.status, tc.code, tc.ttf, tc.late, got, tc.want)
		}
	}
}

func TestOutcomeFields(t *testing.T) {
	j := newChains(testRules(t, nil))
	r := req("r1", "k1", 0)
	r.RawSeq = 7
	a := resp("a1", "k1", 3*s, hinscorev1.Status_STATUS_REFUSED)
	a.ExceptionCode, a.ReasonCodes, a.RecordCount, a.RawSeq = "171.202", []string{"HL70357|207"}, 0, 8
	outs := j.observe(a, t0, j.observe(r, t0, nil))
	if len(outs) != 1 {
		t.Fatalf("%d outcomes, want 1", len(outs))
	}
	o := outs[0]
	checks := []struct {
		field     string
		got, want any
	}{
		{"outcome_id", o.GetOutcomeId(), ids.Outcome("net", "k1").String()},
		{"network", o.GetNetwork(), "net"},
		{"request_kind", o.GetRequestKind(), "patient_query"},
		{"requester_org", o.GetRequesterOrg(), "clinic"},
		{"responder_org", o.GetResponderOrg(), "hospital"},
		{"class", o.GetOutcomeClass(), hinscorev1.OutcomeClass_OUTCOME_CLASS_REFUSED_EXCEPTION},
		{"exception_code", o.GetExceptionCode(), "171.202"},
		{"reason_codes", strings.Join(o.GetReasonCodes(), ";"), "HL70357|207"},
		{"patient_token", o.GetPatientToken(), "tok"},
		{"requested_at_ms", o.GetRequestedAtMs(), at(0)},
		{"acknowledged_at_ms", o.GetAcknowledgedAtMs(), at(3 * s)},
		{"answered_at_ms", o.GetAnsweredAtMs(), at(3 * s)},
		{"sla_ms", o.GetSlaMs(), uint64(60000)},
		{"grace_ms", o.GetGraceMs(), uint64(30000)},
		{"rule_version", o.GetRuleVersion(), RuleVersion},
		{"mapping_version", o.GetMappingVersion(), "map/1"},
		{"response_id", o.GetResponseId(), "a1"},
		{"step raw_seq", fmt.Sprint(o.GetSteps()[0].GetRawSeq(), o.GetSteps()[1].GetRawSeq()), "7 8"},
		{"step role", o.GetSteps()[1].GetRole(), hinscorev1.Role_ROLE_RESPONSE},
		{"step status", o.GetSteps()[1].GetStatus(), hinscorev1.Status_STATUS_REFUSED},
		{"step time", o.GetSteps()[1].GetEventTimeMs(), at(3 * s)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
}

// TestIdleAdvance drives the idle rule with explicit wall-clock times: a
// network that has been quiet for the idle duration follows the wall clock.
func TestIdleAdvance(t *testing.T) {
	j := newChains(testRules(t, nil)) // idle 10s, lateness 30s, deadline 90s
	wall := t0                        // the request is observed when it happens
	if outs := j.observe(req("r1", "k1", 0), wall, nil); len(outs) != 0 {
		t.Fatalf("request alone published %d outcomes", len(outs))
	}
	steps := []struct {
		wall, activeSince time.Duration
		want              string
	}{
		// Not idle for 10s yet: nothing moves.
		{wall: 9 * time.Second},
		// Idle, but the wall clock minus the lateness is before the deadline.
		{wall: 100 * time.Second},
		// Idle and past the deadline, but the consumer only just caught up.
		{wall: 150 * time.Second, activeSince: 145 * time.Second},
		{wall: 160 * time.Second, activeSince: 145 * time.Second, want: "k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=90000 steps=r1"},
		// Nothing left to decide.
		{wall: 400 * time.Second},
	}
	for i, st := range steps {
		outs := j.advanceIdle(t0.Add(st.wall), t0.Add(st.activeSince), nil)
		var gotS []string
		for _, o := range outs {
			gotS = append(gotS, summarize(o).String())
		}
		if strings.Join(gotS, "|") != st.want {
			t.Fatalf("step %d (wall %s): got %q, want %q", i, st.wall, gotS, st.want)
		}
	}
	// An event with an older time does not move the watermark back.
	wm, _ := j.Watermark("net")
	j.observe(tick(10*s), t0.Add(401*time.Second), nil)
	if wm2, _ := j.Watermark("net"); wm2 != wm {
		t.Fatalf("watermark went from %d to %d", wm, wm2)
	}
}

func TestPendingAndExpiry(t *testing.T) {
	j := newChains(testRules(t, func(c *Config) { c.Retention = time.Hour }))
	j.observe(req("r1", "k1", 0), t0, nil)
	j.observe(resp("a2", "k2", 0, hinscorev1.Status_STATUS_OK), t0, nil)
	j.observe(req("r3", "k3", 0), t0, nil)
	j.observe(resp("a3", "k3", 1*s, hinscorev1.Status_STATUS_OK), t0, nil)
	if j.pending != 2 {
		t.Fatalf("pending = %d, want 2 (one open request, one waiting answer)", j.pending)
	}
	j.observe(tick(200*s), t0, nil)
	if j.pending != 0 {
		t.Fatalf("pending = %d after the deadlines, want 0", j.pending)
	}
	if n := len(j.nets["net"].chains); n != 3 {
		t.Fatalf("%d chains remembered, want 3 within the retention", n)
	}
	j.observe(tick(2*3600*s), t0, nil)
	if n := len(j.nets["net"].chains); n != 0 {
		t.Fatalf("%d chains remembered after the retention, want 0", n)
	}
	if n := j.nets["net"].timers.len(); n != 0 {
		t.Fatalf("%d timers left, want 0", n)
	}
}

// genEvents makes a reproducible mix of chains over one hour of event time:
// every kind of answer, interims, cancels, orphans, silence.
func genEvents(seed uint64, chains int) []*hinscorev1.ExchangeEvent {
	rng := rand.New(rand.NewPCG(seed, 7))
	statuses := []hinscorev1.Status{
		hinscorev1.Status_STATUS_OK, hinscorev1.Status_STATUS_OK, hinscorev1.Status_STATUS_OK,
		hinscorev1.Status_STATUS_PARTIAL, hinscorev1.Status_STATUS_NOT_FOUND, hinscorev1.Status_STATUS_REFUSED,
		hinscorev1.Status_STATUS_REDIRECTED, hinscorev1.Status_STATUS_ERROR_TRANSIENT,
	}
	var out []*hinscorev1.ExchangeEvent
	for i := range chains {
		key := fmt.Sprintf("k%d", i)
		start := int64(i) * 3600 * s / int64(chains)
		kind := rng.IntN(10)
		if kind != 0 { // kind 0: an orphan answer, no request
			out = append(out, req(fmt.Sprintf("r%d", i), key, start))
		}
		switch {
		case kind == 1: // silence: unanswered
		case kind == 2:
			out = append(out, cancel(fmt.Sprintf("c%d", i), key, start+rng.Int64N(20*s)))
		default:
			if rng.IntN(3) == 0 {
				out = append(out, interim(fmt.Sprintf("i%d", i), key, start+rng.Int64N(2*s)))
			}
			a := resp(fmt.Sprintf("a%d", i), key, start+2*s+rng.Int64N(150*s), statuses[rng.IntN(len(statuses))])
			if a.Status == hinscorev1.Status_STATUS_REFUSED && rng.IntN(2) == 0 {
				a.ExceptionCode = "171.204"
			}
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(a, b *hinscorev1.ExchangeEvent) int {
		return int(a.EventTimeMs - b.EventTimeMs)
	})
	return append(out, tick(3600*s+24*3600*s))
}

// finalOutcomes keeps the highest version of each outcome id.
func finalOutcomes(outs []*hinscorev1.Outcome) map[string]*hinscorev1.Outcome {
	m := map[string]*hinscorev1.Outcome{}
	for _, o := range outs {
		if o.GetVersion() > m[o.GetOutcomeId()].GetVersion() {
			m[o.GetOutcomeId()] = o
		}
	}
	return m
}

func finalClasses(outs []*hinscorev1.Outcome) map[string]string {
	m := map[string]string{}
	last := map[string]uint64{}
	for _, o := range outs {
		if o.GetVersion() > last[o.GetOutcomeId()] {
			last[o.GetOutcomeId()] = o.GetVersion()
			m[o.GetOutcomeId()] = outcomeclass.Name(o.GetOutcomeClass())
		}
	}
	return m
}

// TestShuffleWithinLateness checks that the order events arrive in does not
// matter as long as each arrives within the lateness, and that re-delivered
// copies change nothing: the final version of every outcome, every field of
// it, is the in-order one.
func TestShuffleWithinLateness(t *testing.T) {
	r := testRules(t, nil)
	events := genEvents(1, 3000)
	run := func(evs []*hinscorev1.ExchangeEvent) map[string]*hinscorev1.Outcome {
		j := newChains(r)
		var outs []*hinscorev1.Outcome
		for _, e := range evs {
			outs = j.observe(e, t0, outs)
		}
		return finalOutcomes(outs)
	}
	want := run(events)
	counts := map[string]int{}
	for _, o := range want {
		counts[outcomeclass.Name(o.GetOutcomeClass())]++
	}
	for _, c := range []string{"fulfilled", "fulfilled_late", "unanswered", "orphan", "cancelled", "refused_exception", "refused_unjustified"} {
		if counts[c] == 0 {
			t.Fatalf("generated set has no %s outcome: %v", c, counts)
		}
	}
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 99))
		type arrival struct {
			e   *hinscorev1.ExchangeEvent
			key int64
		}
		var arr []arrival
		for _, e := range events {
			// Arrival order = event time plus a delay under the lateness,
			// so each event arrives no later than the lateness allows.
			arr = append(arr, arrival{e, e.EventTimeMs + rng.Int64N(r.lateness)})
			if rng.IntN(10) == 0 {
				arr = append(arr, arrival{e, e.EventTimeMs + rng.Int64N(r.lateness)})
			}
		}
		slices.SortStableFunc(arr, func(a, b arrival) int { return int(a.key - b.key) })
		shuffled := make([]*hinscorev1.ExchangeEvent, len(arr))
		for i, a := range arr {
			shuffled[i] = a.e
		}
		got := run(shuffled)
		if len(got) != len(want) {
			t.Fatalf("seed %d: %d outcomes, want %d", seed, len(got), len(want))
		}
		for id, w := range want {
			// The whole final row, every field but the version number:
			// how many versions led to it depends on what was known when
			// (an answer that arrives after the watermark passed its
			// deadline follows a live "unanswered"; the same answer
			// arriving a little earlier decides at once), the row analysts
			// read after deduplication does not.
			g := got[id]
			if g == nil {
				t.Fatalf("seed %d: outcome %s missing", seed, id)
			}
			g, w = proto.CloneOf(g), proto.CloneOf(w)
			g.Version, w.Version = 0, 0
			if !proto.Equal(g, w) {
				t.Fatalf("seed %d: outcome %s is\n%v\nwant\n%v", seed, id, g, w)
			}
		}
	}
}

// TestReplayIsIdentical checks determinism row for row: the same events in
// the same order give the same outcomes, versions included.
func TestReplayIsIdentical(t *testing.T) {
	r := testRules(t, nil)
	events := genEvents(2, 500)
	run := func() []string {
		j := newChains(r)
		var outs []*hinscorev1.Outcome
		for _, e := range events {
			outs = j.observe(e, time.Now(), outs)
		}
		var rows []string
		for _, o := range outs {
			rows = append(rows, fmt.Sprintf("%s %d %s", o.GetOutcomeId(), o.GetVersion(), summarize(o)))
		}
		return rows
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Fatal("two runs over the same events differ")
	}
}
