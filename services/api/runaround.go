package api

import (
	"fmt"
	"sort"
	"time"
)

// RunaroundRuleVersion names the rules below; journeys print it.
const RunaroundRuleVersion = "runaround/1"

// Runaround rules: a patient's requests, in time order, form an episode
// while none of them is fulfilled and no two follow each other more than
// runaroundMaxGap apart. An episode is a runaround when the record was
// asked for at least runaroundMinRequests times without fulfilment, or the
// requester was redirected at least runaroundMinRedirects times (sent from
// channel to channel: portal, fax, another organisation).
const (
	runaroundMinRequests  = 3
	runaroundMinRedirects = 2
	runaroundMaxGap       = 30 * 24 * time.Hour
)

// Episode is one stretch of a patient's requests without fulfilment.
type Episode struct {
	FromMs     int64          `json:"from_ms"`
	ToMs       int64          `json:"to_ms"`
	Requests   int            `json:"requests"`
	Redirects  int            `json:"redirects"`
	Networks   []string       `json:"networks"`
	Responders []string       `json:"responders"`
	Classes    map[string]int `json:"classes"`
	Channels   []string       `json:"channels"` // redirect codes in the order they were given
	Chains     []string       `json:"chains"`
	Runaround  bool           `json:"runaround"`
	Why        string         `json:"why"`
}

func fulfilledClass(class string) bool {
	return class == "fulfilled" || class == "fulfilled_late" || class == "partial"
}

// detectRunarounds splits a journey (sorted by requested_at) into episodes
// of unfulfilled requests and flags the runarounds among them. Orphans are
// answers without a request and take no part.
func detectRunarounds(journey []Outcome) []Episode {
	var (
		out    []Episode
		cur    *Episode
		lastMs int64
		nets   map[string]bool
		resps  map[string]bool
	)
	closeEpisode := func() {
		if cur == nil {
			return
		}
		cur.Networks, cur.Responders = sortedKeys(nets), sortedKeys(resps)
		switch {
		case cur.Requests >= runaroundMinRequests:
			cur.Runaround = true
			cur.Why = fmt.Sprintf("requested %d times across %d responder(s) without fulfilment", cur.Requests, len(cur.Responders))
		case cur.Redirects >= runaroundMinRedirects:
			cur.Runaround = true
			cur.Why = fmt.Sprintf("redirected %d times from channel to channel", cur.Redirects)
		default:
			cur.Why = fmt.Sprintf("%d unfulfilled request(s): below %d requests and %d redirects", cur.Requests, runaroundMinRequests, runaroundMinRedirects)
		}
		out = append(out, *cur)
		cur = nil
	}
	for _, o := range journey {
		if o.Class == "orphan" {
			continue
		}
		if fulfilledClass(o.Class) {
			closeEpisode()
			continue
		}
		if cur != nil && time.Duration(o.RequestedAtMs-lastMs)*time.Millisecond > runaroundMaxGap {
			closeEpisode()
		}
		if cur == nil {
			cur = &Episode{FromMs: o.RequestedAtMs, Classes: map[string]int{}, Channels: []string{}}
			nets, resps = map[string]bool{}, map[string]bool{}
		}
		lastMs = o.RequestedAtMs
		cur.ToMs = o.RequestedAtMs
		cur.Requests++
		cur.Classes[o.Class]++
		cur.Chains = append(cur.Chains, o.ID)
		nets[o.Network] = true
		resps[o.ResponderOrg] = true
		if o.Class == "redirected" {
			cur.Redirects++
			ch := o.ExceptionCode
			if ch == "" {
				ch = "redirect"
			}
			cur.Channels = append(cur.Channels, ch)
		}
	}
	closeEpisode()
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
