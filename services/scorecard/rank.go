package scorecard

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/exception"
	"github.com/hinscore/hinscore/services/lib/domain/purpose"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/proto/outcomeclass"
)

// Copies of a scorecard.
const (
	CopyAnalyst  = "analyst"
	CopyOperator = "operator"
)

// scored is the ranking state of one entity in one period.
type scored struct {
	f       *figures
	suspect *hinscorev1.Rate
	flagged bool
	peer    bool // counts among the peers of its level
	ranking *hinscorev1.Ranking
}

// ranker computes suspect rates, flags, peer medians and ranks for every
// entity of every period of a world.
type ranker struct {
	w      *world
	q      Query
	scores map[time.Time]map[entityKey]*scored
}

func newRanker(w *world, q Query) *ranker {
	r := &ranker{w: w, q: q, scores: map[time.Time]map[entityKey]*scored{}}
	for p, byEntity := range w.figs {
		m := map[entityKey]*scored{}
		for k, f := range byEntity {
			s := &scored{f: f, suspect: NewRate(f.suspect(), f.requests)}
			// An unknown developer is not one vendor: shown, never ranked.
			s.peer = f.requests >= MinSample && !(k.level == LevelDeveloper && k.id == "")
			s.flagged = s.peer && s.suspect.GetCiLow() > q.Params.FlagThreshold
			m[k] = s
		}
		r.scores[p] = m
	}
	for p := range r.scores {
		r.rank(p)
	}
	return r
}

// flaggedAt reports whether the entity was flagged in the period at p.
func (r *ranker) flaggedAt(p time.Time, k entityKey) bool {
	s := r.scores[p][k]
	return s != nil && s.flagged
}

// rank fills the Ranking of every entity of period p.
func (r *ranker) rank(p time.Time) {
	byLevel := map[string][]entityKey{}
	for k := range r.scores[p] {
		byLevel[k.level] = append(byLevel[k.level], k)
	}
	for _, keys := range byLevel {
		var rates []float64
		for _, k := range keys {
			if s := r.scores[p][k]; s.peer {
				rates = append(rates, s.suspect.GetRate())
			}
		}
		for _, k := range keys {
			s := r.scores[p][k]
			med := medianWithout(rates, s.suspect.GetRate(), s.peer)
			rk := &hinscorev1.Ranking{PeerMedian: med, Flagged: s.flagged}
			if s.peer {
				rk.ExcessEvents = max(0, s.suspect.GetCiLow()-med) * float64(s.f.requests)
			}
			// k of the last n periods and the run ending here, by calendar
			// period: a period without requests is not flagged.
			at := p
			run := true
			for range r.q.Params.FlagN {
				f := r.flaggedAt(at, k)
				if f {
					rk.FlaggedPeriods++
				}
				if run && f {
					rk.Consecutive++
				} else {
					run = false
				}
				at = prevPeriod(r.q.Granularity, at)
			}
			rk.RepeatOffender = int(rk.FlaggedPeriods) >= r.q.Params.FlagK
			rk.Priority = rk.ExcessEvents * float64(1+rk.Consecutive)
			s.ranking = rk
		}
		slices.SortFunc(keys, func(a, b entityKey) int {
			sa, sb := r.scores[p][a], r.scores[p][b]
			return cmp.Or(
				cmp.Compare(sb.ranking.GetPriority(), sa.ranking.GetPriority()),
				cmp.Compare(sb.ranking.GetExcessEvents(), sa.ranking.GetExcessEvents()),
				cmp.Compare(sb.suspect.GetCiLow(), sa.suspect.GetCiLow()),
				strings.Compare(a.network, b.network),
				strings.Compare(a.id, b.id),
			)
		})
		for i, k := range keys {
			s := r.scores[p][k]
			s.ranking.Rank, s.ranking.Ranked = uint32(i+1), uint32(len(keys))
		}
	}
}

// medianWithout returns the median of vals without one occurrence of self
// (when self is among them): an entity is not its own peer. 0 without
// peers.
func medianWithout(vals []float64, self float64, included bool) float64 {
	v := slices.Clone(vals)
	slices.Sort(v)
	if included {
		if i, ok := slices.BinarySearch(v, self); ok {
			v = slices.Delete(v, i, i+1)
		}
	}
	return quantileOf(v, 0.5)
}

// quantileOf returns the level quantile of sorted values, interpolating
// between neighbours (0 for none).
func quantileOf(sorted []float64, level float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := level * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}

func summary(vals []float64) *hinscorev1.PeerSummary {
	v := slices.Clone(vals)
	slices.Sort(v)
	s := &hinscorev1.PeerSummary{Count: uint32(len(v))}
	if len(v) > 0 {
		s.Min, s.Max = v[0], v[len(v)-1]
		s.P25, s.Median, s.P75 = quantileOf(v, 0.25), quantileOf(v, 0.5), quantileOf(v, 0.75)
	}
	return s
}

// assemble builds the analyst copy of every wanted card from a world.
func assemble(w *world, q Query, now time.Time) []*hinscorev1.Scorecard {
	r := newRanker(w, q)
	var out []*hinscorev1.Scorecard
	for _, p := range w.periods {
		if !q.wantPeriod(p) {
			continue
		}
		var networks []string
		for k := range w.figs[p] {
			if k.level == LevelNetwork {
				networks = append(networks, k.network)
			}
		}
		slices.Sort(networks)
		for _, n := range networks {
			if q.Network != "" && n != q.Network {
				continue
			}
			out = append(out, r.card(p, n, now))
		}
	}
	slices.SortStableFunc(out, func(a, b *hinscorev1.Scorecard) int {
		return cmp.Or(strings.Compare(a.GetNetwork(), b.GetNetwork()), cmp.Compare(a.GetPeriodStartMs(), b.GetPeriodStartMs()))
	})
	return out
}

func (r *ranker) card(p time.Time, network string, now time.Time) *hinscorev1.Scorecard {
	q := r.q
	label, end, _ := Period(q.Granularity, p)
	nk := entityKey{network, LevelNetwork, ""}
	s := r.scores[p][nk]
	e := r.entity(p, nk)
	c := &hinscorev1.Scorecard{
		Network: network, Period: label, PeriodStartMs: p.UnixMilli(), PeriodEndMs: end.UnixMilli(),
		Requests: e.Requests, Volumes: e.Volumes, Outcomes: e.Outcomes, TimeToFulfil: e.TimeToFulfil,
		Suspect: e.Suspect, FormulaVersion: FormulaVersion, GeneratedAtMs: now.UnixMilli(),
		SchemaVersion: SchemaVersion, Granularity: q.Granularity, Formula: q.Params.Formula(), Copy: CopyAnalyst,
		Closed:            !q.ClosedBefore.IsZero() && !end.After(q.ClosedBefore),
		TimeToAcknowledge: e.TimeToAcknowledge, Refusals: e.Refusals, Ranking: e.Ranking, Trend: e.Trend, Flags: e.Flags,
		Purposes: e.Purposes, RequiredResponse: e.RequiredResponse,
		UnequalTreatment: compareRequesters(r.w.pairs[p][network], r.w.dir, q.Params),
	}
	// Orphans: answers without a request, a data-quality figure over
	// everything linked.
	c.Outcomes = append(c.Outcomes, &hinscorev1.ClassRate{
		Outcome: outcomeclass.Name(hinscorev1.OutcomeClass_OUTCOME_CLASS_ORPHAN),
		Rate:    NewRate(s.f.orphans, s.f.requests+s.f.orphans),
	})
	var keys []entityKey
	for k := range r.scores[p] {
		if k.network == network && k.level != LevelNetwork {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b entityKey) int {
		return cmp.Or(strings.Compare(a.level, b.level), strings.Compare(a.id, b.id))
	})
	for _, k := range keys {
		if k.level == LevelResponder {
			c.Responders = append(c.Responders, r.entity(p, k))
		} else {
			c.Developers = append(c.Developers, r.entity(p, k))
		}
	}
	var otherNets, responders []float64
	for k, o := range r.scores[p] {
		switch {
		case !o.peer:
		case k.level == LevelNetwork && k.network != network:
			otherNets = append(otherNets, o.suspect.GetRate())
			c.Peers = append(c.Peers, &hinscorev1.PeerNetwork{Network: k.network, Requests: o.f.requests, Suspect: o.suspect})
		case k.level == LevelResponder:
			responders = append(responders, o.suspect.GetRate())
		}
	}
	slices.SortFunc(c.Peers, func(a, b *hinscorev1.PeerNetwork) int { return strings.Compare(a.GetNetwork(), b.GetNetwork()) })
	c.PeerNetworks, c.PeerResponders = summary(otherNets), summary(responders)
	return c
}

// entity builds the figures, ranking, trend and flags (without evidence)
// of one entity in period p.
func (r *ranker) entity(p time.Time, k entityKey) *hinscorev1.Entity {
	s := r.scores[p][k]
	f := s.f
	e := &hinscorev1.Entity{Level: k.level, Id: k.id, Requests: f.requests, Suspect: s.suspect, Ranking: s.ranking}
	switch k.level {
	case LevelResponder:
		e.Name, e.Developer = r.w.dir.orgName(k.id), r.w.dir.developerOf(k.id)
	case LevelDeveloper:
		e.Name, e.Developer = k.id, k.id
		if k.id == "" {
			e.Name = "(developer unknown)"
		}
	default:
		e.Name = k.network
	}
	for id := range f.ids {
		e.Identifiers = append(e.Identifiers, id)
	}
	slices.Sort(e.Identifiers)
	for _, kind := range sortedKeys(f.kinds) {
		v := f.kinds[kind]
		e.Volumes = append(e.Volumes, &hinscorev1.KindVolume{RequestKind: kind, Requests: v.requests, SlaMinMs: v.slaMin, SlaMaxMs: v.slaMax})
	}
	e.Outcomes = classRates(f)
	e.TimeToFulfil = latency(r.w.ttf[p][k], f.answered, f.within)
	tta := r.w.tta[p][k]
	e.TimeToAcknowledge = latency(tta, tta.n, tta.within)
	e.Refusals = r.refusals(p, k)
	e.Purposes, e.RequiredResponse = purposeLines(f)
	// Trend: the last FlagN periods, oldest first.
	at := p
	for range r.q.Params.FlagN {
		tp := &hinscorev1.TrendPoint{Period: mustLabel(r.q.Granularity, at), Suspect: NewRate(0, 0)}
		if o := r.scores[at][k]; o != nil {
			tp.Requests, tp.Suspect, tp.Flagged = o.f.requests, o.suspect, o.flagged
		}
		e.Trend = append([]*hinscorev1.TrendPoint{tp}, e.Trend...)
		at = prevPeriod(r.q.Granularity, at)
	}
	rk := s.ranking
	switch {
	case rk.GetRepeatOffender() && rk.GetFlagged():
		e.Flags = append(e.Flags, &hinscorev1.Flag{Kind: "repeat_offender", EvidenceTotal: s.suspect.GetCount(), Reason: fmt.Sprintf(
			"suspect rate %.1f%% (lower bound %.1f%% > %.0f%%) over %d requests; flagged in %d of the last %d periods, %d in a row",
			100*s.suspect.GetRate(), 100*s.suspect.GetCiLow(), 100*r.q.Params.FlagThreshold, f.requests, rk.GetFlaggedPeriods(), r.q.Params.FlagN, rk.GetConsecutive())})
	case rk.GetFlagged():
		e.Flags = append(e.Flags, &hinscorev1.Flag{Kind: "suspect", EvidenceTotal: s.suspect.GetCount(), Reason: fmt.Sprintf(
			"suspect rate %.1f%% (lower bound %.1f%% > %.0f%%) over %d requests; flagged in %d of the last %d periods",
			100*s.suspect.GetRate(), 100*s.suspect.GetCiLow(), 100*r.q.Params.FlagThreshold, f.requests, rk.GetFlaggedPeriods(), r.q.Params.FlagN)})
	}
	for _, x := range e.Refusals {
		if x.GetOveruse() {
			e.Flags = append(e.Flags, &hinscorev1.Flag{Kind: "exception_overuse", ExceptionCode: x.GetCode(), EvidenceTotal: x.GetRate().GetCount(), Reason: fmt.Sprintf(
				"cites %s (%s) in %.1f%% of requests (lower bound %.1f%%), peers' median %.2f%%",
				x.GetCode(), x.GetName(), 100*x.GetRate().GetRate(), 100*x.GetRate().GetCiLow(), 100*x.GetPeerMedian())})
		}
	}
	return e
}

// refusals lists the entity's cited codes with their share, the peers'
// median share and the overuse signal.
func (r *ranker) refusals(p time.Time, k entityKey) []*hinscorev1.ExceptionCount {
	s := r.scores[p][k]
	codes := make([]codeKey, 0, len(s.f.codes))
	for c := range s.f.codes {
		codes = append(codes, c)
	}
	slices.SortFunc(codes, func(a, b codeKey) int {
		return cmp.Or(strings.Compare(a.outcome, b.outcome), strings.Compare(a.code, b.code))
	})
	var out []*hinscorev1.ExceptionCount
	for _, c := range codes {
		rate := NewRate(s.f.codes[c], s.f.requests)
		var shares []float64
		for ok, o := range r.scores[p] {
			if ok.level == k.level && ok != k && o.peer {
				shares = append(shares, float64(o.f.codes[c])/float64(o.f.requests))
			}
		}
		med := medianWithout(shares, 0, false)
		x := &hinscorev1.ExceptionCount{Code: c.code, Name: exception.Label(c.code), Outcome: c.outcome, Rate: rate, PeerMedian: med}
		// Only lawful-on-their-face exceptions: a redirect is suspect anyway.
		x.Overuse = c.outcome == "refused_exception" && s.peer &&
			rate.GetCiLow() > max(r.q.Params.OveruseMultiple*med, r.q.Params.OveruseFloor)
		out = append(out, x)
	}
	return out
}

// purposeLines are an entity's rates by exchange purpose, in the order of
// purpose.All, and the required-response purposes together (always
// present, with zero requests when there were none).
func purposeLines(f *figures) (lines []*hinscorev1.PurposeFigures, required *hinscorev1.PurposeFigures) {
	req := &figures{classes: map[string]uint64{}}
	for _, p := range purpose.All {
		pf := f.purposes[string(p)]
		if pf == nil {
			continue
		}
		lines = append(lines, purposeFigures(string(p), purpose.RequiredResponse(p), pf))
		if purpose.RequiredResponse(p) {
			req.requests += pf.requests
			req.veryLate += pf.veryLate
			req.answered += pf.answered
			req.within += pf.within
			for c, n := range pf.classes {
				req.classes[c] += n
			}
		}
	}
	return lines, purposeFigures(RequiredResponseLine, true, req)
}

// RequiredResponseLine is the purpose name of the required-response line.
const RequiredResponseLine = "required_response"

func purposeFigures(name string, required bool, f *figures) *hinscorev1.PurposeFigures {
	pf := &hinscorev1.PurposeFigures{Purpose: name, RequiredResponse: required, Requests: f.requests,
		Suspect:   NewRate(f.suspect(), f.requests),
		Denied:    NewRate(f.classes["unanswered"]+f.classes["refused_unjustified"], f.requests),
		WithinSla: NewRate(f.within, f.answered), Outcomes: classRates(f)}
	return pf
}

// classRates is the rate of every outcome class (orphans aside) over the
// requests of f.
func classRates(f *figures) []*hinscorev1.ClassRate {
	var out []*hinscorev1.ClassRate
	for _, class := range outcomeclass.All {
		if class == hinscorev1.OutcomeClass_OUTCOME_CLASS_ORPHAN {
			continue
		}
		name := outcomeclass.Name(class)
		out = append(out, &hinscorev1.ClassRate{Outcome: name, Rate: NewRate(f.classes[name], f.requests)})
	}
	return out
}

func latency(q quantiles, answered, within uint64) *hinscorev1.Latency {
	return &hinscorev1.Latency{Count: answered, P50Ms: q.qs[0], P90Ms: q.qs[1], P99Ms: q.qs[2], WithinSla: NewRate(within, answered)}
}

func mustLabel(granularity string, start time.Time) string {
	label, _, _ := Period(granularity, start)
	return label
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
