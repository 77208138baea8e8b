package fhiringest

import (
	"encoding/json"
	"net/http"
)

// The OperationOutcome replies. Encoded from our own structs: a reply is
// small and its shape fixed.

type ooIssue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Location    []string `json:"location,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

type operationOutcome struct {
	ResourceType string    `json:"resourceType"`
	Issue        []ooIssue `json:"issue"`
}

func outcomeOf(issues ...ooIssue) operationOutcome {
	return operationOutcome{ResourceType: "OperationOutcome", Issue: issues}
}

func errorIssue(code, diagnostics, expression string) ooIssue {
	is := ooIssue{Severity: "error", Code: code, Diagnostics: diagnostics}
	if expression != "" {
		is.Expression = []string{expression}
	}
	return is
}

func infoIssue(diagnostics string) ooIssue {
	return ooIssue{Severity: "information", Code: "informational", Diagnostics: diagnostics}
}

// writeFHIR writes v as application/fhir+json.
func writeFHIR(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception"}]}`)
	}
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
