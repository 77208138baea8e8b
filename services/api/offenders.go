package api

import (
	"context"
	"fmt"
	"sort"

	"google.golang.org/protobuf/encoding/protojson"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// OffenderFormulaVersion names the ranking below (DOMAIN.md "Repeat
// offender" and "Priority"), computed from the stored scorecards.
const OffenderFormulaVersion = "offenders/1"

// OffenderQuery is a validated offenders request.
type OffenderQuery struct {
	Granularity string
	K, N        int     // flagged in at least K of the last N periods
	Threshold   float64 // suspect-rate Wilson lower bound above which a period is flagged
	MinRequests uint64
	Chains      int // suspect chains listed per offender
	// Purpose ranks on the stored scorecards' line of one exchange purpose
	// (scorecard/3 and later), or of the required-response purposes
	// together (RequiredResponseLine); "" = every request.
	Purpose string
}

// RequiredResponseLine is the purpose= value that selects the scorecards'
// required_response line: the purposes a responder is required to answer,
// together (the line is found by its field, not by this name).
const RequiredResponseLine = "required_response"

// DefaultOffenderQuery is DOMAIN.md's defaults: weekly, 3 of 4, 5 %, 30 requests.
func DefaultOffenderQuery() OffenderQuery {
	return OffenderQuery{Granularity: "week", K: 3, N: 4, Threshold: 0.05, MinRequests: 30, Chains: 5}
}

// OffenderPeriod is one network's figures in one period of the window.
type OffenderPeriod struct {
	Period       string  `json:"period"`
	Requests     uint64  `json:"requests"`
	SuspectRate  float64 `json:"suspect_rate"`
	SuspectCILow float64 `json:"suspect_ci_low"`
	PeerMedian   float64 `json:"peer_median"`
	Flagged      bool    `json:"flagged"`
}

// ChainRef points at one chain behind a flag.
type ChainRef struct {
	ID            string `json:"id"`
	ResponderOrg  string `json:"responder_org"`
	Outcome       string `json:"outcome"`
	RequestedAtMs int64  `json:"requested_at_ms"`
	PatientToken  string `json:"patient_token,omitempty"`
}

// Offender is one network's standing over the window.
type Offender struct {
	Network        string           `json:"network"`
	Flagged        int              `json:"flagged_periods"`
	Consecutive    int              `json:"consecutive_flagged"`
	RepeatOffender bool             `json:"repeat_offender"`
	ExcessSuspect  float64          `json:"excess_suspect"`
	Priority       float64          `json:"priority"`
	Periods        []OffenderPeriod `json:"periods"`
	Chains         []ChainRef       `json:"chains"`
	// LatestScorecard is the network's scorecard of the last period as
	// stored, passed through whole: fields the scorecard service adds
	// (responder rankings, its own flags) appear here as they land.
	LatestScorecard   ScorecardRow `json:"latest_scorecard"`
	latestPeriodStart int64
}

// Offenders is the ranked list.
type Offenders struct {
	FormulaVersion string        `json:"formula_version"`
	Query          OffenderQuery `json:"query"`
	Periods        []string      `json:"periods"`
	Offenders      []Offender    `json:"offenders"`
}

// rankOffenders ranks networks over the last q.N periods found in rows
// (latest scorecard per network and period, any order). The peer median of
// a period is the median suspect rate of every network scored in it.
// Pure: the ClickHouse reads are the caller's.
func rankOffenders(rows []ScorecardRow, q OffenderQuery) Offenders {
	res := Offenders{FormulaVersion: OffenderFormulaVersion, Query: q, Periods: []string{}, Offenders: []Offender{}}
	starts := map[int64]string{}
	for _, r := range rows {
		starts[r.PeriodStartMs] = r.Period
	}
	keys := make([]int64, 0, len(starts))
	for k := range starts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	if len(keys) > q.N {
		keys = keys[len(keys)-q.N:]
	}
	window := map[int64]int{}
	for i, k := range keys {
		window[k] = i
		res.Periods = append(res.Periods, starts[k])
	}
	medians := make([]float64, len(keys))
	for i, k := range keys {
		var rates []float64
		for _, r := range rows {
			if r.PeriodStartMs == k {
				rates = append(rates, r.SuspectRate)
			}
		}
		medians[i] = median(rates)
	}
	byNet := map[string]*Offender{}
	var order []string
	for _, r := range rows {
		i, ok := window[r.PeriodStartMs]
		if !ok {
			continue
		}
		o := byNet[r.Network]
		if o == nil {
			o = &Offender{Network: r.Network, Periods: make([]OffenderPeriod, len(keys)), Chains: []ChainRef{}}
			for j, k := range keys {
				o.Periods[j] = OffenderPeriod{Period: starts[k], PeerMedian: medians[j]}
			}
			byNet[r.Network] = o
			order = append(order, r.Network)
		}
		p := &o.Periods[i]
		p.Requests, p.SuspectRate, p.SuspectCILow = r.Requests, r.SuspectRate, r.SuspectCILow
		p.Flagged = r.Requests >= q.MinRequests && r.SuspectCILow > q.Threshold
		if r.PeriodStartMs >= o.latestPeriodStart {
			o.latestPeriodStart, o.LatestScorecard = r.PeriodStartMs, r
		}
	}
	for _, n := range order {
		o := byNet[n]
		for _, p := range o.Periods {
			if p.Flagged {
				o.Flagged++
			}
		}
		for i := len(o.Periods) - 1; i >= 0 && o.Periods[i].Flagged; i-- {
			o.Consecutive++
		}
		o.RepeatOffender = o.Flagged >= q.K
		last := o.Periods[len(o.Periods)-1]
		// A small sample is shown, never ranked (DOMAIN.md: at least
		// MinRequests before a figure can flag anyone).
		if last.Requests >= q.MinRequests {
			o.ExcessSuspect = max(0, last.SuspectCILow-last.PeerMedian) * float64(last.Requests)
		}
		o.Priority = o.ExcessSuspect * float64(1+o.Consecutive)
		res.Offenders = append(res.Offenders, *o)
	}
	sort.SliceStable(res.Offenders, func(i, j int) bool {
		a, b := res.Offenders[i], res.Offenders[j]
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		if a.Flagged != b.Flagged {
			return a.Flagged > b.Flagged
		}
		return a.Network < b.Network
	})
	return res
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// offenders reads the scorecards of the granularity, ranks them and lists,
// for each network the caller may see, the suspect chains of its latest
// period behind the flag.
func (s *store) offenders(ctx context.Context, q OffenderQuery, visible func(string) bool) (Offenders, error) {
	rows, err := s.scorecards(ctx, `granularity = ?`, q.Granularity)
	if err != nil {
		return Offenders{}, err
	}
	if q.Purpose != "" {
		if rows, err = purposeRows(rows, q.Purpose); err != nil {
			return Offenders{}, err
		}
	}
	res := rankOffenders(rows, q)
	kept := res.Offenders[:0]
	for _, o := range res.Offenders {
		if !visible(o.Network) {
			continue
		}
		if q.Chains > 0 {
			chains, err := s.suspectChains(ctx, o.Network, o.LatestScorecard.PeriodStartMs, o.LatestScorecard.PeriodEndMs, q.Chains, q.Purpose)
			if err != nil {
				return Offenders{}, err
			}
			for _, c := range chains {
				o.Chains = append(o.Chains, ChainRef{ID: c.ID, ResponderOrg: c.ResponderOrg, Outcome: c.Class, RequestedAtMs: c.RequestedAtMs, PatientToken: c.PatientToken})
			}
		}
		kept = append(kept, o)
	}
	res.Offenders = kept
	return res, nil
}

// purposeRows returns the scorecards with their figures replaced by those
// of one purpose's line (requests, suspect count, rate and lower bound),
// read from the stored scorecard (protojson, as chstore.InsertScorecards
// writes it); a card without that line (no request of the purpose, or
// written before scorecard/3) is left out: the network had nothing of it
// to rank.
func purposeRows(rows []ScorecardRow, name string) ([]ScorecardRow, error) {
	out := make([]ScorecardRow, 0, len(rows))
	for _, r := range rows {
		if string(r.Scorecard) == "null" { // no card stored with the row: no line
			continue
		}
		var card hinscorev1.Scorecard
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(r.Scorecard, &card); err != nil {
			return nil, fmt.Errorf("api.purposeRows: scorecard of %s %s: %w", r.Network, r.Period, err)
		}
		line := card.GetRequiredResponse()
		if name != RequiredResponseLine {
			line = nil
			for _, pf := range card.GetPurposes() {
				if pf.GetPurpose() == name {
					line = pf
				}
			}
		}
		if line.GetRequests() == 0 {
			continue
		}
		sus := line.GetSuspect()
		r.Requests, r.Suspect, r.SuspectRate, r.SuspectCILow = line.GetRequests(), sus.GetCount(), sus.GetRate(), sus.GetCiLow()
		out = append(out, r)
	}
	return out, nil
}
