package simulator

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// PerformanceCode is the exception the episodes cite: health IT
// performance (45 CFR 171.205).
const PerformanceCode = "171.205"

// What the exception checks should find for a request (TruthRow.
// ExceptionCheck, the truth's exception_check column).
const (
	// CheckFlag: a refusal citing 171.205 while the responder fulfilled
	// most of its other requests in the same minutes.
	CheckFlag = "flag"
	// CheckClear: a refusal citing 171.205 in a real outage, when the
	// responder fulfilled nothing.
	CheckClear = "clear"
)

// PerformanceEpisode is a stretch of time in which a responder cites
// 171.205 (health IT performance), either while it goes on serving its
// other requesters (the citation is not what the exception allows) or in a
// real outage (it is). An episode adds Requests requests to the responder,
// evenly spread over [At, At+Length) from the plan's Start, requesters in
// turn; they draw from a random stream of their own.
type PerformanceEpisode struct {
	At     time.Duration `json:"at"`
	Length time.Duration `json:"length"`
	// Requests is the number of requests the episode adds.
	Requests int `json:"requests"`
	// Outage: the responder fulfils nothing in the episode: its added
	// requests and any other request to it then are refused citing 171.205
	// (truth CheckClear).
	Outage bool `json:"outage,omitempty"`
	// CiteShare of the added requests of a serving episode are refused
	// citing 171.205 (truth CheckFlag); the others are fulfilled with
	// probability Serving (0.9 when 0), else not found.
	CiteShare float64 `json:"cite_share,omitempty"`
	Serving   float64 `json:"serving,omitempty"`
}

// episodeStep is one added request of an episode: to whom, and how it ends.
type episodeStep struct {
	requester Org
	profile   *ResponderProfile
	class     string
	check     string
}

func (e PerformanceEpisode) serving() float64 {
	if e.Serving == 0 {
		return 0.9
	}
	return e.Serving
}

// covers reports whether at falls in the episode of a plan started at start.
func (e PerformanceEpisode) covers(start, at time.Time) bool {
	return !at.Before(start.Add(e.At)) && at.Before(start.Add(e.At+e.Length))
}

// episodes draws the added requests of every responder's episodes, from a
// stream of their own so that a plan without episodes is unchanged.
func (g *generator) episodes() []slot {
	rng := rand.New(rand.NewPCG(uint64(g.cfg.Seed), uint64(g.cfg.Seed)^0x78dde6e5fd29f05b))
	var out []slot
	for ni, n := range g.cfg.Networks {
		for pi := range n.ResponderProfiles {
			rp := &g.cfg.Networks[ni].ResponderProfiles[pi]
			for _, e := range rp.Episodes {
				step := e.Length / time.Duration(e.Requests)
				for i := range e.Requests {
					s := &episodeStep{requester: n.Requesters[i%len(n.Requesters)], profile: rp, class: RefusedException, check: CheckClear}
					switch {
					case e.Outage:
					case rng.Float64() < e.CiteShare:
						s.check = CheckFlag
					case rng.Float64() < e.serving():
						s.class, s.check = Fulfilled, ""
					default:
						s.class, s.check = NotFound, ""
					}
					at := g.cfg.Start.Add(e.At + time.Duration(i)*step).Truncate(time.Millisecond)
					out = append(out, slot{at: at, network: ni, episode: s})
				}
			}
		}
	}
	return out
}

// inOutage reports whether the responder is in one of its outages at at.
func (r *ResponderProfile) inOutage(start, at time.Time) bool {
	for _, e := range r.Episodes {
		if e.Outage && e.covers(start, at) {
			return true
		}
	}
	return false
}

func validateEpisodes(at string, n NetworkProfile, r ResponderProfile, span time.Duration) []error {
	var errs []error
	if len(r.Episodes) > 0 && len(n.Patterns) > 0 {
		errs = append(errs, fmt.Errorf("%s.Episodes: only on a network of patient queries (no Patterns)", at))
	}
	for i, e := range r.Episodes {
		where := fmt.Sprintf("%s.Episodes[%d]", at, i)
		if e.At < 0 || e.Length <= 0 || e.At+e.Length > span {
			errs = append(errs, fmt.Errorf("%s: [%s, +%s) is not inside the span %s", where, e.At, e.Length, span))
		}
		if e.Requests <= 0 || (e.Length > 0 && e.Length/time.Duration(max(e.Requests, 1)) < time.Millisecond) {
			errs = append(errs, fmt.Errorf("%s.Requests: %d, want at least 1 and at most one per millisecond", where, e.Requests))
		}
		if e.CiteShare < 0 || e.CiteShare > 1 || e.Serving < 0 || e.Serving > 1 {
			errs = append(errs, fmt.Errorf("%s: CiteShare and Serving are shares in [0, 1]", where))
		}
	}
	return errs
}
