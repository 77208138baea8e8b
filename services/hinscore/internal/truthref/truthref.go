// Package truthref computes, from the simulator's truth alone, what the
// day scorecards of a run must say: every class rate and the suspect rate
// with their Wilson intervals, the time to fulfil and to acknowledge
// (p50/p90/p99, within SLA), refusals by cited code, peer medians,
// excess, flags, repeat offenders, priorities and ranks, for each network
// and each responder. It implements DOMAIN.md's scorecard formulas itself
// and imports nothing of the scorecard package, so that a test comparing
// the two checks the scorecards against an independent computation.
package truthref

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/hinscore/internal/truthcheck"
)

// Params are the formula's parameters (DOMAIN.md, the scorecard README).
type Params struct {
	MinSample       int     // fewest requests of a flagged entity and of a peer
	FlagThreshold   float64 // suspect lower bound above which a period is flagged
	FlagK, FlagN    int     // repeat offender: flagged in K of the last N periods
	SuspectMultiple int64   // an answer later than this many SLAs is suspect
	OveruseMultiple float64 // exception overuse: above this many times the peers' median share
	OveruseFloor    float64 // ... and above this share
}

// DefaultParams are the defaults the scorecards print.
func DefaultParams() Params {
	return Params{MinSample: 30, FlagThreshold: 0.05, FlagK: 3, FlagN: 4, SuspectMultiple: 3, OveruseMultiple: 3, OveruseFloor: 0.02}
}

// Entity levels.
const (
	LevelNetwork   = "network"
	LevelResponder = "responder"
)

// Key names an entity in a day ("2006-01-02").
type Key struct {
	Period, Level, Network, ID string
}

// Figures are one entity's figures in one day.
type Figures struct {
	Requests uint64
	// Classes has every class that occurs (others are 0 of Requests).
	Classes map[string]uint64
	Suspect Rate
	TTF     Latency
	// TTA is known when the truth gives every request's time to
	// acknowledge (TTAKnown).
	TTA      Latency
	TTAKnown bool
	// Refusals are the refused_exception and redirected requests by code.
	Refusals []Refusal
	Ranking  Ranking
	// Flags are "suspect" or "repeat_offender" when flagged, and
	// "exception_overuse <code>" per overused code.
	Flags []string

	suspect      uint64
	ttf, tta     []uint64
	ttfIn, ttaIn int
	ttaUnknown   bool
	codes        map[refusalKey]uint64
}

type refusalKey struct{ outcome, code string }

// Refusal is a cited code's share of an entity's requests, the median
// share among its peers (0 for a peer that never cites it) and whether it
// is overused: a lawful-on-its-face exception whose share's lower bound is
// above both OveruseMultiple times that median and OveruseFloor.
type Refusal struct {
	Outcome, Code string
	Share         Rate
	PeerMedian    float64
	Overuse       bool
}

// ClassRate is a class's rate with its interval.
func (f *Figures) ClassRate(class string, p Params) Rate {
	return wilson(f.Classes[class], f.Requests, p.MinSample)
}

// Ranking is an entity's standing among its peers in a day.
type Ranking struct {
	PeerMedian, Excess, Priority float64
	Peer, Flagged                bool
	FlaggedPeriods, Consecutive  int
	RepeatOffender               bool
	Rank, Ranked                 int
}

const dayLayout = "2006-01-02"

// Compute gives the figures of every network and responder in every day
// of the requests. A request's SLA is its own when the truth states one,
// else sla's (ms) of its kind.
func Compute(requests []truthcheck.Request, sla map[string]int64, p Params) (map[Key]*Figures, error) {
	out := map[Key]*Figures{}
	for _, q := range requests {
		s, ok := q.SLAMs, q.SLAMs > 0
		if !ok {
			s, ok = sla[q.Kind]
		}
		if !ok {
			return nil, fmt.Errorf("truthref: no SLA for request kind %q", q.Kind)
		}
		day := q.RequestedAt.UTC().Format(dayLayout)
		responder := q.Responder
		if q.ResponderCommunity != "" {
			responder = q.ResponderCommunity // a gateway is its home community
		}
		for _, k := range []Key{{day, LevelNetwork, q.Network, q.Network}, {day, LevelResponder, q.Network, responder}} {
			f := out[k]
			if f == nil {
				f = &Figures{Classes: map[string]uint64{}, codes: map[refusalKey]uint64{}}
				out[k] = f
			}
			f.add(q, s, p)
		}
	}
	for _, f := range out {
		f.Suspect = wilson(f.suspect, f.Requests, p.MinSample)
		f.TTF = latency(f.ttf, f.ttfIn, p.MinSample)
		f.TTA, f.TTAKnown = latency(f.tta, f.ttaIn, p.MinSample), !f.ttaUnknown
	}
	rank(out, p)
	refusals(out, p)
	return out, nil
}

// add counts one request of SLA sla into the figures.
func (f *Figures) add(q truthcheck.Request, sla int64, p Params) {
	f.Requests++
	f.Classes[q.Class]++
	switch q.Class {
	case "refused_unjustified", "redirected", "unanswered":
		f.suspect++
	case "fulfilled", "fulfilled_late":
		if q.TTFMs > p.SuspectMultiple*sla {
			f.suspect++
		}
	}
	switch q.Class {
	case "fulfilled", "fulfilled_late", "partial":
		if q.TTFMs >= 0 {
			f.ttf = append(f.ttf, uint64(q.TTFMs))
			if q.TTFMs <= sla {
				f.ttfIn++
			}
		}
	case "refused_exception", "redirected":
		if q.ExceptionCode != "" {
			f.codes[refusalKey{q.Class, q.ExceptionCode}]++
		}
	}
	switch {
	case q.TTAMs == -2:
		f.ttaUnknown = true
	case q.TTAMs >= 0:
		f.tta = append(f.tta, uint64(q.TTAMs))
		if q.TTAMs <= sla {
			f.ttaIn++
		}
	}
}

// rank fills every entity's Ranking: peers are the entities of the same
// level and day, every network, with at least MinSample requests; the
// peer median leaves the entity out; flags look back FlagN days.
func rank(all map[Key]*Figures, p Params) {
	groups := map[[2]string][]Key{}
	for k, f := range all {
		f.Ranking.Peer = f.Requests >= uint64(p.MinSample)
		f.Ranking.Flagged = f.Ranking.Peer && f.Suspect.Low > p.FlagThreshold
		g := [2]string{k.Period, k.Level}
		groups[g] = append(groups[g], k)
	}
	for _, keys := range groups {
		for _, k := range keys {
			f := all[k]
			var peers []float64
			for _, o := range keys {
				if o != k && all[o].Ranking.Peer {
					peers = append(peers, all[o].Suspect.Rate)
				}
			}
			r := &f.Ranking
			r.PeerMedian = median(peers)
			if r.Peer {
				r.Excess = max(0, f.Suspect.Low-r.PeerMedian) * float64(f.Requests)
			}
			day, _ := time.Parse(dayLayout, k.Period)
			run := true
			for i := range p.FlagN {
				back := k
				back.Period = day.AddDate(0, 0, -i).Format(dayLayout)
				flagged := all[back] != nil && all[back].Ranking.Flagged
				if flagged {
					r.FlaggedPeriods++
				}
				run = run && flagged
				if run {
					r.Consecutive++
				}
			}
			r.RepeatOffender = r.FlaggedPeriods >= p.FlagK
			r.Priority = r.Excess * float64(1+r.Consecutive)
		}
		slices.SortFunc(keys, func(a, b Key) int {
			ra, rb := all[a], all[b]
			return cmp.Or(cmp.Compare(rb.Ranking.Priority, ra.Ranking.Priority), cmp.Compare(rb.Ranking.Excess, ra.Ranking.Excess),
				cmp.Compare(rb.Suspect.Low, ra.Suspect.Low), strings.Compare(a.Network, b.Network), strings.Compare(a.ID, b.ID))
		})
		for i, k := range keys {
			all[k].Ranking.Rank, all[k].Ranking.Ranked = i+1, len(keys)
		}
	}
}

// refusals fills every entity's Refusals and Flags, once the peers are known.
func refusals(all map[Key]*Figures, p Params) {
	for k, f := range all {
		keys := make([]refusalKey, 0, len(f.codes))
		for c := range f.codes {
			keys = append(keys, c)
		}
		slices.SortFunc(keys, func(a, b refusalKey) int {
			return cmp.Or(strings.Compare(a.outcome, b.outcome), strings.Compare(a.code, b.code))
		})
		switch {
		case f.Ranking.Flagged && f.Ranking.RepeatOffender:
			f.Flags = append(f.Flags, "repeat_offender")
		case f.Ranking.Flagged:
			f.Flags = append(f.Flags, "suspect")
		}
		for _, c := range keys {
			var shares []float64
			for o, g := range all {
				if o != k && o.Period == k.Period && o.Level == k.Level && g.Ranking.Peer {
					shares = append(shares, float64(g.codes[c])/float64(g.Requests))
				}
			}
			r := Refusal{Outcome: c.outcome, Code: c.code, Share: wilson(f.codes[c], f.Requests, p.MinSample), PeerMedian: median(shares)}
			r.Overuse = c.outcome == "refused_exception" && f.Ranking.Peer && r.Share.Low > max(p.OveruseMultiple*r.PeerMedian, p.OveruseFloor)
			f.Refusals = append(f.Refusals, r)
			if r.Overuse {
				f.Flags = append(f.Flags, "exception_overuse "+c.code)
			}
		}
	}
}
