package fhiringest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// The OperationOutcome replies. Encoded from our own structs: a reply is
// small and its shape fixed.

// OutcomeIssue is one issue of a reply.
type OutcomeIssue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Location    []string `json:"location,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

// OperationOutcome is the body of every reply but a CapabilityStatement:
// what a feed (and a test) decodes.
type OperationOutcome struct {
	ResourceType string         `json:"resourceType"`
	Issue        []OutcomeIssue `json:"issue"`
}

func outcomeOf(issues ...OutcomeIssue) OperationOutcome {
	return OperationOutcome{ResourceType: "OperationOutcome", Issue: issues}
}

func errorIssue(code, diagnostics, expression string) OutcomeIssue {
	is := OutcomeIssue{Severity: "error", Code: code, Diagnostics: diagnostics}
	if expression != "" {
		is.Expression = []string{expression}
	}
	return is
}

func infoIssue(diagnostics string) OutcomeIssue {
	return OutcomeIssue{Severity: "information", Code: "informational", Diagnostics: diagnostics}
}

// writeFHIR writes v as application/fhir+json.
func writeFHIR(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception"}]}`)
	}
	writeFHIRBytes(w, status, b)
}

var contentTypeFHIR = []string{"application/fhir+json; charset=utf-8"}

// writeFHIRBytes writes an encoded resource.
func writeFHIRBytes(w http.ResponseWriter, status int, b []byte) {
	w.Header()["Content-Type"] = contentTypeFHIR
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// storedReplies are the replies to a stored resource, encoded once: the
// same few bytes answer nearly every request.
var storedReplies = func() (r [16][]byte) {
	for n := range r {
		r[n] = encodeOutcome(infoIssue(fmt.Sprintf("stored: %d exchange event(s)", n)))
	}
	return r
}()

var duplicateReply = encodeOutcome(infoIssue("already stored: this version was received before"))

// storedReply is the reply to a resource stored with n events, or one that
// JetStream already held (dup).
func storedReply(dup bool, n int) []byte {
	switch {
	case dup:
		return duplicateReply
	case n < len(storedReplies):
		return storedReplies[n]
	}
	return encodeOutcome(infoIssue(fmt.Sprintf("stored: %d exchange event(s)", n)))
}

func encodeOutcome(issues ...OutcomeIssue) []byte {
	b, err := json.Marshal(outcomeOf(issues...))
	if err != nil {
		panic(err) // our own struct of strings
	}
	return b
}
