package linker

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/linker/join"
	"github.com/hinscore/hinscore/services/linker/join/jointest"
)

const s = jointest.S

// testRules are the join's rules of DefaultConfig changed by mutate.
func testRules(t testing.TB, mutate func(*Config)) join.Rules {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return joinRules(newRules(cfg))
}

// TestJoinTakesConfigLimits runs the join with the SLA and grace the
// configuration gives each request kind and network, uninterrupted and cut
// at every position by a checkpoint.
func TestJoinTakesConfigLimits(t *testing.T) {
	OK := hinscorev1.Status_STATUS_OK
	kind := func(e *hinscorev1.ExchangeEvent, k string) *hinscorev1.ExchangeEvent {
		return jointest.With(e, func(e *hinscorev1.ExchangeEvent) { e.RequestKind = k })
	}
	forPurpose := func(e *hinscorev1.ExchangeEvent, p string) *hinscorev1.ExchangeEvent {
		return jointest.With(e, func(e *hinscorev1.ExchangeEvent) { e.Purpose = p })
	}
	// 45 CFR 171.204(b): ten business days from a request on the Friday
	// before Thanksgiving 2026, 10:00 in New York (the default zone), end on
	// Monday 7 December at 10:00 (Thanksgiving does not count).
	ny, err := time.LoadLocation(DefaultSLAZone)
	if err != nil {
		t.Fatal(err)
	}
	rel := func(tm time.Time) int64 { return tm.Sub(jointest.T0).Milliseconds() }
	asked := rel(time.Date(2026, 11, 20, 10, 0, 0, 0, ny))
	deadline := rel(time.Date(2026, 12, 7, 10, 0, 0, 0, ny))
	tenDays := func(c *Config) {
		c.SLA = SLAs{"record_request": {BusinessDays: 10}, "document_query@individual_access": {BusinessDays: 1}}
	}
	for _, tc := range []struct {
		name   string
		cfg    func(*Config)
		events []*hinscorev1.ExchangeEvent
		want   []string
	}{
		{
			name:   "unknown request kind takes patient_query's SLA",
			events: []*hinscorev1.ExchangeEvent{kind(jointest.Req("r1", "k1", 0), "telepathy"), jointest.Tick(121 * s)},
			want:   []string{"k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=90000 steps=r1"},
		},
		{
			name: "document_query has five minutes",
			events: []*hinscorev1.ExchangeEvent{kind(jointest.Req("r1", "k1", 0), "document_query"),
				jointest.Tick(200 * s), jointest.Resp("a1", "k1", 240*s, OK)},
			want: []string{"k1 v1 fulfilled req=r1 resp=a1 ttf=240000 tta=240000 decided=240000 steps=r1,a1"},
		},
		{
			name: "SLA and grace from config, per network",
			cfg: func(c *Config) {
				c.SLA = SLAs{"net/patient_query": {Duration: 10 * time.Second}}
				c.Grace = map[string]time.Duration{"patient_query": 5 * time.Second}
			},
			events: []*hinscorev1.ExchangeEvent{jointest.Req("r1", "k1", 0), jointest.Resp("a1", "k1", 12*s, OK),
				jointest.Req("r2", "k2", 0), jointest.Tick(46 * s)},
			want: []string{
				"k1 v1 fulfilled_late req=r1 resp=a1 ttf=12000 tta=12000 decided=12000 steps=r1,a1",
				"k2 v1 unanswered req=r2 resp= ttf=-1 tta=-1 decided=15000 steps=r2",
			},
		},
		{
			name: "record_request=10bd: unanswered at the tenth business day plus grace",
			cfg:  tenDays,
			events: []*hinscorev1.ExchangeEvent{kind(jointest.Req("r1", "k1", asked), "record_request"),
				jointest.Tick(deadline + 30*s + 30*s + 1)},
			want: []string{fmt.Sprintf("k1 v1 unanswered req=r1 resp= ttf=-1 tta=-1 decided=%d steps=r1", deadline+30*s)},
		},
		{
			name: "record_request=10bd: answered on the tenth business day is in time, a minute after is late",
			cfg:  tenDays,
			events: []*hinscorev1.ExchangeEvent{kind(jointest.Req("r1", "k1", asked), "record_request"),
				kind(jointest.Req("r2", "k2", asked), "record_request"),
				jointest.Resp("a1", "k1", deadline, OK), jointest.Resp("a2", "k2", deadline+60*s, OK)},
			want: []string{
				fmt.Sprintf("k1 v1 fulfilled req=r1 resp=a1 ttf=%d tta=%[1]d decided=%d steps=r1,a1", deadline-asked, deadline),
				fmt.Sprintf("k2 v1 fulfilled_late req=r2 resp=a2 ttf=%d tta=%[1]d decided=%d steps=r2,a2", deadline+60*s-asked, deadline+60*s),
			},
		},
		{
			name: "document_query@individual_access=1bd; other purposes keep five minutes",
			cfg:  tenDays,
			events: []*hinscorev1.ExchangeEvent{forPurpose(kind(jointest.Req("r1", "k1", asked), "document_query"), "individual_access"),
				forPurpose(kind(jointest.Req("r2", "k2", asked), "document_query"), "treatment"),
				jointest.Resp("a1", "k1", asked+3600*s, OK), jointest.Resp("a2", "k2", asked+3600*s, OK)},
			want: []string{
				fmt.Sprintf("k1 v1 fulfilled req=r1 resp=a1 ttf=3600000 tta=3600000 decided=%d steps=r1,a1", asked+3600*s),
				fmt.Sprintf("k2 v1 unanswered req=r2 resp= ttf=-1 tta=-1 decided=%d steps=r2", asked+330*s),
				fmt.Sprintf("k2 v2 fulfilled_late req=r2 resp=a2 ttf=3600000 tta=3600000 decided=%d steps=r2,a2", asked+3600*s),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testRules(t, tc.cfg)
			for cut := -1; cut <= len(tc.events); cut++ {
				if got := jointest.Run(t, r, tc.events, cut); !slices.Equal(got, tc.want) {
					t.Fatalf("cut at %d:\n got  %s\n want %s", cut, strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
				}
			}
		})
	}
}

// TestRuleVersion: the rule version the configuration names is the one the
// join stamps on its outcomes.
func TestRuleVersion(t *testing.T) {
	if RuleVersion != join.RuleVersion {
		t.Fatalf("linker.RuleVersion %q, join.RuleVersion %q", RuleVersion, join.RuleVersion)
	}
}
