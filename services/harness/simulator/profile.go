// Package simulator generates the traffic of health information networks
// whose behaviour is known in advance — HL7 v2 over MLLP, and the IHE
// cross-community gateways' ATNA audits over syslog-TLS and SOAP copies
// over HTTP — writes that behaviour down as ground truth, and sends the
// traffic so that every figure hinscore computes can be checked against
// what really happened.
package simulator

import "time"

// Outcome class names, exactly as DOMAIN.md spells them (Partial and
// Cancelled are with the patterns that say them). The simulator never
// produces orphan.
const (
	Fulfilled          = "fulfilled"
	FulfilledLate      = "fulfilled_late"
	NotFound           = "not_found"
	RefusedException   = "refused_exception"
	RefusedUnjustified = "refused_unjustified"
	Redirected         = "redirected"
	ErrorTransient     = "error_transient"
	ErrorPermanent     = "error_permanent"
	Unanswered         = "unanswered"
)

// classOrder is every class the simulator draws, in the order reports print them.
var classOrder = [...]string{
	Fulfilled, FulfilledLate, NotFound, RefusedException, RefusedUnjustified,
	Redirected, ErrorTransient, ErrorPermanent, Unanswered, Partial, Cancelled,
}

// Classes returns the outcome classes the simulator can produce.
func Classes() []string { return append([]string(nil), classOrder[:]...) }

// Policy times the linker applies to patient queries (DOMAIN.md defaults);
// the simulator keeps its latencies clear of these boundaries so that every
// request's class is unambiguous.
const (
	QuerySLA       = 60 * time.Second
	QueryGrace     = 30 * time.Second
	LinkerLateness = 30 * time.Second
)

// Org is one organisation on a network: MSH-3 application and MSH-4
// facility (an HL7 HD namespace id).
type Org struct {
	App      string `json:"app"`
	Facility string `json:"facility"`
	// Developer is the EHR vendor whose system answers for the facility
	// (the directory's developer column); empty when unknown.
	Developer string `json:"developer,omitempty"`
}

// The EHR vendors of the simulated responders; they cut across networks.
var developers = []string{"Acme EHR", "Borealis Health IT", "Cedar Systems"}

// withDevelopers gives each org a developer, in turn from the first'th.
func withDevelopers(list []Org, first int) []Org {
	for i := range list {
		list[i].Developer = developers[(first+i)%len(developers)]
	}
	return list
}

// ClassWeight is the probability that a request ends in Class.
type ClassWeight struct {
	Class  string  `json:"class"`
	Weight float64 `json:"weight"`
}

// LogNormal is a latency distribution given by its median and the standard
// deviation of its logarithm (larger sigma = heavier tail).
type LogNormal struct {
	MedianMs float64 `json:"median_ms"`
	Sigma    float64 `json:"sigma"`
}

// NetworkProfile is one network's organisations and behaviour.
type NetworkProfile struct {
	Name string `json:"name"`
	// Code prefixes the network's control ids and patient authority.
	Code string `json:"code"`
	// Share is the network's relative share of all requests.
	Share      float64 `json:"share"`
	Requesters []Org   `json:"requesters"`
	Responders []Org   `json:"responders"`
	// Mix gives each outcome class its probability; weights are normalised.
	Mix []ClassWeight `json:"mix"`
	// Exceptions are the 45 CFR 171 codes refusals cite, drawn uniformly.
	Exceptions []string `json:"exceptions"`
	// ExceptionTextShare is the share of refused_exception answers that cite
	// the exception only in ERR-8 free text, not as a coded ERR-5.
	ExceptionTextShare float64 `json:"exception_text_share"`
	// Latency is the answer time of every answered request that is not late.
	Latency LogNormal `json:"latency"`
	// LateBeyondShare is the share of fulfilled_late answers that arrive
	// after SLA + grace + linker lateness, i.e. after the linker has already
	// reported the request unanswered.
	LateBeyondShare float64 `json:"late_beyond_share"`
	// DriftPerMonth changes the network's behaviour over the months: the
	// weights of its suspect classes (refused_unjustified, redirected,
	// unanswered) are scaled by 1 + DriftPerMonth × months since Start.
	// Negative = a network that improves, positive = one that gets worse.
	DriftPerMonth float64 `json:"drift_per_month"`
	// ResponderProfiles, when set, give each responder a behaviour of its
	// own (see ResponderProfile and BehaviourNetworks).
	ResponderProfiles []ResponderProfile `json:"responder_profiles,omitempty"`
	// Format is how the network's feed travels: FormatHL7v2 ("" too) over
	// MLLP, FormatFHIR over HTTP.
	Format string `json:"format,omitempty"`
	// Patterns, when set, give each request a pattern drawn by weight
	// (PatternNetworks); none = patient queries (QBP^Q22) only.
	Patterns []PatternWeight `json:"patterns,omitempty"`
}

// fhir reports whether the network's feed is FHIR.
func (p NetworkProfile) fhir() bool { return p.Format == FormatFHIR }

func orgs(code, kind, app string, n int) []Org {
	out := make([]Org, n)
	for i := range out {
		out[i] = Org{App: code + "_" + app, Facility: code + "_" + kind + "_" + twoDigits(i+1)}
	}
	return out
}

func twoDigits(n int) string { return string([]byte{byte('0' + n/10%10), byte('0' + n%10)}) }

// DefaultNetworks returns three networks with clearly different behaviour:
// northstar mostly fulfils fast, bayview refuses and redirects a lot but
// improves month after month, prairie leaves many requests unanswered,
// answers slowly and gets worse.
func DefaultNetworks() []NetworkProfile {
	return []NetworkProfile{
		{
			Name: "northstar", Code: "NS", Share: 0.40,
			Requesters: orgs("NS", "CLINIC", "CLINIC_EHR", 4),
			Responders: withDevelopers(orgs("NS", "HOSP", "HOSP_EHR", 3), 0),
			Mix: []ClassWeight{
				{Fulfilled, 0.855}, {FulfilledLate, 0.015}, {NotFound, 0.07},
				{RefusedException, 0.02}, {RefusedUnjustified, 0.01}, {Redirected, 0.005},
				{ErrorTransient, 0.004}, {ErrorPermanent, 0.001}, {Unanswered, 0.02},
			},
			Exceptions:         []string{"171.202", "171.203", "171.205"},
			ExceptionTextShare: 0.25,
			Latency:            LogNormal{MedianMs: 1200, Sigma: 0.6},
			LateBeyondShare:    0.3,
		},
		{
			Name: "bayview", Code: "BV", Share: 0.35,
			Requesters: orgs("BV", "CLINIC", "CLINIC_EHR", 3),
			Responders: withDevelopers(orgs("BV", "HOSP", "HOSP_EHR", 2), 1),
			Mix: []ClassWeight{
				{Fulfilled, 0.64}, {FulfilledLate, 0.02}, {NotFound, 0.08},
				{RefusedException, 0.06}, {RefusedUnjustified, 0.12}, {Redirected, 0.04},
				{ErrorTransient, 0.01}, {ErrorPermanent, 0.005}, {Unanswered, 0.025},
			},
			Exceptions: []string{
				"171.201", "171.202", "171.203", "171.204", "171.205",
				"171.206", "171.301", "171.302", "171.303", "171.403",
			},
			ExceptionTextShare: 0.3,
			Latency:            LogNormal{MedianMs: 3000, Sigma: 0.8},
			LateBeyondShare:    0.3,
			DriftPerMonth:      -0.15,
		},
		{
			Name: "prairie", Code: "PR", Share: 0.25,
			Requesters: orgs("PR", "CLINIC", "CLINIC_EHR", 3),
			Responders: withDevelopers(orgs("PR", "HOSP", "HOSP_EHR", 4), 2),
			Mix: []ClassWeight{
				{Fulfilled, 0.66}, {FulfilledLate, 0.08}, {NotFound, 0.09},
				{RefusedException, 0.02}, {RefusedUnjustified, 0.02}, {Redirected, 0.01},
				{ErrorTransient, 0.015}, {ErrorPermanent, 0.005}, {Unanswered, 0.10},
			},
			Exceptions:         []string{"171.204", "171.205"},
			ExceptionTextShare: 0.3,
			Latency:            LogNormal{MedianMs: 12000, Sigma: 1.1},
			LateBeyondShare:    0.4,
			DriftPerMonth:      0.25,
		},
	}
}

// exceptionNames gives the text of each DOMAIN.md exception code.
var exceptionNames = map[string]string{
	"171.201": "preventing harm",
	"171.202": "privacy",
	"171.203": "security",
	"171.204": "infeasibility",
	"171.205": "health IT performance",
	"171.206": "protecting care access",
	"171.301": "manner",
	"171.302": "fees",
	"171.303": "licensing",
	"171.403": "TEFCA manner",
}
