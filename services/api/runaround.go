package api

import (
	"fmt"
	"sort"
	"time"
)

// RunaroundRuleVersion names the rules below; journeys print it.
const RunaroundRuleVersion = "runaround/2"

// Runaround rules: a patient's requests, in time order, form an episode
// while none of them is fulfilled and no two follow each other more than
// runaroundMaxGap apart. An episode is a runaround when the record was
// asked for at least runaroundMinRequests times without fulfilment, or the
// requester was redirected at least runaroundMinRedirects times (sent from
// channel to channel: portal, fax, another organisation).
//
// Finding the patient (a patient discovery answered) or the list of its
// documents (a document query answered) is a step towards the record, not
// the record: such a step neither counts as a request without fulfilment
// nor ends an episode. What follows it is judged by the cross-community
// rule (crossCommunityEpisodes).
const (
	runaroundMinRequests  = 3
	runaroundMinRedirects = 2
	runaroundMaxGap       = 30 * 24 * time.Hour
)

// Runaround kinds: which rule flagged an episode.
const (
	KindRepeatedRequests = "repeated_requests" // asked for runaroundMinRequests times without fulfilment
	KindRedirects        = "redirects"         // sent from channel to channel
	// KindFoundNoDocuments: a responder found the patient (patient
	// discovery) but returned no document within crossCommunityWindow
	// although the requester asked (document query or retrieve).
	KindFoundNoDocuments = "found_no_documents"
)

// Request kinds of the IHE cross-community transactions (XCPD ITI-55,
// XCA ITI-38 and ITI-39), in the order a journey takes them.
const (
	kindPatientDiscovery = "patient_discovery"
	kindDocumentQuery    = "document_query"
	kindDocumentRetrieve = "document_retrieve"
)

// Episode is one stretch of a patient's requests without fulfilment, or
// one cross-community journey (discovery → query → retrieve between one
// requester and one responder).
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
	// Requester and Responder name the two parties of a cross-community
	// journey (home community ids where known, else organisations); ""
	// for the other episodes.
	Requester string `json:"requester"`
	Responder string `json:"responder"`
	// Steps are the episode's requests in time order: what shows it.
	Steps     []EpisodeStep `json:"steps"`
	Runaround bool          `json:"runaround"`
	Kind      string        `json:"kind"` // which rule flagged it; "" when none did
	Why       string        `json:"why"`
}

// EpisodeStep is one request of an episode.
type EpisodeStep struct {
	Chain         string `json:"chain"`
	RequestedAtMs int64  `json:"requested_at_ms"`
	RequestKind   string `json:"request_kind"`
	Responder     string `json:"responder"`
	Class         string `json:"outcome"`
	ExceptionCode string `json:"exception_code"`
}

func fulfilledClass(class string) bool {
	return class == "fulfilled" || class == "fulfilled_late" || class == "partial"
}

// towardsRecord reports whether o is a cross-community discovery that
// found the patient or query that listed its documents: answered, but
// not yet the record. (An HL7 v2 or FHIR document_query, QRY^T12 or a
// read of a DocumentReference or Binary, returns the document itself.)
func towardsRecord(o Outcome) bool {
	return isCrossCommunity(o) && (o.RequestKind == kindPatientDiscovery || o.RequestKind == kindDocumentQuery) && fulfilledClass(o.Class)
}

// isCrossCommunity reports whether o is an IHE cross-community transaction:
// its records name a gateway's side or a home community, or it is of a kind
// only those transactions have (a document_query may also be HL7 v2's
// QRY^T12 or a FHIR read).
func isCrossCommunity(o Outcome) bool {
	return o.Sides != "" || o.RequesterCommunity != "" || o.ResponderCommunity != "" ||
		o.RequestKind == kindPatientDiscovery || o.RequestKind == kindDocumentRetrieve
}

// detectRunarounds returns a journey's episodes (the journey sorted by
// requested_at), in the order they began: the stretches of unfulfilled
// requests, then the cross-community journeys, each flagged when a rule
// says it is a runaround. now decides whether a cross-community journey's
// window has closed.
func detectRunarounds(journey []Outcome, now time.Time) []Episode {
	out := append(unfulfilledEpisodes(journey), crossCommunityEpisodes(journey, now)...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].FromMs < out[j].FromMs })
	return out
}

// episodeBuilder gathers an episode's requests.
type episodeBuilder struct {
	ep          Episode
	nets, resps map[string]bool
	lastAtMs    int64
}

func newEpisodeBuilder(fromMs int64) *episodeBuilder {
	return &episodeBuilder{
		ep:   Episode{FromMs: fromMs, ToMs: fromMs, Classes: map[string]int{}, Channels: []string{}, Chains: []string{}, Steps: []EpisodeStep{}},
		nets: map[string]bool{}, resps: map[string]bool{},
	}
}

func (b *episodeBuilder) add(o Outcome) {
	b.lastAtMs = o.RequestedAtMs
	b.ep.ToMs = o.RequestedAtMs
	b.ep.Requests++
	b.ep.Classes[o.Class]++
	b.ep.Chains = append(b.ep.Chains, o.ID)
	b.ep.Steps = append(b.ep.Steps, EpisodeStep{Chain: o.ID, RequestedAtMs: o.RequestedAtMs, RequestKind: o.RequestKind,
		Responder: o.ResponderOrg, Class: o.Class, ExceptionCode: o.ExceptionCode})
	b.nets[o.Network] = true
	b.resps[o.ResponderOrg] = true
	if o.Class == "redirected" {
		b.ep.Redirects++
		ch := o.ExceptionCode
		if ch == "" {
			ch = "redirect"
		}
		b.ep.Channels = append(b.ep.Channels, ch)
	}
}

func (b *episodeBuilder) done() Episode {
	b.ep.Networks, b.ep.Responders = sortedKeys(b.nets), sortedKeys(b.resps)
	return b.ep
}

// unfulfilledEpisodes splits a journey into stretches of unfulfilled
// requests and flags the runarounds among them. Orphans are answers
// without a request and take no part.
func unfulfilledEpisodes(journey []Outcome) []Episode {
	var (
		out []Episode
		cur *episodeBuilder
	)
	closeEpisode := func() {
		if cur == nil {
			return
		}
		e := cur.done()
		switch {
		case e.Requests >= runaroundMinRequests:
			e.Runaround, e.Kind = true, KindRepeatedRequests
			e.Why = fmt.Sprintf("requested %d times across %d responder(s) without fulfilment", e.Requests, len(e.Responders))
		case e.Redirects >= runaroundMinRedirects:
			e.Runaround, e.Kind = true, KindRedirects
			e.Why = fmt.Sprintf("redirected %d times from channel to channel", e.Redirects)
		default:
			e.Why = fmt.Sprintf("%d unfulfilled request(s): below %d requests and %d redirects", e.Requests, runaroundMinRequests, runaroundMinRedirects)
		}
		out = append(out, e)
		cur = nil
	}
	for _, o := range journey {
		if o.Class == "orphan" || towardsRecord(o) {
			continue
		}
		if fulfilledClass(o.Class) {
			closeEpisode()
			continue
		}
		if cur != nil && time.Duration(o.RequestedAtMs-cur.lastAtMs)*time.Millisecond > runaroundMaxGap {
			closeEpisode()
		}
		if cur == nil {
			cur = newEpisodeBuilder(o.RequestedAtMs)
		}
		cur.add(o)
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
