package toevent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/hinscore/hinscore/services/lib/atna"
	"github.com/hinscore/hinscore/services/lib/domain/purpose"
)

// DICOM EventIDs (PS3.16 CID 400) and participant roles (CID 402) of the
// cross-community transactions.
const (
	eventQuery        = "110112"
	eventExport       = "110106"
	eventImport       = "110107"
	roleSource        = "110153"
	roleDestination   = "110152"
	objectPerson      = 1
	objectSystem      = 2
	objectRolePatient = 1
	objectRoleReport  = 3
	objectRoleQuery   = 24
)

// transactions gives the request kind of an EventID with an EventTypeCode.
// ITI-39 is audited as Export by the responding gateway (the documents
// leave it) and as Import by the initiating one.
var transactions = [...]struct{ eventID, typeCode, kind string }{
	{eventQuery, "ITI-55", KindPatientDiscovery},
	{eventQuery, "ITI-38", KindDocumentQuery},
	{eventExport, "ITI-39", KindDocumentRetrieve},
	{eventImport, "ITI-39", KindDocumentRetrieve},
}

// transaction is what an audit records.
type transaction struct {
	kind     string // "" when not a cross-community transaction
	typeCode string // the EventTypeCode that made it one
	retrieve bool   // ITI-39: the Source participant is the responder
	// ITI-55 in deferred mode (XCPD Deferred Response Option): the
	// request's audit ends with the acknowledgement, the response is a
	// transaction of its own.
	deferredRequest, deferredResponse bool
}

func transactionOf(a *atna.Audit) transaction {
	for _, tc := range a.Event.TypeCodes {
		code := strings.TrimSpace(tc.Code)
		for _, t := range transactions {
			if t.eventID != a.Event.ID.Code || !strings.EqualFold(t.typeCode, code) {
				continue
			}
			tx := transaction{kind: t.kind, typeCode: t.typeCode, retrieve: t.kind == KindDocumentRetrieve}
			if t.kind == KindPatientDiscovery {
				tx.deferredRequest, tx.deferredResponse = deferred(a)
			}
			return tx
		}
	}
	return transaction{}
}

// deferred recognises ITI-55 in deferred mode, as gateways audit it: an
// EventTypeCode whose text names the deferred request or response (no
// separate code exists for them), or a query object carrying the
// PRPA_IN201306UV02 response that the deferred response delivers.
func deferred(a *atna.Audit) (request, response bool) {
	for _, tc := range a.Event.TypeCodes {
		t := strings.ToLower(tc.Display + " " + tc.Code)
		if strings.Contains(t, "deferred") {
			if strings.Contains(t, "response") {
				return false, true
			}
			request = true
		}
	}
	for i := range a.Objects {
		o := &a.Objects[i]
		if o.TypeCodeRole == objectRoleQuery && bytes.Contains(o.Query, []byte("PRPA_IN201306UV02")) {
			return false, true
		}
	}
	return request, false
}

// transactionID is what both gateways' records of one transaction share
// (DOMAIN.md, "IHE cross-community"), "" when the record carries none:
//   - ITI-55: the query object's ParticipantObjectID (the queryId both
//     gateways read from the same QueryByParameter), else a digest of its
//     query bytes;
//   - ITI-38: a digest of the query bytes and the responding community
//     (the query names the patient; the community tells apart the same
//     query sent to two communities);
//   - ITI-39: a digest of the sorted document unique ids, each with its
//     repository. Not the community: a document unique id is globally
//     unique already, and initiating gateways often leave the community
//     out of their Import record (iti39_import.xml), which would keep the
//     two records of one retrieve apart.
func transactionID(a *atna.Audit, tx transaction, respComm string) string {
	switch tx.kind {
	case KindPatientDiscovery:
		if q := queryObject(a); q != nil {
			if id := strings.TrimSpace(q.ID); id != "" {
				if len(id) > maxIDInKey {
					return queryIDPrefix + digest([]byte(id))
				}
				return queryIDPrefix + id
			}
			if len(bytes.TrimSpace(q.Query)) > 0 {
				return "q:" + digest(bytes.TrimSpace(q.Query))
			}
		}
	case KindDocumentQuery:
		if q := queryObject(a); q != nil && len(bytes.TrimSpace(q.Query)) > 0 {
			return "q:" + digest(bytes.TrimSpace(q.Query), []byte{0}, []byte(respComm))
		}
	case KindDocumentRetrieve:
		docs := documents(a)
		if len(docs) == 0 {
			return ""
		}
		slices.Sort(docs)
		return "docs:" + digest([]byte(strings.Join(docs, "\n")))
	}
	return ""
}

// queryIDPrefix starts a transaction id that is an XCPD queryId.
const queryIDPrefix = "qid:"

// maxIDInKey bounds a query id kept as it is in a key; a longer one (an
// attribute may be 256 KB) is digested, as both records' are alike.
const maxIDInKey = 128

func digest(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

func queryObject(a *atna.Audit) *atna.Object {
	for i := range a.Objects {
		if a.Objects[i].TypeCodeRole == objectRoleQuery {
			return &a.Objects[i]
		}
	}
	return nil
}

// documents are the retrieved documents as "repository|document".
func documents(a *atna.Audit) []string {
	var docs []string
	for i := range a.Objects {
		o := &a.Objects[i]
		if o.TypeCode != objectSystem || o.TypeCodeRole != objectRoleReport || strings.TrimSpace(o.ID) == "" {
			continue
		}
		var repo string
		for _, d := range o.Details {
			if strings.EqualFold(strings.ReplaceAll(d.Type, " ", ""), "RepositoryUniqueId") {
				repo = strings.TrimSpace(string(d.Value))
			}
		}
		docs = append(docs, repo+"|"+strings.TrimSpace(o.ID))
	}
	return docs
}

// records is the answer's record count: the patients an ITI-55 answer
// matched, the documents an ITI-39 retrieve returned; 0 for a query.
func (tx transaction) records(a *atna.Audit) uint32 {
	switch tx.kind {
	case KindPatientDiscovery:
		n := uint32(0)
		for i := range a.Objects {
			if a.Objects[i].TypeCode == objectPerson && a.Objects[i].TypeCodeRole == objectRolePatient {
				n++
			}
		}
		return n
	case KindDocumentRetrieve:
		return uint32(len(documents(a)))
	}
	return 0
}

type patientID struct{ id, authority string }

// patientOf is the first patient object's CX, read by the rule HL7 v2 and
// FHIR share (atna.Object.Patient).
func patientOf(a *atna.Audit) (patientID, bool) {
	for i := range a.Objects {
		if id, auth, ok := a.Objects[i].Patient(); ok {
			return patientID{id, auth}, true
		}
	}
	return patientID{}, false
}

func hasPatient(a *atna.Audit) bool {
	for i := range a.Objects {
		if a.Objects[i].TypeCode == objectPerson && a.Objects[i].TypeCodeRole == objectRolePatient {
			return true
		}
	}
	return false
}

// purposeOf reads the purpose of use: EventIdentification's PurposeOfUse
// (DICOM 2013 on, from the XUA assertion), then a ParticipantObjectDetail
// some gateways put the XUA purpose in (type "...purposeofuse", value
// "system|code" or a bare code of the NHIN or ActReason systems), picked
// by purpose.Pick; "" and "" when the record carries none.
func purposeOf(a *atna.Audit) (canonical, code string) {
	var codings []purpose.Coding
	for _, c := range a.Event.PurposesOfUse {
		codings = append(codings, purpose.Coding{System: c.System, Code: c.Code})
	}
	for i := range a.Objects {
		for _, d := range a.Objects[i].Details {
			if !strings.Contains(strings.ToLower(d.Type), "purposeofuse") {
				continue
			}
			v := strings.TrimSpace(string(d.Value))
			system, c, ok := strings.Cut(v, "|")
			if !ok {
				system, c = purpose.SystemNHIN, v
				if _, known := purpose.Lookup(system, c); !known {
					system = purpose.SystemActReason
				}
			}
			codings = append(codings, purpose.Coding{System: system, Code: c})
		}
	}
	p, code := purpose.Pick(codings...)
	return string(p), code
}
