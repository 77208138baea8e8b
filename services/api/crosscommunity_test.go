package api

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// xc is one cross-community transaction of a test journey: kind, class,
// responder community, minutes after the start.
func xc(id, kind, class, responder string, atMin int64) Outcome {
	return Outcome{ID: id, Network: "qhin", RequestKind: kind, Class: class, RequesterOrg: "gw-clinic", ResponderOrg: "gw-" + responder,
		RequesterCommunity: "urn:oid:1.2.3", ResponderCommunity: "urn:oid:" + responder, RequestedAtMs: atMin * 60000}
}

// hl7DocumentQuery is an HL7 v2 QRY^T12 to the responder gw-9 (the
// organisation of community 9's gateway): the same request kind as XCA's
// query, but no cross-community transaction.
func hl7DocumentQuery(id, class string, atMin int64) Outcome {
	o := out(id, class, "bayview", "gw-9", atMin, "")
	o.RequestKind, o.RequesterOrg = kindDocumentQuery, "gw-clinic"
	return o
}

// orgsOnly is a cross-community transaction whose records carry no home
// community ids.
func orgsOnly(o Outcome) Outcome {
	o.RequesterCommunity, o.ResponderCommunity, o.Sides = "", "", "both"
	return o
}

// kindOnly is a cross-community transaction whose records name neither a
// side nor a home community.
func kindOnly(o Outcome) Outcome {
	o.RequesterCommunity, o.ResponderCommunity, o.Sides = "", "", ""
	return o
}

func TestCrossCommunityRunarounds(t *testing.T) {
	const (
		pd, dq, dr = kindPatientDiscovery, kindDocumentQuery, kindDocumentRetrieve
		day        = 24 * 60
	)
	closed := time.UnixMilli(30 * day * 60000) // every window below has closed
	type want struct {
		chains    []string
		runaround bool
		why       string // a part of Why
	}
	tests := []struct {
		name    string
		journey []Outcome
		now     time.Time
		want    []want
	}{
		{"documents returned", []Outcome{xc("d", pd, "fulfilled", "9", 0), xc("q", dq, "fulfilled", "9", 1), xc("r", dr, "fulfilled", "9", 2)}, closed,
			[]want{{[]string{"d", "q", "r"}, false, "documents retrieved 2m0s later"}}},
		{"query finds nothing for a found patient", []Outcome{xc("d", pd, "fulfilled", "9", 0), xc("q", dq, "not_found", "9", 1)}, closed,
			[]want{{[]string{"d", "q"}, true, "urn:oid:9 found the patient but returned no document within 7 days: 1 document quer(ies) and 0 retrieve(s), 1 without documents"}}},
		{"retrieve refused after the list", []Outcome{xc("d", pd, "fulfilled", "9", 0), xc("q", dq, "fulfilled", "9", 1), xc("r", dr, "refused_unjustified", "9", 2), xc("r2", dr, "error_transient", "9", 60)}, closed,
			[]want{{[]string{"d", "q", "r", "r2"}, true, "1 document quer(ies) and 2 retrieve(s), 2 without documents"}}},
		{"window still open", []Outcome{xc("d", pd, "fulfilled", "9", 0), xc("q", dq, "refused_unjustified", "9", 1)}, time.UnixMilli(2 * day * 60000),
			[]want{{[]string{"d", "q"}, false, "judged when the window closes at 1970-01-08T00:00:00Z"}}},
		{"found, nothing asked", []Outcome{xc("d", pd, "fulfilled", "9", 0)}, closed,
			[]want{{[]string{"d"}, false, "no documents asked for"}}},
		{"list only, no retrieve asked", []Outcome{xc("d", pd, "partial", "9", 0), xc("q", dq, "fulfilled", "9", 1)}, closed,
			[]want{{[]string{"d", "q"}, false, "no document request failed (1 quer(ies), 0 retrieve(s))"}}},
		{"cancelled by the requester", []Outcome{xc("d", pd, "fulfilled", "9", 0), xc("q", dq, "cancelled", "9", 1)}, closed,
			[]want{{[]string{"d", "q"}, false, "no document request failed"}}},
		{"documents after the window", []Outcome{xc("d", pd, "fulfilled", "9", 0), xc("q", dq, "unanswered", "9", 1), xc("r", dr, "fulfilled", "9", 8*day)}, closed,
			[]want{{[]string{"d", "q"}, true, "found the patient but returned no document within 7 days"}}},
		{"two responders judged apart", []Outcome{xc("d1", pd, "fulfilled", "1", 0), xc("d2", pd, "fulfilled", "2", 0), xc("q1", dq, "fulfilled", "1", 1),
			xc("q2", dq, "error_transient", "2", 1), xc("r1", dr, "fulfilled", "1", 2), xc("q2b", dq, "error_transient", "2", 3)}, closed,
			[]want{{[]string{"d1", "q1", "r1"}, false, "documents retrieved"}, {[]string{"d2", "q2", "q2b"}, true, "urn:oid:2 found the patient"}}},
		{"no discovery, no journey", []Outcome{xc("q", dq, "refused_unjustified", "9", 0), xc("r", dr, "refused_unjustified", "9", 1)}, closed, nil},
		{"discovery finds nobody", []Outcome{xc("d", pd, "not_found", "9", 0), xc("q", dq, "refused_unjustified", "9", 1)}, closed, nil},
		{"a later discovery opens a new journey", []Outcome{xc("d", pd, "fulfilled", "9", 0), xc("r", dr, "fulfilled", "9", 1),
			xc("d2", pd, "fulfilled", "9", 10*day), xc("q2", dq, "refused_unjustified", "9", 10*day+1)}, time.UnixMilli(20 * day * 60000),
			[]want{{[]string{"d", "r"}, false, "documents retrieved"}, {[]string{"d2", "q2"}, true, "found the patient"}}},
		// Records without home communities name the parties by organisation,
		// as the HL7 v2 query does: it still takes no part.
		{"an HL7 v2 document query is no cross-community transaction", []Outcome{orgsOnly(xc("d", pd, "fulfilled", "9", 0)),
			hl7DocumentQuery("t12", "refused_unjustified", 1), orgsOnly(xc("r", dr, "fulfilled", "9", 2))}, closed,
			[]want{{[]string{"d", "r"}, false, "documents retrieved"}}},
		{"discovery and retrieve are cross-community by their kind", []Outcome{kindOnly(xc("d", pd, "fulfilled", "9", 0)),
			hl7DocumentQuery("t12", "fulfilled", 1), kindOnly(xc("r", dr, "refused_unjustified", "9", 2))}, closed,
			[]want{{[]string{"d", "r"}, true, "gw-9 found the patient but returned no document within 7 days: 0 document quer(ies) and 1 retrieve(s)"}}},
		{"orphans take no part", []Outcome{xc("d", pd, "fulfilled", "9", 0), xc("o", dq, "orphan", "9", 1)}, closed,
			[]want{{[]string{"d"}, false, "no documents asked for"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eps := crossCommunityEpisodes(tc.journey, tc.now)
			if len(eps) != len(tc.want) {
				t.Fatalf("%d journeys, want %d: %+v", len(eps), len(tc.want), eps)
			}
			for i, e := range eps {
				w := tc.want[i]
				if !slices.Equal(e.Chains, w.chains) || e.Runaround != w.runaround || !strings.Contains(e.Why, w.why) {
					t.Errorf("journey %d: chains %v runaround %v why %q; want %v %v %q", i, e.Chains, e.Runaround, e.Why, w.chains, w.runaround, w.why)
				}
				if wantKind := map[bool]string{true: KindFoundNoDocuments}[w.runaround]; e.Kind != wantKind {
					t.Errorf("journey %d: kind %q, want %q", i, e.Kind, wantKind)
				}
				if (e.Requester != "urn:oid:1.2.3" && e.Requester != "gw-clinic") || len(e.Steps) != len(e.Chains) || e.Steps[0].RequestKind != pd || e.FromMs != e.Steps[0].RequestedAtMs {
					t.Errorf("journey %d: requester %q, steps %+v", i, e.Requester, e.Steps)
				}
			}
		})
	}
}

// TestRunaroundKindsTogether checks how the two rules share a journey:
// finding the patient or the list of its documents is no fulfilment, so
// the refused retrieves after it still make an episode of unfulfilled
// requests, and the cross-community journey is flagged on its own.
func TestRunaroundKindsTogether(t *testing.T) {
	const day = 24 * 60
	j := []Outcome{
		xc("d", kindPatientDiscovery, "fulfilled", "9", 0),
		xc("q", kindDocumentQuery, "fulfilled", "9", 1),
		xc("r1", kindDocumentRetrieve, "refused_unjustified", "9", 2),
		xc("r2", kindDocumentRetrieve, "redirected", "9", 3),
		xc("r3", kindDocumentRetrieve, "unanswered", "9", 4),
		out("h", "fulfilled", "bayview", "HOSP", 5, ""),
	}
	eps := detectRunarounds(j, time.UnixMilli(10*day*60000))
	if len(eps) != 2 {
		t.Fatalf("%d episodes, want 2: %+v", len(eps), eps)
	}
	// Both begin at minute 0 and 2: the cross-community journey first.
	xcj, un := eps[0], eps[1]
	if xcj.Kind != KindFoundNoDocuments || !slices.Equal(xcj.Chains, []string{"d", "q", "r1", "r2", "r3"}) || xcj.Responder != "urn:oid:9" ||
		xcj.Redirects != 1 || xcj.Classes["fulfilled"] != 2 || !slices.Equal(xcj.Networks, []string{"qhin"}) {
		t.Errorf("cross-community episode %+v", xcj)
	}
	if un.Kind != KindRepeatedRequests || !slices.Equal(un.Chains, []string{"r1", "r2", "r3"}) || un.Requester != "" {
		t.Errorf("unfulfilled episode %+v", un)
	}
	// An HL7 v2 or FHIR document query (QRY^T12, a Binary read) returns the
	// document itself: fulfilled, it ends an episode.
	eps = detectRunarounds([]Outcome{hl7DocumentQuery("a", "refused_unjustified", 0), hl7DocumentQuery("b", "unanswered", 1),
		hl7DocumentQuery("c", "fulfilled", 2), hl7DocumentQuery("d", "not_found", 3)},
		time.UnixMilli(10*day*60000))
	if len(eps) != 2 || !slices.Equal(eps[0].Chains, []string{"a", "b"}) || !slices.Equal(eps[1].Chains, []string{"d"}) {
		t.Errorf("HL7 v2 document queries: %+v", eps)
	}
	// Discoveries that find nobody are requests without fulfilment.
	eps = detectRunarounds([]Outcome{xc("a", kindPatientDiscovery, "not_found", "1", 0), xc("b", kindPatientDiscovery, "not_found", "2", 1),
		xc("c", kindPatientDiscovery, "error_permanent", "3", 2)}, time.UnixMilli(10*day*60000))
	if len(eps) != 1 || eps[0].Kind != KindRepeatedRequests {
		t.Errorf("unfound discoveries: %+v", eps)
	}
}
