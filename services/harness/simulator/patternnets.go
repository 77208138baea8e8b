package simulator

import (
	"fmt"
	"slices"
	"strings"
)

// Behaviours whose mix changes month after month (ResponderProfile.DriftPerMonth).
const (
	// BehaviourImproving starts as a repeat offender and improves: its
	// suspect classes shrink by 30% of their first weight a month.
	BehaviourImproving = "improving"
	// BehaviourWorsening starts clean and gets worse: its suspect classes
	// grow by 120% of their first weight a month.
	BehaviourWorsening = "worsening"
)

// HL7v2Patterns are the HL7 v2 patterns' shares in PatternNetworks.
func HL7v2Patterns() []PatternWeight {
	return []PatternWeight{
		{PatternQBP, 0.30}, {PatternQ23, 0.05}, {PatternDSC, 0.05}, {PatternQRYA19, 0.08}, {PatternQRYT12, 0.10},
		{PatternREF, 0.12}, {PatternORM, 0.15}, {PatternOML, 0.15},
	}
}

// FHIRPatterns are the FHIR patterns' shares in PatternNetworks.
func FHIRPatterns() []PatternWeight {
	return []PatternWeight{
		{PatternTask, 0.20}, {PatternSubscription, 0.10}, {PatternMessage, 0.25}, {PatternBatch, 0.20}, {PatternTxn, 0.10}, {PatternAudit, 0.15},
	}
}

// PatternNetworks returns BehaviourNetworks' three HL7 v2 networks
// speaking every HL7 v2 pattern, each with an eighth responder that
// improves and its second clean one turned worsening, and a FHIR network,
// lakeshore, speaking every FHIR pattern. Every mix also has partial
// answers and cancels (1% each) where the pattern can say them.
func PatternNetworks() []NetworkProfile {
	nets := BehaviourNetworks()
	for ni := range nets {
		p := &nets[ni]
		p.Patterns = HL7v2Patterns()
		p.Responders = orgs(p.Code, "HOSP", "HOSP_EHR", 8)
		worse := &p.ResponderProfiles[1]
		worse.Behaviour, worse.DriftPerMonth = BehaviourWorsening, 1.2
		fac := p.Responders[7].Facility
		p.ResponderProfiles = append(p.ResponderProfiles, ResponderProfile{
			Facility: fac, OrgID: strings.ToLower(fac), Behaviour: BehaviourImproving, Weight: 1, Mix: offenderMix,
			Name:      fmt.Sprintf("%s Hospital %02d", strings.ToUpper(p.Name[:1])+p.Name[1:], 8),
			Developer: developers[(ni+7)%len(developers)], DriftPerMonth: -0.3,
		})
		withPartialAndCancel(p)
	}
	return append(nets, lakeshore())
}

// lakeshore is the FHIR network: six responders (clean ×2, a repeat
// offender, an exception over-user citing 171.202, one improving, one
// worsening) answering Tasks, messages, batches, transactions, and
// auditing REST exchanges.
func lakeshore() NetworkProfile {
	p := NetworkProfile{
		Name: "lakeshore", Code: "LS", Share: 0.30, Format: FormatFHIR, Patterns: FHIRPatterns(),
		Requesters: orgs("LS", "CLINIC", "CLINIC_EHR", 3),
		Responders: withDevelopers(orgs("LS", "HOSP", "HOSP_EHR", 6), 1),
		Mix:        cleanMix, Exceptions: []string{"171.202", "171.204", "171.205"}, ExceptionTextShare: 0.3,
		Latency: LogNormal{MedianMs: 2000, Sigma: 0.7}, LateBeyondShare: 0.3,
	}
	kinds := []struct {
		behaviour string
		mix       []ClassWeight
		drift     float64
	}{
		{BehaviourClean, cleanMix, 0}, {BehaviourClean, cleanMix, 0}, {BehaviourRepeatOffender, offenderMix, 0},
		{BehaviourExceptionOveruser, overuserMix, 0}, {BehaviourImproving, offenderMix, -0.3}, {BehaviourWorsening, cleanMix, 1.2},
	}
	for i, k := range kinds {
		fac := p.Responders[i].Facility
		r := ResponderProfile{
			Facility: fac, OrgID: strings.ToLower(fac), Behaviour: k.behaviour, Weight: 1, Mix: k.mix,
			Name: fmt.Sprintf("Lakeshore Hospital %02d", i+1), Developer: p.Responders[i].Developer, DriftPerMonth: k.drift,
		}
		if k.behaviour == BehaviourExceptionOveruser {
			r.Exceptions = []string{"171.202"}
		}
		p.ResponderProfiles = append(p.ResponderProfiles, r)
	}
	withPartialAndCancel(&p)
	return p
}

// withPartialAndCancel adds partial answers and cancels (1% each) to every
// mix of the network.
func withPartialAndCancel(p *NetworkProfile) {
	add := func(mix []ClassWeight) []ClassWeight {
		if len(mix) == 0 {
			return mix
		}
		return append(slices.Clone(mix), ClassWeight{Partial, 0.01}, ClassWeight{Cancelled, 0.01})
	}
	p.Mix = add(p.Mix)
	for i := range p.ResponderProfiles {
		r := &p.ResponderProfiles[i]
		r.Mix, r.BadMix = add(r.Mix), add(r.BadMix)
	}
}
