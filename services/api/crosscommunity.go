package api

import (
	"fmt"
	"time"
)

// crossCommunityWindow is how long after the patient discovery that found
// a patient its documents may come before the responder counts as having
// found the patient but returned nothing. Gateways run discovery, query
// and retrieve in one session, seconds to minutes apart; a week leaves
// room for retries, deferred answers and a weekend.
const crossCommunityWindow = 7 * 24 * time.Hour

// party names one side of a cross-community transaction: its home
// community id when the records carry one, else its organisation.
func party(community, org string) string {
	if community != "" {
		return community
	}
	return org
}

// xcPair is a requester and a responder of cross-community transactions.
type xcPair struct{ requester, responder string }

// crossCommunityEpisodes finds a journey's cross-community journeys:
// patient discovery → document query → document retrieve between the same
// requester and responder for this patient (the journey is one patient's).
// Each pair's transactions are judged on their own, in time order.
func crossCommunityEpisodes(journey []Outcome, now time.Time) []Episode {
	byPair := map[xcPair][]Outcome{}
	var pairs []xcPair
	for _, o := range journey {
		switch o.RequestKind {
		case kindPatientDiscovery, kindDocumentQuery, kindDocumentRetrieve:
		default:
			continue
		}
		if o.Class == "orphan" || !isCrossCommunity(o) {
			continue
		}
		k := xcPair{party(o.RequesterCommunity, o.RequesterOrg), party(o.ResponderCommunity, o.ResponderOrg)}
		if _, ok := byPair[k]; !ok {
			pairs = append(pairs, k)
		}
		byPair[k] = append(byPair[k], o)
	}
	var out []Episode
	for _, k := range pairs {
		out = append(out, pairJourneys(k, byPair[k], now)...)
	}
	return out
}

// pairJourneys walks one pair's transactions in time order. A journey
// opens at a patient discovery that found the patient and takes every
// transaction of the pair in the crossCommunityWindow after it; a retrieve
// that returns documents ends it. What lies outside a journey (a query
// with no discovery before it, a discovery that found nobody) is left to
// the rule of unfulfilled requests.
func pairJourneys(k xcPair, txs []Outcome, now time.Time) []Episode {
	var (
		out       []Episode
		cur       *episodeBuilder
		retrieved bool
	)
	closeJourney := func() {
		if cur != nil {
			out = append(out, judgeJourney(cur.done(), retrieved, now))
		}
		cur, retrieved = nil, false
	}
	window := crossCommunityWindow.Milliseconds()
	for _, o := range txs {
		if cur != nil && (retrieved || o.RequestedAtMs > cur.ep.FromMs+window) {
			closeJourney()
		}
		if cur == nil {
			if o.RequestKind != kindPatientDiscovery || !fulfilledClass(o.Class) {
				continue
			}
			cur = newEpisodeBuilder(o.RequestedAtMs)
			cur.ep.Requester, cur.ep.Responder = k.requester, k.responder
		}
		cur.add(o)
		retrieved = retrieved || (o.RequestKind == kindDocumentRetrieve && fulfilledClass(o.Class))
	}
	closeJourney()
	return out
}

// judgeJourney flags a cross-community journey whose responder found the
// patient and was then asked for documents (a query or a retrieve), none
// of which came within the window: at least one of those requests went
// unfulfilled (a cancelled one is the requester's doing and does not
// count) and no retrieve returned a document. A journey whose window is
// still open is not judged yet.
func judgeJourney(e Episode, retrieved bool, now time.Time) Episode {
	var queries, retrieves, failed int
	for _, st := range e.Steps {
		if st.RequestKind == kindPatientDiscovery {
			continue
		}
		if st.RequestKind == kindDocumentQuery {
			queries++
		} else {
			retrieves++
		}
		if !fulfilledClass(st.Class) && st.Class != "cancelled" {
			failed++
		}
	}
	closes := time.UnixMilli(e.FromMs).Add(crossCommunityWindow)
	switch {
	case retrieved:
		e.Why = fmt.Sprintf("patient found; documents retrieved %s later", time.Duration(e.ToMs-e.FromMs)*time.Millisecond)
	case queries+retrieves == 0:
		e.Why = "patient found; no documents asked for"
	case failed == 0:
		e.Why = fmt.Sprintf("patient found; no document request failed (%d quer(ies), %d retrieve(s))", queries, retrieves)
	case now.Before(closes):
		e.Why = fmt.Sprintf("patient found; %d of %d document request(s) without documents so far; judged when the window closes at %s",
			failed, queries+retrieves, closes.UTC().Format(time.RFC3339))
	default:
		e.Runaround, e.Kind = true, KindFoundNoDocuments
		e.Why = fmt.Sprintf("%s found the patient but returned no document within %d days: %d document quer(ies) and %d retrieve(s), %d without documents",
			e.Responder, int(crossCommunityWindow/(24*time.Hour)), queries, retrieves, failed)
	}
	return e
}
