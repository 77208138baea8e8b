package simulator

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// BehaviourDiscriminating refuses requesters of one EHR developer far more
// often than everyone else (ResponderProfile.Discrimination).
const BehaviourDiscriminating = "discriminating"

// Discrimination makes a responder refuse without reason
// (refused_unjustified) the requests of requesters whose EHR developer
// (Org.Developer, the directory's developer column) is Developer in a
// share Rate of them, and every other requester's in a share OtherRate:
// its class mix with refused_unjustified set to the share and the other
// classes scaled to fill the rest. No random draw is added, so a plan
// without it is the same as before it existed.
type Discrimination struct {
	Developer string  `json:"developer"`
	Rate      float64 `json:"rate"`
	OtherRate float64 `json:"other_rate"`
}

// RefusalRate is the refused_unjustified share the responder applies to a
// requester of the developer.
func (d Discrimination) RefusalRate(developer string) float64 {
	if developer == d.Developer {
		return d.Rate
	}
	return d.OtherRate
}

// mixFor is the responder's class mix at time at for a request from
// requester: mixAt, with refused_unjustified at the share its
// Discrimination gives the requester's developer, when it has one.
func (r *ResponderProfile) mixFor(start, at time.Time, requester Org) []ClassWeight {
	mix := r.mixAt(start, at)
	if r.Discrimination == nil {
		return mix
	}
	return withShare(mix, RefusedUnjustified, r.Discrimination.RefusalRate(requester.Developer))
}

// withShare returns mix (normalised) with class at probability share and
// every other class scaled so that the weights sum to 1.
func withShare(mix []ClassWeight, class string, share float64) []ClassWeight {
	var others float64
	for _, w := range mix {
		if w.Class != class {
			others += w.Weight
		}
	}
	out := make([]ClassWeight, 0, len(mix)+1)
	for _, w := range mix {
		if w.Class != class && others > 0 {
			out = append(out, ClassWeight{w.Class, w.Weight / others * (1 - share)})
		}
	}
	return append(out, ClassWeight{class, share})
}

// DiscriminatingNetworks returns BehaviourNetworks' three networks with
// six requesters each, two per EHR developer (in turn from the network's
// first), and an eighth responder, BehaviourDiscriminating: the clean mix
// but refused_unjustified at 20% of the requests from requesters of "Acme
// EHR" and 1% of everyone else's. Its other seven responders treat every
// requester alike (the repeat offender refuses 10% of everyone).
func DiscriminatingNetworks() []NetworkProfile {
	nets := BehaviourNetworks()
	for ni := range nets {
		p := &nets[ni]
		p.Requesters = withDevelopers(orgs(p.Code, "CLINIC", "CLINIC_EHR", 6), ni)
		p.Responders = append(p.Responders, orgs(p.Code, "HOSP", "HOSP_EHR", 8)[7])
		fac := p.Responders[7].Facility
		p.ResponderProfiles = append(p.ResponderProfiles, ResponderProfile{
			Facility: fac, OrgID: strings.ToLower(fac), Behaviour: BehaviourDiscriminating, Weight: 1, Mix: cleanMix,
			Name:           fmt.Sprintf("%s Hospital %02d", strings.ToUpper(p.Name[:1])+p.Name[1:], 8),
			Developer:      developers[(ni+7)%len(developers)],
			Discrimination: &Discrimination{Developer: developers[0], Rate: 0.20, OtherRate: 0.01},
		})
	}
	return nets
}

// validateDiscrimination checks a responder's Discrimination: shares in
// [0, 1) and a developer that some requester of the network has.
func validateDiscrimination(at string, n NetworkProfile, d *Discrimination) []error {
	if d == nil {
		return nil
	}
	var errs []error
	if d.Rate < 0 || d.Rate >= 1 || d.OtherRate < 0 || d.OtherRate >= 1 {
		errs = append(errs, fmt.Errorf("%s.Discrimination: rates %g, %g: want each in [0, 1)", at, d.Rate, d.OtherRate))
	}
	if !slices.ContainsFunc(n.Requesters, func(o Org) bool { return o.Developer == d.Developer }) {
		errs = append(errs, fmt.Errorf("%s.Discrimination.Developer: %q is no requester's developer", at, d.Developer))
	}
	return errs
}
