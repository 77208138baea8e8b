package fhiringest

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
)

// TestPutExchangeResources: PUT /fhir/{network}/{type}/{id} takes Task,
// AuditEvent, OperationOutcome (with its X-Correlation-ID) and
// MessageHeader, as the issue lists, each stored once with its events; a
// Bundle (posted, never updated) and a resource that is no exchange event
// are refused with 405 and an OperationOutcome, before any byte is stored.
func TestPutExchangeResources(t *testing.T) {
	cases := []struct {
		name, path, file, corr string
		status                 int
		events                 []string // role/status of each event stored
		code, expr             string   // issue of a refusal
		dlq                    bool
	}{
		{name: "Task", path: "/Task/cdex-task-1", file: "task-requested.json", status: 200,
			events: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED"}},
		{name: "AuditEvent", path: "/AuditEvent/example-search", file: "auditevent-rest.json", status: 200,
			events: []string{"ROLE_REQUEST/STATUS_UNSPECIFIED", "ROLE_RESPONSE/STATUS_OK"}},
		{name: "MessageHeader", path: "/MessageHeader/1cbdfb97-5859-48a4-8301-d54eab818d68", file: "messageheader-example.json", status: 200,
			events: []string{"ROLE_RESPONSE/STATUS_OK"}},
		{name: "OperationOutcome with X-Correlation-ID", path: "/OperationOutcome/101", file: "operationoutcome.json", corr: "corr-9", status: 200,
			events: []string{"ROLE_RESPONSE/STATUS_REFUSED"}},
		{name: "OperationOutcome without X-Correlation-ID", path: "/OperationOutcome/101", file: "operationoutcome.json", status: 422,
			code: "not-supported", expr: "OperationOutcome", dlq: true},
		{name: "Bundle", path: "/Bundle/msg-req-1", file: "message-request.json", status: 405, code: "not-supported"},
		{name: "DocumentReference", path: "/DocumentReference/example", file: "documentreference.json", status: 405, code: "not-supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			body := example(t, tc.file)
			p := post{method: http.MethodPut, path: "/fhir/neta" + tc.path, token: tokenA, corr: tc.corr, body: body}
			a := h.do(p)
			if a.status != tc.status || a.oo.ResourceType != "OperationOutcome" || len(a.oo.Issue) == 0 {
				t.Fatalf("PUT %s: %d %s, want %d with an OperationOutcome", tc.path, a.status, a.body, tc.status)
			}
			raws := h.streamMsgs(bus.StreamRaw, "raw.neta.fhir")
			dl := h.streamMsgs(bus.StreamDLQ, "dlq.fhir-ingest")
			if tc.status != http.StatusOK {
				is := a.oo.Issue[0]
				if is.Severity != "error" || is.Code != tc.code || (tc.expr != "" && strings.Join(is.Expression, ",") != tc.expr) {
					t.Errorf("issue %+v, want error %s at %q", is, tc.code, tc.expr)
				}
				if tc.status == http.StatusMethodNotAllowed && a.header.Values("Allow") == nil {
					t.Error("405 without an Allow header")
				}
				if len(raws) != 0 || len(h.events()) != 0 {
					t.Errorf("refused, yet RAW holds %d and EVENTS %d", len(raws), len(h.events()))
				}
				if (len(dl) == 1) != tc.dlq || (tc.dlq && !bytes.Equal(dl[0].Data, body)) {
					t.Errorf("%d dead letters, want dlq=%v with the body", len(dl), tc.dlq)
				}
				return
			}
			if loc := a.header.Get("Location"); !strings.HasPrefix(loc, "/fhir/neta"+tc.path) {
				t.Errorf("Location %q, want under /fhir/neta%s", loc, tc.path)
			}
			if len(dl) != 0 {
				t.Fatalf("accepted, yet DLQ holds %d", len(dl))
			}
			var got []string
			for _, ev := range h.heldOnce([][]byte{body}) {
				got = append(got, ev.Role.String()+"/"+ev.Status.String())
				if ev.Network != "neta" || ev.Format != hinscorev1.Format_FORMAT_FHIR {
					t.Errorf("event %s: network %s format %s", ev.MessageId, ev.Network, ev.Format)
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.events, " ") {
				t.Fatalf("events %v, want %v", got, tc.events)
			}
			// The same version PUT again is stored once.
			a = h.do(p)
			if a.status != http.StatusOK || !strings.Contains(a.oo.Issue[0].Diagnostics, "already stored") {
				t.Fatalf("PUT again: %d %s", a.status, a.body)
			}
			if e := len(h.heldOnce([][]byte{body})); e != len(tc.events) {
				t.Errorf("after PUT again: %d events, want %d", e, len(tc.events))
			}
		})
	}
}
