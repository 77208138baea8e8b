package truthcheck

import (
	"io"
	"time"
)

// Columns of truth.csv added after its first ones (the patterns: every
// request kind, interim answers); a truth file without them is of patient
// queries (QBP^Q22/RSP^K22) alone, each answered once, one record when
// fulfilled, under the SLA of truth.json.
const (
	colKind    = "request_kind"
	colRecords = "record_count"
	colTTAMs   = "tta_ms"
	colSLAMs   = "sla_ms"
)

// readHL7 reads truth.csv: one row per HL7 v2 request.
func readHL7(r io.Reader) ([]Request, error) {
	return readTable(r, func(tb *table) Request {
		q := Request{
			Network: tb.get("network"), Feed: FeedMLLP, ID: tb.get("control_id"), Kind: "patient_query",
			Requester: tb.get("requester"), Responder: tb.get("responder"),
			Class: tb.get("outcome"), ExceptionCode: tb.get("exception_code"),
			RequestedAt: tb.time("requested_at"), TTFMs: tb.int("latency_ms", -1), Patient: tb.get("patient"),
		}
		if k := tb.opt(colKind); k != "" {
			q.Kind = k
		}
		q.TTAMs = q.TTFMs
		if tb.has(colTTAMs) {
			q.TTAMs = tb.int(colTTAMs, -1)
		}
		q.SLAMs = tb.int(colSLAMs, 0)
		q.Records = 0
		if q.Class == "fulfilled" || q.Class == "fulfilled_late" {
			q.Records = 1
		}
		if tb.has(colRecords) {
			q.Records = tb.int(colRecords, -1)
		}
		return q
	})
}

// auditSkew bounds how long after the earliest record of a cross-community
// transaction the other gateway records it (the simulator: 5 to 80 ms).
const auditSkew = 100 * time.Millisecond

// readXCA reads xca_truth.csv: one row per cross-community transaction.
// Requester and responder are home communities (the outcomes view names
// a gateway's organisation by its community, and the directory names the
// community).
func readXCA(r io.Reader) ([]Request, error) {
	return readTable(r, func(tb *table) Request {
		q := Request{
			Network: tb.get("network"), Feed: tb.get("feed"), ID: tb.get("transaction_id"), Kind: tb.get("kind"),
			Requester: tb.get("requester_community"), RequesterCommunity: tb.get("requester_community"),
			Responder: tb.get("responder_community"), ResponderCommunity: tb.get("responder_community"),
			Class: tb.get("outcome"), ExceptionCode: tb.get("exception_code"), ErrorCode: tb.get("error_code"),
			Purpose: tb.get("purpose"), PurposeCode: tb.get("purpose_code"), PurposeKnown: true,
			Records: -1, TTAMs: tb.int("latency_ms", -1), TTFMs: tb.int("latency_ms", -1),
			Sides: tb.get("sides"), Untimed: !tb.bool("timed"), Patient: tb.get("patient"), Deferred: tb.bool("deferred"),
		}
		if q.Purpose == "" {
			q.Purpose = "unknown" // the store's name for none carried
		}
		q.Records = xcaRecords(q, tb.int("documents", 0))
		q.RequestedAt = tb.time("requested_at")
		if q.Untimed {
			// An audit holds when the transaction was recorded; the outcome
			// is as of the initiating gateway's record when there is one,
			// which may come a few milliseconds after the other.
			q.RequestedAt, q.Skew, q.TTFMs, q.TTAMs = tb.time("recorded_at"), auditSkew, -1, -1
		}
		return q
	})
}

// xcaRecords is the record count a cross-community answer states: the
// patient matched by a fulfilled XCPD discovery (the simulator returns
// one), the documents a fulfilled retrieve returns, the documents a query
// found when the feed carries the answer (a SOAP copy; an audit record of
// a query lists no documents); 0 for an answer without records; -1 (not
// compared) for a partial answer, whose truth row does not say how many
// of the documents came back.
func xcaRecords(q Request, documents int64) int64 {
	fulfilled := q.Class == "fulfilled" || q.Class == "fulfilled_late"
	switch {
	case q.Class == "partial":
		return -1
	case !fulfilled:
		return 0
	case q.Kind == "patient_discovery":
		return 1
	case q.Kind == "document_query" && q.Feed == FeedATNA:
		return 0
	default:
		return documents
	}
}

// applyGateways names the requester of an audit-only transaction seen only
// through the responding gateway's record as that record does: by the
// initiating gateway's address (its host), no community.
func (t *Truth) applyGateways() {
	for i, q := range t.Requests {
		if q.Feed == FeedATNA && q.Sides == "responding" {
			t.Requests[i].Requester, t.Requests[i].RequesterCommunity = t.gatewayHosts[q.Network][q.RequesterCommunity], ""
		}
	}
}
