package fhirmap

import "encoding/json"

// The structs below hold only the elements the mapping reads: every other
// element of a resource is skipped by the decoder, never an error.

type meta struct {
	VersionID   string `json:"versionId"`
	LastUpdated string `json:"lastUpdated"`
	// lastModified is not an R4 Meta element, but feeds that copy Task
	// versions put it there; Task.lastModified is the standard place.
	LastModified string `json:"lastModified"`
	// Security holds the resource's security labels, among them the
	// purpose of use of a request (purposes.go). Kept raw and read
	// leniently: a label that is not a list of codings loses the purpose,
	// never the message.
	Security json.RawMessage `json:"security"`
}

// head is what every resource is first decoded to: its type and identity.
type head struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Meta         *meta  `json:"meta"`
}

type coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
	// Display is free text a refusal may cite an exception in.
	Display string `json:"display"`
}

type codeableConcept struct {
	Coding []coding `json:"coding"`
	Text   string   `json:"text"`
}

type identifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type reference struct {
	Reference  string      `json:"reference"`
	Identifier *identifier `json:"identifier"`
	Display    string      `json:"display"`
}

type bundle struct {
	head
	Type       string      `json:"type"`
	Timestamp  string      `json:"timestamp"`
	Identifier *identifier `json:"identifier"`
	Total      *uint32     `json:"total"`
	Entry      []entry     `json:"entry"`
}

type entry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Request  *entryRequest   `json:"request"`
	Response *entryResponse  `json:"response"`
}

type entryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

type entryResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location"`
	LastModified string          `json:"lastModified"`
	Outcome      json.RawMessage `json:"outcome"`
}

type messageHeader struct {
	head
	EventCoding *coding              `json:"eventCoding"`
	EventURI    string               `json:"eventUri"`
	Destination []messageDestination `json:"destination"`
	Sender      *reference           `json:"sender"`
	Source      *messageSource       `json:"source"`
	Response    *messageResponse     `json:"response"`
	Focus       []reference          `json:"focus"`
}

type messageDestination struct {
	Name     string     `json:"name"`
	Endpoint string     `json:"endpoint"`
	Receiver *reference `json:"receiver"`
}

type messageSource struct {
	Name     string `json:"name"`
	Endpoint string `json:"endpoint"`
}

type messageResponse struct {
	Identifier string     `json:"identifier"`
	Code       string     `json:"code"`
	Details    *reference `json:"details"`
}

type task struct {
	head
	Identifier     []identifier      `json:"identifier"`
	Status         string            `json:"status"`
	StatusReason   *codeableConcept  `json:"statusReason"`
	BusinessStatus *codeableConcept  `json:"businessStatus"`
	Code           *codeableConcept  `json:"code"`
	For            *reference        `json:"for"`
	AuthoredOn     string            `json:"authoredOn"`
	LastModified   string            `json:"lastModified"`
	Requester      *reference        `json:"requester"`
	Owner          *reference        `json:"owner"`
	Output         []json.RawMessage `json:"output"`
	// Input is read only for a purpose of use (purposes.go), leniently:
	// raw, so that a malformed one costs the purpose, not the Task.
	Input json.RawMessage `json:"input"`
}

type operationOutcome struct {
	head
	Issue []issue `json:"issue"`
}

type issue struct {
	Severity    string           `json:"severity"`
	Code        string           `json:"code"`
	Details     *codeableConcept `json:"details"`
	Diagnostics string           `json:"diagnostics"`
}

type auditEvent struct {
	head
	Type           *coding           `json:"type"`
	Subtype        []coding          `json:"subtype"`
	Action         string            `json:"action"`
	Period         *period           `json:"period"`
	Recorded       string            `json:"recorded"`
	Outcome        string            `json:"outcome"`
	OutcomeDesc    string            `json:"outcomeDesc"`
	PurposeOfEvent []codeableConcept `json:"purposeOfEvent"`
	Agent          []auditAgent      `json:"agent"`
	Source         *auditSource      `json:"source"`
	Entity         []auditEntity     `json:"entity"`
}

type period struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type auditAgent struct {
	Type         *codeableConcept  `json:"type"`
	Role         []codeableConcept `json:"role"`
	Who          *reference        `json:"who"`
	AltID        string            `json:"altId"`
	Requestor    bool              `json:"requestor"`
	Name         string            `json:"name"`
	Network      *auditNetwork     `json:"network"`
	PurposeOfUse []codeableConcept `json:"purposeOfUse"`
}

type auditNetwork struct {
	Address string `json:"address"`
	Type    string `json:"type"`
}

type auditSource struct {
	Site     string     `json:"site"`
	Observer *reference `json:"observer"`
	Type     []coding   `json:"type"`
}

type auditEntity struct {
	What      *reference    `json:"what"`
	Type      *coding       `json:"type"`
	Role      *coding       `json:"role"`
	Lifecycle *coding       `json:"lifecycle"`
	Name      string        `json:"name"`
	Query     string        `json:"query"`
	Detail    []auditDetail `json:"detail"`
}

type auditDetail struct {
	Type              string `json:"type"`
	ValueString       string `json:"valueString"`
	ValueBase64Binary string `json:"valueBase64Binary"`
}

type patient struct {
	head
	Identifier []identifier `json:"identifier"`
}
