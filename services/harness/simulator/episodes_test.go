package simulator

import (
	"strings"
	"testing"
	"time"
)

func TestPerformanceEpisodes(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	nets := BehaviourNetworks()
	at, length := 2*24*time.Hour+10*time.Hour, 30*time.Minute
	nets[0].ResponderProfiles[1].Episodes = []PerformanceEpisode{{At: at, Length: length, Requests: 200, CiteShare: 0.2}}
	nets[1].ResponderProfiles[1].Episodes = []PerformanceEpisode{{At: at, Length: length, Requests: 100, Outage: true}}
	plan, err := Generate(Config{Requests: 5000, Seed: 3, Start: start, Span: 7 * 24 * time.Hour, Networks: nets,
		RunaroundShare: -1, DuplicateRate: -1, OutOfOrderRate: -1, MalformedRate: -1, NotificationRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	from, to := start.Add(at), start.Add(at+length)
	var flag, clear, serving, servingFulfilled int
	for _, r := range plan.Requests() {
		in := !r.RequestedAt.Before(from) && r.RequestedAt.Before(to)
		switch {
		case r.Network == nets[1].Name && r.Responder == nets[1].ResponderProfiles[1].Facility && in:
			if r.Outcome != RefusedException || r.ExceptionCode != PerformanceCode || r.ExceptionCheck != CheckClear {
				t.Errorf("%s in the outage: %s %s %q", r.ControlID, r.Outcome, r.ExceptionCode, r.ExceptionCheck)
			}
			clear++
		case r.Network == nets[0].Name && r.Responder == nets[0].ResponderProfiles[1].Facility && in:
			if r.ExceptionCheck == CheckFlag {
				if r.Outcome != RefusedException || r.ExceptionCode != PerformanceCode {
					t.Errorf("%s cited while serving: %s %s", r.ControlID, r.Outcome, r.ExceptionCode)
				}
				flag++
				continue
			}
			serving++
			if r.Outcome == Fulfilled {
				servingFulfilled++
			}
		case r.ExceptionCheck != "":
			t.Errorf("%s %s outside any episode: %q", r.Network, r.ControlID, r.ExceptionCheck)
		}
	}
	if clear < 100 || flag < 25 || flag > 60 || serving < 140 {
		t.Fatalf("outage %d, cited while serving %d, served %d", clear, flag, serving)
	}
	if share := float64(servingFulfilled) / float64(serving); share < 0.84 || share > 0.96 {
		t.Errorf("fulfilled %.3f of the other requests in the serving episode, want about 0.9", share)
	}
	t.Logf("outage %d citations; serving: %d citations, %d of %d others fulfilled", clear, flag, servingFulfilled, serving)
}

func TestPerformanceEpisodesValidated(t *testing.T) {
	nets := BehaviourNetworks()
	nets[0].ResponderProfiles[0].Episodes = []PerformanceEpisode{{At: 23 * time.Hour, Length: 2 * time.Hour, Requests: 10}, {Length: time.Hour}}
	_, err := Generate(Config{Requests: 100, Seed: 1, Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Span: 24 * time.Hour, Networks: nets})
	if err == nil || !strings.Contains(err.Error(), "Episodes[0]: [23h0m0s, +2h0m0s) is not inside the span") || !strings.Contains(err.Error(), "Episodes[1].Requests") {
		t.Fatalf("err = %v", err)
	}
}
