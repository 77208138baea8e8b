package fhiringest

import (
	"net/http"
	"strconv"
)

// The CapabilityStatement says exactly what this server accepts: nothing
// is readable back (the ingest is write-only), every write is a create or
// an update of the exchange resources fhirmap maps.

type capabilityStatement struct {
	ResourceType   string      `json:"resourceType"`
	Status         string      `json:"status"`
	Date           string      `json:"date"`
	Publisher      string      `json:"publisher"`
	Kind           string      `json:"kind"`
	Software       capSoftware `json:"software"`
	Implementation capImpl     `json:"implementation"`
	FHIRVersion    string      `json:"fhirVersion"`
	Format         []string    `json:"format"`
	Rest           []capRest   `json:"rest"`
}

type capSoftware struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type capImpl struct {
	Description string `json:"description"`
	URL         string `json:"url"`
}

type capRest struct {
	Mode          string        `json:"mode"`
	Documentation string        `json:"documentation"`
	Security      capSecurity   `json:"security"`
	Resource      []capResource `json:"resource"`
	Interaction   []capInteract `json:"interaction"`
}

type capSecurity struct {
	Service     []capConcept `json:"service"`
	Description string       `json:"description"`
}

type capConcept struct {
	Coding []capCoding `json:"coding"`
}

type capCoding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

type capResource struct {
	Type          string        `json:"type"`
	Documentation string        `json:"documentation"`
	Interaction   []capInteract `json:"interaction"`
}

type capInteract struct {
	Code          string `json:"code"`
	Documentation string `json:"documentation,omitempty"`
}

// capabilityDate is when this statement last changed meaning.
const capabilityDate = "2026-03-02"

func (s *Server) capability(network string) capabilityStatement {
	createUpdate := []capInteract{{Code: "create"}, {Code: "update", Documentation: "PUT /fhir/" + network + "/{type}/{id}; the id must match the body"}}
	base := "/fhir/" + network
	return capabilityStatement{
		ResourceType: "CapabilityStatement",
		Status:       "active",
		Date:         capabilityDate,
		Publisher:    "hinscore",
		Kind:         "instance",
		Software:     capSoftware{Name: "hinscore fhir-ingest", Version: s.mapperOf(network).Table.Version},
		Implementation: capImpl{
			Description: "hinscore observer ingest for network " + network + ": stores copies of exchange traffic; nothing can be read back",
			URL:         base,
		},
		FHIRVersion: "4.0.1",
		Format:      []string{mediaFHIRJSON, mediaJSON, mediaNDJSON},
		Rest: []capRest{{
			Mode: "server",
			Documentation: "Request bodies: application/fhir+json or application/json (one resource), application/fhir+ndjson (POST " + base +
				"/ only, one resource per line); Content-Encoding gzip accepted; at most " + strconv.FormatInt(s.cfg.MaxBodyBytes, 10) +
				" bytes per resource after gunzip (413 above). 200/201 only once stored; 400 for bad JSON or a resource not matching its URL, 422 for a resource that is no exchange event or lacks an element (OperationOutcome issue expression names it); " +
				"header X-Correlation-ID links a batch/transaction to its response and an OperationOutcome to its request. Same resource version (id + meta.versionId, else the same bytes) twice is stored once.",
			Security: capSecurity{
				Service:     []capConcept{{Coding: []capCoding{{System: "http://terminology.hl7.org/CodeSystem/restful-security-service", Code: "OAuth"}}}},
				Description: "Authorization: Bearer <token>, one or more tokens per network; 401 without a known token, 403 with another network's token",
			},
			Resource: []capResource{
				{Type: "Bundle", Documentation: "type message (first entry MessageHeader), batch, transaction, batch-response, transaction-response, history (subscription notification carrying Task / MessageHeader / message Bundle versions); other types get 422",
					Interaction: []capInteract{{Code: "create"}}},
				{Type: "Task", Documentation: "every version of a record-request Task: status, statusReason, businessStatus, output, lastModified", Interaction: createUpdate},
				{Type: "AuditEvent", Documentation: "one AuditEvent = one whole exchange (type rest); outcome 0/4/8/12, outcomeDesc; other types are counted as notifications", Interaction: createUpdate},
				{Type: "OperationOutcome", Documentation: "an answer alone: needs the X-Correlation-ID of its request, else 422", Interaction: createUpdate},
				{Type: "MessageHeader", Documentation: "a message header alone (request when it has no response element)", Interaction: createUpdate},
			},
			Interaction: []capInteract{{Code: "batch", Documentation: "POST " + base + "/ with a Bundle, or NDJSON"}},
		}},
	}
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	network := r.PathValue("network")
	start := s.clock.Now()
	known := false
	for _, n := range s.tokenNet {
		known = known || n == network
	}
	if !known {
		s.reply(w, "-", start, http.StatusNotFound, outcomeOf(errorIssue("not-found", "no network "+strconvQuote(network), "")))
		return
	}
	s.reply(w, network, start, http.StatusOK, s.capability(network))
}
