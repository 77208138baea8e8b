package toevent

import (
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/atna"
)

// TestVendorVariants: shapes gateways write the same records in, each a
// change to a testdata record, and what must come out of it.
func TestVendorVariants(t *testing.T) {
	cases := []struct {
		name, file string
		change     func(a *atna.Audit)
		check      func(t *testing.T, req *hinscorev1.ExchangeEvent)
	}{
		{"a vendor's type code first, the IHE one in lower case and FHIR's system", "iti55_responding.xml",
			func(a *atna.Audit) {
				a.Event.TypeCodes = []atna.Code{{Code: "XCPD-RESP", System: "ACME"}, {Code: "iti-55", System: "urn:ihe:event-type-code"}}
			},
			func(t *testing.T, req *hinscorev1.ExchangeEvent) {
				if req.RequestKind != KindPatientDiscovery || req.MessageType != "AuditMessage^110112^ITI-55" {
					t.Errorf("kind %q type %q", req.RequestKind, req.MessageType)
				}
			}},
		{"no AuditSourceIdentification: the process id decides", "iti55_initiating.xml",
			func(a *atna.Audit) { a.Source = atna.Source{} },
			wantSide(hinscorev1.Side_SIDE_INITIATING)},
		{"no process id, no audit source: the human requestor decides", "iti55_initiating.xml",
			func(a *atna.Audit) { a.Source, a.Participants[0].AlternativeUserID = atna.Source{}, "" },
			wantSide(hinscorev1.Side_SIDE_INITIATING)},
		{"the audit source names the responding gateway by its network access point", "iti55_responding.xml",
			func(a *atna.Audit) {
				a.Source.ID, a.Participants[1].AlternativeUserID = "XCPD.responder.example.com", ""
			},
			wantSide(hinscorev1.Side_SIDE_RESPONDING)},
		{"the audit source is the initiating gateway's host, though the responder has a process id", "iti55_responding.xml",
			func(a *atna.Audit) { a.Source.ID = "initiating.example.org" },
			wantSide(hinscorev1.Side_SIDE_INITIATING)},
		{"the site is the responding community, though the initiating participant has a process id", "iti55_responding.xml",
			func(a *atna.Audit) {
				a.Source = atna.Source{ID: "RESP-GW", EnterpriseSiteID: "urn:oid:1.2.3.4"}
				a.Participants[0].AlternativeUserID, a.Participants[1].AlternativeUserID = "3310", ""
			},
			wantSide(hinscorev1.Side_SIDE_RESPONDING)},
		{"the site is another community: the initiating gateway's, which becomes the requester's", "iti55_responding.xml",
			func(a *atna.Audit) { a.Source = atna.Source{ID: "INIT-GW", EnterpriseSiteID: "1.2.3.9"} },
			func(t *testing.T, req *hinscorev1.ExchangeEvent) {
				if req.Side != hinscorev1.Side_SIDE_INITIATING || req.RequesterCommunity != "urn:oid:1.2.3.9" || req.RequesterOrg != "urn:oid:1.2.3.9" {
					t.Errorf("side %v requester %q community %q", req.Side, req.RequesterOrg, req.RequesterCommunity)
				}
			}},
		{"nothing names the writer", "iti55_responding.xml",
			func(a *atna.Audit) { a.Source, a.Participants[1].AlternativeUserID = atna.Source{}, "" },
			wantSide(hinscorev1.Side_SIDE_UNSPECIFIED)},
		{"no Source participant: the human requestor is no organisation, the audit source's site is", "iti55_initiating.xml",
			func(a *atna.Audit) { a.Participants = a.Participants[1:] },
			func(t *testing.T, req *hinscorev1.ExchangeEvent) {
				if req.Side != hinscorev1.Side_SIDE_INITIATING || req.RequesterOrg != "Initiating HIE" {
					t.Errorf("side %v requester %q", req.Side, req.RequesterOrg)
				}
			}},
		{"the responder's view of an anonymous ReplyTo with an IP address", "iti55_responding.xml",
			func(a *atna.Audit) {
				a.Participants[0].UserID = "http://www.w3.org/2005/08/addressing/anonymous"
				a.Participants[0].NetworkAccessPointID = "192.0.2.44"
			},
			func(t *testing.T, req *hinscorev1.ExchangeEvent) {
				if req.RequesterOrg != "192.0.2.44" {
					t.Errorf("requester %q", req.RequesterOrg)
				}
			}},
		{"a purpose code no table knows", "iti55_responding.xml",
			func(a *atna.Audit) { a.Event.PurposesOfUse = []atna.Code{{Code: "MARKETING", System: "urn:example"}} },
			func(t *testing.T, req *hinscorev1.ExchangeEvent) {
				if req.Purpose != "unknown" || req.PurposeCode != "urn:example|MARKETING" {
					t.Errorf("purpose %q %q", req.Purpose, req.PurposeCode)
				}
			}},
		{"a bare ActReason code in an XUA detail", "iti38_responding_rfc3881.xml",
			func(a *atna.Audit) {
				a.Objects[0].Details = append(a.Objects[0].Details, atna.Detail{Type: "PurposeOfUse", Value: []byte("PATRQT")})
			},
			func(t *testing.T, req *hinscorev1.ExchangeEvent) {
				if req.Purpose != "individual_access" || req.PurposeCode != "http://terminology.hl7.org/CodeSystem/v3-ActReason|PATRQT" {
					t.Errorf("purpose %q %q", req.Purpose, req.PurposeCode)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, a := readAudit(t, tc.file)
			tc.change(a)
			evs, err := Map(a, testInput(raw))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, evs[0])
		})
	}
}

func wantSide(s hinscorev1.Side) func(*testing.T, *hinscorev1.ExchangeEvent) {
	return func(t *testing.T, req *hinscorev1.ExchangeEvent) {
		t.Helper()
		if req.Side != s {
			t.Errorf("side %v, want %v", req.Side, s)
		}
	}
}

// TestRetrieveOrder: the two records of one retrieve may list its
// documents in any order.
func TestRetrieveOrder(t *testing.T) {
	raw, a := readAudit(t, "iti39_export.xml")
	doc := a.Objects[1]
	doc2 := doc
	doc2.ID = "1.2.3.4.5.6.101"
	a.Objects = []atna.Object{a.Objects[0], doc, doc2}
	one, err := Map(a, testInput(raw))
	if err != nil {
		t.Fatal(err)
	}
	a.Objects = []atna.Object{doc2, a.Objects[0], doc}
	other, err := Map(a, testInput(raw))
	if err != nil {
		t.Fatal(err)
	}
	single := mapFile(t, "iti39_export.xml")
	if one[0].TransactionId != other[0].TransactionId || one[0].TransactionId == single[0].TransactionId {
		t.Errorf("transactions %q, %q (one document: %q)", one[0].TransactionId, other[0].TransactionId, single[0].TransactionId)
	}
	if one[1].RecordCount != 2 {
		t.Errorf("record count %d, want 2", one[1].RecordCount)
	}
}
