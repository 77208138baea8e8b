package simulator

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Behaviour classes of a responder: what its scorecards should show.
const (
	// BehaviourClean fulfils almost everything on time.
	BehaviourClean = "clean"
	// BehaviourOccasional is clean except in its BadMonths.
	BehaviourOccasional = "occasional"
	// BehaviourRepeatOffender refuses without reason, redirects and leaves
	// requests unanswered month after month.
	BehaviourRepeatOffender = "repeat_offender"
	// BehaviourExceptionOveruser refuses a lot, always citing one exception
	// (lawful on its face, far more often than its peers).
	BehaviourExceptionOveruser = "exception_overuser"
	// BehaviourSlow answers slowly, some after the SLA, never later than 3x
	// the SLA: slow but compliant.
	BehaviourSlow = "slow_but_compliant"
	// BehaviourLowVolume behaves badly but receives too few requests for a
	// defensible rate: shown as a small sample, never flagged.
	BehaviourLowVolume = "low_volume"
)

// ResponderProfile describes one responder of a network on its own. When a
// network has ResponderProfiles, every request that is not part of a
// runaround goes to one of them (drawn by Weight) and takes the responder's
// class mix, latency and exceptions instead of the network's; the
// network's drift does not apply to them.
type ResponderProfile struct {
	// Facility is the responder's MSH-6 facility: one of the network's
	// Responders.
	Facility  string `json:"facility"`
	OrgID     string `json:"org_id"`
	Name      string `json:"name"`
	Developer string `json:"developer"`
	Behaviour string `json:"behaviour"`
	// Weight is the responder's relative share of the network's requests.
	Weight float64       `json:"weight"`
	Mix    []ClassWeight `json:"mix"`
	// BadMonths (calendar months since the month of Start, from 0) use
	// BadMix instead of Mix.
	BadMonths []int         `json:"bad_months,omitempty"`
	BadMix    []ClassWeight `json:"bad_mix,omitempty"`
	// Latency, LateBeyondShare and Exceptions override the network's when
	// set (LateBeyondShare < 0 means 0).
	Latency         *LogNormal `json:"latency,omitempty"`
	LateBeyondShare float64    `json:"late_beyond_share,omitempty"`
	Exceptions      []string   `json:"exceptions,omitempty"`
	// DriftPerMonth scales the suspect classes' weights by 1 + drift ×
	// months since Start (30-day months): negative for a responder that
	// improves, positive for one that gets worse.
	DriftPerMonth float64 `json:"drift_per_month,omitempty"`
	// Discrimination, when set, refuses requesters of one EHR developer at
	// one rate and everyone else at another (discrimination.go).
	Discrimination *Discrimination `json:"discrimination,omitempty"`
	// Episodes are stretches of time in which the responder cites 171.205
	// while serving, or in a real outage (PerformanceEpisode).
	Episodes []PerformanceEpisode `json:"episodes,omitempty"`
}

// MonthIndex is the number of calendar months from the month of start to
// the month of at (UTC).
func MonthIndex(start, at time.Time) int {
	start, at = start.UTC(), at.UTC()
	return (at.Year()-start.Year())*12 + int(at.Month()) - int(start.Month())
}

func (r *ResponderProfile) mixAt(start, at time.Time) []ClassWeight {
	if len(r.BadMix) > 0 && slices.Contains(r.BadMonths, MonthIndex(start, at)) {
		return r.BadMix
	}
	return drift(r.Mix, r.DriftPerMonth, at.Sub(start).Hours()/(30*24))
}

func (r *ResponderProfile) latency(p NetworkProfile) LogNormal {
	if r.Latency != nil {
		return *r.Latency
	}
	return p.Latency
}

func (r *ResponderProfile) lateBeyondShare(p NetworkProfile) float64 {
	switch {
	case r.LateBeyondShare < 0:
		return 0
	case r.LateBeyondShare > 0:
		return r.LateBeyondShare
	}
	return p.LateBeyondShare
}

func responderWeights(p NetworkProfile) []float64 {
	w := make([]float64, len(p.ResponderProfiles))
	for i, r := range p.ResponderProfiles {
		w[i] = r.Weight
	}
	return w
}

// responderOrg returns the network's responder with the facility.
func responderOrg(p NetworkProfile, facility string) Org {
	for _, o := range p.Responders {
		if o.Facility == facility {
			return o
		}
	}
	return Org{App: p.Code + "_HOSP_EHR", Facility: facility}
}

// TrueRates returns the probability of each outcome class of a request to
// the responder with the facility on network at time at, under a plan
// started at start (normalised weights; classes the mix lacks are absent).
// Runaround requests are not covered: turn runarounds off to compare. A
// responder with a Discrimination has these rates before its refusal split
// (Discrimination.RefusalRate gives refused_unjustified per requester).
func TrueRates(p NetworkProfile, facility string, start, at time.Time) map[string]float64 {
	mix := p.Mix
	for i := range p.ResponderProfiles {
		if r := &p.ResponderProfiles[i]; r.Facility == facility {
			mix = r.mixAt(start, at)
		}
	}
	var sum float64
	for _, w := range mix {
		sum += w.Weight
	}
	out := map[string]float64{}
	for _, w := range mix {
		if w.Weight > 0 {
			out[w.Class] += w.Weight / sum
		}
	}
	return out
}

// Mixes of the behaviour classes.
var (
	cleanMix = []ClassWeight{
		{Fulfilled, 0.90}, {FulfilledLate, 0.01}, {NotFound, 0.06}, {RefusedException, 0.01},
		{RefusedUnjustified, 0.004}, {Redirected, 0.003}, {ErrorTransient, 0.004}, {ErrorPermanent, 0.001}, {Unanswered, 0.008},
	}
	offenderMix = []ClassWeight{
		{Fulfilled, 0.70}, {FulfilledLate, 0.02}, {NotFound, 0.06}, {RefusedException, 0.01},
		{RefusedUnjustified, 0.10}, {Redirected, 0.05}, {ErrorTransient, 0.005}, {ErrorPermanent, 0.005}, {Unanswered, 0.05},
	}
	overuserMix = []ClassWeight{
		{Fulfilled, 0.80}, {FulfilledLate, 0.01}, {NotFound, 0.06}, {RefusedException, 0.10},
		{RefusedUnjustified, 0.004}, {Redirected, 0.003}, {ErrorTransient, 0.004}, {ErrorPermanent, 0.001}, {Unanswered, 0.008},
	}
	slowMix = []ClassWeight{
		{Fulfilled, 0.83}, {FulfilledLate, 0.08}, {NotFound, 0.06}, {RefusedException, 0.01},
		{RefusedUnjustified, 0.003}, {Redirected, 0.002}, {ErrorTransient, 0.004}, {ErrorPermanent, 0.001}, {Unanswered, 0.01},
	}
)

// BehaviourNetworks returns three networks whose responders each have a
// known behaviour: per network two clean responders, one occasional
// offender (bad in one month: month 2, 3 or 4 of the run), one repeat
// offender, one exception over-user (171.204 infeasibility), one slow but
// compliant responder and one low-volume responder. Developers (EHR
// vendors) cut across networks. No drift.
func BehaviourNetworks() []NetworkProfile {
	slow := &LogNormal{MedianMs: 25_000, Sigma: 0.4}
	base := DefaultNetworks()
	devs := developers
	for ni := range base {
		p := &base[ni]
		p.DriftPerMonth = 0
		p.Responders = orgs(p.Code, "HOSP", "HOSP_EHR", 7)
		kinds := []struct {
			behaviour string
			mix       []ClassWeight
			weight    float64
		}{
			{BehaviourClean, cleanMix, 1}, {BehaviourClean, cleanMix, 1}, {BehaviourOccasional, cleanMix, 1},
			{BehaviourRepeatOffender, offenderMix, 1}, {BehaviourExceptionOveruser, overuserMix, 1},
			{BehaviourSlow, slowMix, 1}, {BehaviourLowVolume, offenderMix, 0.012},
		}
		for i, k := range kinds {
			fac := p.Responders[i].Facility
			r := ResponderProfile{
				Facility: fac, OrgID: strings.ToLower(fac), Behaviour: k.behaviour, Weight: k.weight, Mix: k.mix,
				Name:      fmt.Sprintf("%s Hospital %02d", strings.ToUpper(p.Name[:1])+p.Name[1:], i+1),
				Developer: devs[(ni+i)%len(devs)],
			}
			switch k.behaviour {
			case BehaviourOccasional:
				r.BadMonths, r.BadMix = []int{2 + ni}, offenderMix
			case BehaviourExceptionOveruser:
				r.Exceptions = []string{"171.204"}
			case BehaviourSlow:
				// Late, but never beyond the linker's lateness: within
				// 3x SLA, so never suspect.
				r.Latency, r.LateBeyondShare = slow, -1
			}
			p.ResponderProfiles = append(p.ResponderProfiles, r)
		}
	}
	return base
}

// ResponderTruth is the designated behaviour of one responder.
type ResponderTruth struct {
	Network, Facility, OrgID, Name, Developer, Behaviour string
}

// Responders returns every responder with a profile, in configuration order.
func (p *Plan) Responders() []ResponderTruth {
	var out []ResponderTruth
	for _, f := range p.feeds {
		for _, r := range f.profile.ResponderProfiles {
			out = append(out, ResponderTruth{f.profile.Name, r.Facility, r.OrgID, r.Name, r.Developer, r.Behaviour})
		}
	}
	return out
}

// Profile returns the profile of a network of the plan.
func (p *Plan) Profile(network string) (NetworkProfile, bool) {
	for _, f := range p.feeds {
		if f.profile.Name == network {
			return f.profile, true
		}
	}
	return NetworkProfile{}, false
}

// Start is the first request time of the plan.
func (p *Plan) Start() time.Time { return p.cfg.Start }

// DirectoryCSV is the organisation directory of the plan's networks in the
// format chstore.ParseOrganizations reads (identifier,org_id,name,type,
// developer,networks): every requester and responder facility. Responders
// with a profile carry its name and developer; the others, and the
// requesters, get a name derived from their facility and their org's
// developer (none for the requesters of most networks).
func (p *Plan) DirectoryCSV() ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"identifier", "org_id", "name", "type", "developer", "networks"})
	for _, f := range p.feeds {
		prof := f.profile
		for _, o := range prof.Requesters {
			_ = w.Write([]string{o.Facility, strings.ToLower(o.Facility), prof.Name + " clinic " + o.Facility[len(o.Facility)-2:], "provider", o.Developer, prof.Name})
		}
		for _, o := range prof.Responders {
			row := []string{o.Facility, strings.ToLower(o.Facility), prof.Name + " hospital " + o.Facility[len(o.Facility)-2:], "provider", o.Developer, prof.Name}
			for _, r := range prof.ResponderProfiles {
				if r.Facility == o.Facility {
					row[1], row[2], row[4] = r.OrgID, r.Name, r.Developer
				}
			}
			_ = w.Write(row)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("simulator.DirectoryCSV: %w", err)
	}
	return buf.Bytes(), nil
}

var behaviours = []string{BehaviourClean, BehaviourOccasional, BehaviourRepeatOffender, BehaviourExceptionOveruser, BehaviourSlow, BehaviourLowVolume, BehaviourImproving, BehaviourWorsening, BehaviourDiscriminating}

func validateResponders(where string, n NetworkProfile) []error {
	var errs []error
	seen := map[string]bool{}
	for i, r := range n.ResponderProfiles {
		at := fmt.Sprintf("%s.ResponderProfiles[%d]", where, i)
		if !slices.ContainsFunc(n.Responders, func(o Org) bool { return o.Facility == r.Facility }) {
			errs = append(errs, fmt.Errorf("%s.Facility: %q is not one of the network's responders", at, r.Facility))
		}
		if seen[r.Facility] {
			errs = append(errs, fmt.Errorf("%s.Facility: %q has two profiles", at, r.Facility))
		}
		seen[r.Facility] = true
		if r.Weight <= 0 {
			errs = append(errs, fmt.Errorf("%s.Weight: %g is not positive", at, r.Weight))
		}
		if !slices.Contains(behaviours, r.Behaviour) {
			errs = append(errs, fmt.Errorf("%s.Behaviour: %q, want one of %v", at, r.Behaviour, behaviours))
		}
		for _, mix := range [][]ClassWeight{r.Mix, r.BadMix} {
			var sum float64
			for _, w := range mix {
				if !slices.Contains(classOrder[:], w.Class) || w.Weight < 0 {
					errs = append(errs, fmt.Errorf("%s: bad class weight %s=%g", at, w.Class, w.Weight))
				}
				sum += w.Weight
			}
			if len(mix) > 0 && sum <= 0 {
				errs = append(errs, fmt.Errorf("%s: mix weights sum to %g", at, sum))
			}
		}
		if len(r.Mix) == 0 {
			errs = append(errs, fmt.Errorf("%s.Mix: empty", at))
		}
		for _, code := range r.Exceptions {
			if _, ok := exceptionNames[code]; !ok {
				errs = append(errs, fmt.Errorf("%s.Exceptions: %q is not a DOMAIN.md exception", at, code))
			}
		}
		errs = append(errs, validateDiscrimination(at, n, r.Discrimination)...)
		if r.Latency != nil && (r.Latency.MedianMs <= 0 || r.Latency.Sigma < 0) {
			errs = append(errs, fmt.Errorf("%s.Latency: median must be positive, sigma not negative", at))
		}
	}
	return errs
}
