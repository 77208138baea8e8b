package api

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/service"
)

func TestConfigFromEnvFiles(t *testing.T) {
	env, err := service.EnvFile("testdata/config/full.env")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ConfigFromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:9999" || c.AuditLog != "/var/log/hinscore/audit.jsonl" || c.RateLimit != (RateLimit{2.5, 5}) || len(c.Tokens) != 3 {
		t.Fatalf("config %+v", c)
	}
	if p := c.Tokens[strings.Repeat("b", 64)]; p.Role != RoleOperator || p.Network != "northstar" || p.Name != "ops-ns" {
		t.Errorf("operator %+v", p)
	}
	if p := c.Tokens[strings.Repeat("c", 64)]; p.Role != RoleInvestigator || p.Name != "ivy" {
		t.Errorf("investigator from the file %+v", p)
	}
	for file, wants := range map[string][]string{
		"bad.env":                      {"HINSCORE_API_ADDR", "HINSCORE_API_TOKENS", "HINSCORE_API_RATE", "HINSCORE_API_BURST"},
		"operator-without-network.env": {"HINSCORE_API_TOKENS", "bound to one network"},
		"no-tokens.env":                {"HINSCORE_API_TOKENS", "no token configured"},
	} {
		env, err := service.EnvFile("testdata/config/" + file)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ConfigFromEnv(env)
		for _, w := range wants {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want it to name %s", file, err, w)
			}
		}
	}
}

func TestParseTokensNeverEchoesAToken(t *testing.T) {
	err := ParseTokens("ann=analyst:my-secret-token-value-here", map[string]Principal{})
	if err == nil || strings.Contains(err.Error(), "my-secret") {
		t.Fatalf("%v", err)
	}
	err = ParseTokens("my-secret-token-value-pasted-alone", map[string]Principal{})
	if err == nil || strings.Contains(err.Error(), "token-value") {
		t.Fatalf("%v", err)
	}
}

func TestTokenBucket(t *testing.T) {
	l := RateLimit{PerSecond: 2, Burst: 3}
	var b tokenBucket
	t0 := time.Unix(1000, 0)
	tests := []struct {
		at   time.Duration
		want bool
	}{{0, true}, {0, true}, {0, true}, {0, false}, {400 * time.Millisecond, false}, {500 * time.Millisecond, true}, {500 * time.Millisecond, false}, {10 * time.Second, true}, {10 * time.Second, true}, {10 * time.Second, true}, {10 * time.Second, false}}
	for i, tc := range tests {
		ok, wait := b.take(t0.Add(tc.at), l)
		if ok != tc.want || (!ok && wait <= 0) {
			t.Errorf("request %d at %s: %v (wait %s), want %v", i, tc.at, ok, wait, tc.want)
		}
	}
}

func out(id, class, network, responder string, atMin int64, code string) Outcome {
	return Outcome{ID: id, Class: class, Network: network, ResponderOrg: responder, RequestedAtMs: atMin * 60000, ExceptionCode: code}
}

func stepChains(steps []EpisodeStep) []string {
	out := []string{}
	for _, st := range steps {
		out = append(out, st.Chain)
	}
	return out
}

func TestDetectRunarounds(t *testing.T) {
	day := int64(24 * 60)
	tests := []struct {
		name      string
		journey   []Outcome
		episodes  int
		runaround []bool
	}{
		{"empty", nil, 0, nil},
		{"all fulfilled", []Outcome{out("a", "fulfilled", "n", "r1", 0, ""), out("b", "fulfilled", "n", "r2", 10, "")}, 0, nil},
		{"three refusals across responders", []Outcome{out("a", "refused_unjustified", "n", "r1", 0, ""), out("b", "unanswered", "n", "r2", 30, ""), out("c", "not_found", "m", "r3", 90, "")}, 1, []bool{true}},
		{"two refusals only", []Outcome{out("a", "refused_unjustified", "n", "r1", 0, ""), out("b", "unanswered", "n", "r2", 30, "")}, 1, []bool{false}},
		{"portal then fax", []Outcome{out("a", "redirected", "n", "r1", 0, "redirect-portal"), out("b", "redirected", "n", "r2", 30, "redirect-fax")}, 1, []bool{true}},
		{"fulfilment breaks the streak", []Outcome{out("a", "refused_unjustified", "n", "r1", 0, ""), out("b", "refused_unjustified", "n", "r1", 10, ""), out("c", "fulfilled_late", "n", "r2", 20, ""), out("d", "unanswered", "n", "r3", 30, "")}, 2, []bool{false, false}},
		{"a long gap breaks the streak", []Outcome{out("a", "refused_unjustified", "n", "r1", 0, ""), out("b", "refused_unjustified", "n", "r1", 10, ""), out("c", "unanswered", "n", "r2", 40*day, "")}, 2, []bool{false, false}},
		{"orphans take no part", []Outcome{out("a", "orphan", "n", "r1", 0, ""), out("b", "orphan", "n", "r1", 1, ""), out("c", "orphan", "n", "r1", 2, "")}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eps := detectRunarounds(tc.journey, time.UnixMilli(0))
			if len(eps) != tc.episodes {
				t.Fatalf("%d episodes, want %d: %+v", len(eps), tc.episodes, eps)
			}
			for i, e := range eps {
				if e.Runaround != tc.runaround[i] || e.Why == "" || (e.Kind != "") != e.Runaround || !slices.Equal(e.Chains, stepChains(e.Steps)) {
					t.Errorf("episode %d: runaround=%v kind %q (%s), steps %+v; want %v", i, e.Runaround, e.Kind, e.Why, e.Steps, tc.runaround[i])
				}
			}
		})
	}
	eps := detectRunarounds([]Outcome{out("a", "redirected", "n", "r1", 0, "redirect-portal"), out("b", "redirected", "m", "r2", 30, "redirect-fax"), out("c", "refused_unjustified", "m", "r3", 60, "")}, time.UnixMilli(0))
	if e := eps[0]; e.Kind != KindRepeatedRequests || e.Redirects != 2 || strings.Join(e.Channels, ",") != "redirect-portal,redirect-fax" || strings.Join(e.Networks, ",") != "m,n" || len(e.Chains) != 3 {
		t.Errorf("episode %+v", e)
	}
}

func TestRankOffenders(t *testing.T) {
	row := func(net string, start int64, requests uint64, rate, low float64) ScorecardRow {
		return ScorecardRow{Network: net, Period: time.UnixMilli(start).UTC().Format("2006-01-02"), PeriodStartMs: start, Requests: requests, SuspectRate: rate, SuspectCILow: low}
	}
	d := int64(86400000)
	rows := []ScorecardRow{
		row("a", 0, 100, 0.30, 0.20), row("a", d, 100, 0.30, 0.20), row("a", 2*d, 100, 0.30, 0.20),
		row("b", 0, 100, 0.02, 0.01), row("b", d, 100, 0.20, 0.10), row("b", 2*d, 100, 0.02, 0.01),
		row("c", 0, 10, 0.90, 0.60), row("c", d, 10, 0.90, 0.60), row("c", 2*d, 10, 0.90, 0.60), // too few requests
		row("old", -d, 100, 0.9, 0.8), // outside the window of 3
	}
	q := DefaultOffenderQuery()
	q.K, q.N = 2, 3
	res := rankOffenders(rows, q)
	if len(res.Periods) != 3 || res.Periods[0] != "1970-01-01" {
		t.Fatalf("periods %v", res.Periods)
	}
	if len(res.Offenders) != 3 || res.Offenders[0].Network != "a" {
		t.Fatalf("order %+v", res.Offenders)
	}
	a := res.Offenders[0]
	// Peer median of the last period: median(0.30, 0.02, 0.90) = 0.30;
	// a's lower bound 0.20 is below it, so no excess despite the flags.
	if a.Flagged != 3 || a.Consecutive != 3 || !a.RepeatOffender || a.Periods[2].PeerMedian != 0.30 {
		t.Errorf("a %+v", a)
	}
	for _, o := range res.Offenders {
		switch o.Network {
		case "b":
			if o.Flagged != 1 || o.Consecutive != 0 || o.RepeatOffender {
				t.Errorf("b %+v", o)
			}
		case "c":
			if o.Flagged != 0 {
				t.Errorf("c flagged with 10 requests: %+v", o)
			}
		}
	}
	rows = append(rows, row("d", 2*d, 1000, 0.6, 0.5))
	res = rankOffenders(rows, q)
	// With d the last median is (0.02+0.30+0.6+0.9)/4 → middle pair 0.30, 0.6: 0.45.
	if res.Offenders[0].Network != "d" || res.Offenders[0].ExcessSuspect < 49.9 || res.Offenders[0].Priority < 99.9 {
		t.Errorf("d first with excess (0.5-0.45)*1000 = 50, priority 100: %+v", res.Offenders[0])
	}
}

func TestParams(t *testing.T) {
	good := map[string]func() error{
		"uuid":    func() error { _, err := parseChainID("6f1c2a50-8d4e-4f59-9a57-0d9c1f2e3b4a"); return err },
		"token":   func() error { _, err := parsePatientToken(strings.Repeat("ab", 32)); return err },
		"day":     func() error { _, err := parsePeriod("2026-11-22"); return err },
		"week":    func() error { _, err := parsePeriod("2026-W47"); return err },
		"month":   func() error { _, err := parsePeriod("2026-11"); return err },
		"rfc3339": func() error { _, err := parseTime("from", "2026-11-22T10:00:00+01:00"); return err },
		"reason":  func() error { _, err := parseReason("case 42, complaint #7"); return err },
	}
	for name, f := range good {
		if err := f(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string]func() error{
		"uuid braces": func() error { _, err := parseChainID("{6f1c2a50-8d4e-4f59-9a57-0d9c1f2e3b4a}"); return err },
		"token upper": func() error { _, err := parsePatientToken(strings.Repeat("AB", 32)); return err },
		"week 54":     func() error { _, err := parsePeriod("2026-W54"); return err },
		"month 13":    func() error { _, err := parsePeriod("2026-13"); return err },
		"time":        func() error { _, err := parseTime("from", "yesterday"); return err },
		"reason tab":  func() error { _, err := parseReason("a\tb c d"); return err },
		"limit 0":     func() error { _, err := parseLimit("0", 50, 500); return err },
		"limit +5":    func() error { _, err := parseLimit("+5", 50, 500); return err },
	}
	for name, f := range bad {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := cursor{RequestedAtMs: 1764000000123, ID: "6f1c2a50-8d4e-4f59-9a57-0d9c1f2e3b4a"}
	back, err := parseCursor(encodeCursor(c))
	if err != nil || *back != c {
		t.Errorf("cursor round trip: %+v %v", back, err)
	}
}

// FuzzParseCursor: a cursor comes from the client; whatever it holds,
// parsing either fails with ErrBadParam or yields a cursor that encodes
// back to the same text.
func FuzzParseCursor(f *testing.F) {
	f.Add(encodeCursor(cursor{RequestedAtMs: 1, ID: "6f1c2a50-8d4e-4f59-9a57-0d9c1f2e3b4a"}))
	f.Add("")
	f.Add("MTIzLg")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCursor(s)
		if err != nil {
			return
		}
		if encodeCursor(*c) != s {
			t.Fatalf("%q parsed to %+v, which encodes to %q", s, c, encodeCursor(*c))
		}
	})
}

func TestRedactNetworks(t *testing.T) {
	in := `{"network":"ns","requests":"5","peers":[{"network":"bv","requests":"9"},{"network":"ns","requests":"5"}],"median":{"rate":0.1},"best":{"network":"pr","rate":0.01},"deep":{"x":[{"y":{"network":"bv"}}]}}`
	got := string(redactNetworks([]byte(in), "ns"))
	want := `{"deep":{"x":[{}]},"median":{"rate":0.1},"network":"ns","peers":[{"network":"ns","requests":"5"}],"requests":"5"}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestClientVariables: the names the client's messages give are the ones
// ClientConfig declares.
func TestClientVariables(t *testing.T) {
	if s := service.Describe(ClientConfig{}); len(s) != 3 || s[0].Name != EnvClientURL || s[1].Name != EnvClientToken || s[2].Name != EnvClientTokenFile {
		t.Fatalf("declared %+v, want %s, %s and %s", s, EnvClientURL, EnvClientToken, EnvClientTokenFile)
	}
}
