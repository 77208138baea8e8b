package simulator

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Cross-community (IHE XCPD/XCA) networks: gateways that exchange
// ITI-55, ITI-38 and ITI-39 and audit each transaction, or mirror the
// SOAP messages themselves.

// Request kinds of the cross-community transactions, as events name them.
const (
	KindPatientDiscovery = "patient_discovery" // XCPD ITI-55
	KindDocumentQuery    = "document_query"    // XCA ITI-38
	KindDocumentRetrieve = "document_retrieve" // XCA ITI-39
)

// Partial is the class of an XCA answer with status PartialSuccess; only
// cross-community networks produce it.
const Partial = "partial"

// XCA feeds: how a network lets hinscore see its transactions.
const (
	// FeedATNA: each gateway sends its ATNA audit records over syslog-TLS.
	FeedATNA = "atna"
	// FeedSOAP: each gateway posts copies of the SOAP messages it sends and
	// receives.
	FeedSOAP = "soap"
)

// Gateway sides, as the X-Gateway-Side header and the truth name them.
const (
	SideInitiating = "initiating"
	SideResponding = "responding"
	SideBoth       = "both"
)

// Audit XML shapes the simulated vendors write.
const (
	// ShapeDICOM is DICOM PS3.15 A.5: csd-code / originalText, pretty-printed.
	ShapeDICOM = "dicom"
	// ShapeDICOMPrefixed is the same, every element namespace-prefixed, on one line.
	ShapeDICOMPrefixed = "dicom-prefixed"
	// ShapeRFC3881 is the older schema: code / displayName, optional parts left out.
	ShapeRFC3881 = "rfc3881"
)

// Syslog message forms.
const (
	SyslogRFC5424 = "rfc5424"
	SyslogBSD     = "bsd"
)

// Policy times the linker applies to the cross-community kinds (DOMAIN.md
// defaults: a patient or record query 60 s, a document retrieve 5 min).
const (
	DiscoverySLA = 60 * time.Second
	QueryXCASLA  = 60 * time.Second
	RetrieveSLA  = 5 * time.Minute
	// GatewayTimeout is when an initiating gateway gives up on an
	// unanswered transaction and audits it as failed.
	GatewayTimeout = 90 * time.Second
)

// SLAOf returns the SLA of a cross-community request kind.
func SLAOf(kind string) time.Duration {
	if kind == KindDocumentRetrieve {
		return RetrieveSLA
	}
	return DiscoverySLA
}

// Gateway is one organisation's IHE gateway on a cross-community network.
type Gateway struct {
	// ID is the gateway's AuditSourceID and the directory identifier of
	// its organisation (e.g. "CQE-GW-HOSP-01").
	ID        string `json:"id"`
	OrgID     string `json:"org_id"`
	Name      string `json:"name"`
	Developer string `json:"developer,omitempty"`
	// Community is the home community id, "urn:oid:...".
	Community string `json:"community"`
	Host      string `json:"host"`
	// Responding gateways answer; the others only initiate.
	Responding bool `json:"responding"`
	// Behaviour names the responder's behaviour (XCABehaviours); "" for
	// an initiating gateway.
	Behaviour string `json:"behaviour,omitempty"`
	// Weight is a responding gateway's share of the network's journeys.
	Weight float64 `json:"weight,omitempty"`
	Shape  string  `json:"shape"`
	Syslog string  `json:"syslog"`
}

// Endpoint is the gateway's SOAP endpoint for a transaction.
func (g Gateway) Endpoint(tx string) string {
	return "https://" + g.Host + "/ihe/" + tx
}

// oid is the community id without its "urn:oid:" prefix.
func (g Gateway) oid() string { return strings.TrimPrefix(g.Community, "urn:oid:") }

// domain is the organisation's DNS domain: the host without its "gw.".
func (g Gateway) domain() string { return strings.TrimPrefix(g.Host, "gw.") }

// XCABehaviour is how a responding gateway answers each transaction.
type XCABehaviour struct {
	Name      string        `json:"name"`
	Discovery []ClassWeight `json:"discovery"`
	Query     []ClassWeight `json:"query"`
	Retrieve  []ClassWeight `json:"retrieve"`
	Latency   LogNormal     `json:"latency"`
	// Deferred is the share of successful discoveries answered in XCPD
	// deferred mode, minutes later: SOAP copies show the acknowledgement
	// and the deferred response; audit trails a record of the deferred
	// request (accepted) and one of the deferred response per gateway.
	Deferred float64 `json:"deferred,omitempty"`
	// Runaround: answers discovery but never returns documents (and when
	// it finds no patient, asks for more demographics); its journeys are
	// marked in the truth.
	Runaround bool `json:"runaround,omitempty"`
}

// XCABehaviours are the responder behaviours of the default networks.
func XCABehaviours() []XCABehaviour {
	fast := LogNormal{MedianMs: 1500, Sigma: 0.6}
	return []XCABehaviour{
		{Name: "clean", Latency: fast,
			Discovery: []ClassWeight{{Fulfilled, 0.9}, {NotFound, 0.08}, {ErrorTransient, 0.02}},
			Query:     []ClassWeight{{Fulfilled, 0.95}, {NotFound, 0.03}, {ErrorTransient, 0.01}, {ErrorPermanent, 0.01}},
			Retrieve:  []ClassWeight{{Fulfilled, 0.96}, {Partial, 0.02}, {ErrorTransient, 0.02}}},
		{Name: "runaround", Latency: fast, Runaround: true,
			Discovery: []ClassWeight{{Fulfilled, 0.85}, {NotFound, 0.15}},
			Query:     []ClassWeight{{NotFound, 0.5}, {RefusedUnjustified, 0.3}, {Unanswered, 0.2}},
			Retrieve:  []ClassWeight{{RefusedUnjustified, 1}}},
		{Name: "consent_refuser", Latency: fast,
			Discovery: []ClassWeight{{Fulfilled, 0.85}, {NotFound, 0.05}, {RefusedException, 0.1}},
			Query:     []ClassWeight{{Fulfilled, 0.7}, {RefusedException, 0.3}},
			Retrieve:  []ClassWeight{{Fulfilled, 0.9}, {RefusedException, 0.1}}},
		{Name: "unexplained_refuser", Latency: fast,
			Discovery: []ClassWeight{{Fulfilled, 0.85}, {NotFound, 0.05}, {RefusedUnjustified, 0.1}},
			Query:     []ClassWeight{{Fulfilled, 0.7}, {RefusedUnjustified, 0.3}},
			Retrieve:  []ClassWeight{{Fulfilled, 0.85}, {RefusedUnjustified, 0.15}}},
		{Name: "busy", Latency: LogNormal{MedianMs: 4000, Sigma: 0.8},
			Discovery: []ClassWeight{{Fulfilled, 0.7}, {ErrorTransient, 0.2}, {Unanswered, 0.1}},
			Query:     []ClassWeight{{Fulfilled, 0.75}, {ErrorTransient, 0.2}, {Unanswered, 0.05}},
			Retrieve:  []ClassWeight{{Fulfilled, 0.8}, {Partial, 0.05}, {ErrorTransient, 0.15}}},
		{Name: "slow_deferred", Latency: LogNormal{MedianMs: 8000, Sigma: 0.9}, Deferred: 0.6,
			Discovery: []ClassWeight{{Fulfilled, 0.9}, {NotFound, 0.1}},
			Query:     []ClassWeight{{Fulfilled, 0.9}, {NotFound, 0.05}, {ErrorTransient, 0.05}},
			Retrieve:  []ClassWeight{{Fulfilled, 0.95}, {ErrorTransient, 0.05}}},
	}
}

// XCANetwork is one cross-community network: its gateways and its feed.
type XCANetwork struct {
	Name string `json:"name"`
	// Code prefixes the network's ids ("CQE").
	Code string `json:"code"`
	// Arc is the network's OID arc under 2.999 (the OID arc for examples):
	// communities, patients and documents are numbered under 2.999.<Arc>.
	Arc      int       `json:"arc"`
	Share    float64   `json:"share"`
	Feed     string    `json:"feed"`
	Gateways []Gateway `json:"gateways"`
	// Exceptions are the 45 CFR 171 codes a consent or policy refusal cites.
	Exceptions []string `json:"exceptions"`
	// StopShare is the share of journeys whose requester stops after a
	// successful step (it needed no more).
	StopShare float64 `json:"stop_share"`
	// NoHumanShare is the share of journeys without a human requestor
	// (system queries: no person in the XUA assertion).
	NoHumanShare float64 `json:"no_human_share"`
}

// patientOID is the network's patient identifier authority.
func (n XCANetwork) patientOID() string { return fmt.Sprintf("2.999.%d.100", n.Arc) }

func xcaGateways(n *XCANetwork, clinics int, behaviours []string, shapes, forms []string) {
	for i := range clinics {
		n.Gateways = append(n.Gateways, xcaGateway(n, "CLINIC", i+1, ""))
	}
	for i, b := range behaviours {
		n.Gateways = append(n.Gateways, xcaGateway(n, "HOSP", i+1, b))
	}
	for i := range n.Gateways {
		n.Gateways[i].Shape = shapes[i%len(shapes)]
		n.Gateways[i].Syslog = forms[i%len(forms)]
		if n.Gateways[i].Responding {
			n.Gateways[i].Developer = developers[i%len(developers)]
		}
	}
}

func xcaGateway(n *XCANetwork, kind string, i int, behaviour string) Gateway {
	lower := map[string]string{"CLINIC": "clinic", "HOSP": "hospital"}[kind]
	base := 1
	if kind == "HOSP" {
		base = 50
	}
	g := Gateway{
		ID:        n.Code + "-GW-" + kind + "-" + twoDigits(i),
		OrgID:     fmt.Sprintf("%s-%s-%s", n.Name, lower, twoDigits(i)),
		Name:      fmt.Sprintf("%s %s %s", n.Name, lower, twoDigits(i)),
		Community: fmt.Sprintf("urn:oid:2.999.%d.%d", n.Arc, base+i),
		Host:      fmt.Sprintf("gw.%s%s.%s.example", lower, twoDigits(i), n.Name),
	}
	if behaviour != "" {
		g.Responding, g.Behaviour, g.Weight = true, behaviour, 1
	}
	return g
}

// XCANetworks returns the default cross-community networks: CarequalEast,
// whose gateways audit every transaction over syslog-TLS, and EHXCentral,
// whose gateways mirror their SOAP messages.
func XCANetworks() []XCANetwork { return []XCANetwork{CarequalEast(), EHXCentral()} }

// CarequalEast is the demo's cross-community network: 3 initiating and 7
// responding gateways (one of each behaviour, clean twice), every
// transaction audited by both gateways (ATNA over syslog-TLS), the three
// audit shapes and both syslog forms among them.
func CarequalEast() XCANetwork {
	n := XCANetwork{
		Name: "carequal-east", Code: "CQE", Arc: 1, Share: 0.6, Feed: FeedATNA,
		Exceptions: []string{"171.202", "171.201"}, StopShare: 0.1, NoHumanShare: 0.15,
	}
	xcaGateways(&n, 3,
		[]string{"clean", "clean", "runaround", "consent_refuser", "unexplained_refuser", "busy", "slow_deferred"},
		[]string{ShapeDICOM, ShapeDICOMPrefixed, ShapeRFC3881}, []string{SyslogRFC5424, SyslogRFC5424, SyslogBSD, SyslogRFC5424})
	return n
}

// EHXCentral is a network whose gateways post copies of their SOAP
// messages (2 initiating, 6 responding gateways), deferred XCPD answers
// included.
func EHXCentral() XCANetwork {
	n := XCANetwork{
		Name: "ehx-central", Code: "EHX", Arc: 2, Share: 0.4, Feed: FeedSOAP,
		Exceptions: []string{"171.202"}, StopShare: 0.1, NoHumanShare: 0.1,
	}
	xcaGateways(&n, 2,
		[]string{"clean", "unexplained_refuser", "consent_refuser", "busy", "slow_deferred", "runaround"},
		[]string{ShapeDICOM}, []string{SyslogRFC5424})
	return n
}

// findBehaviour returns the behaviour of that name.
func findBehaviour(name string, all []XCABehaviour) (XCABehaviour, bool) {
	for _, b := range all {
		if b.Name == name {
			return b, true
		}
	}
	return XCABehaviour{}, false
}

func (n XCANetwork) initiating() []Gateway {
	var out []Gateway
	for _, g := range n.Gateways {
		if !g.Responding {
			out = append(out, g)
		}
	}
	return out
}

func (n XCANetwork) responding() []Gateway {
	var out []Gateway
	for _, g := range n.Gateways {
		if g.Responding {
			out = append(out, g)
		}
	}
	return out
}

var xcaClasses = []string{
	Fulfilled, Partial, NotFound, RefusedException, RefusedUnjustified,
	ErrorTransient, ErrorPermanent, Unanswered,
}

func validateXCANetwork(where string, n XCANetwork, behaviours []XCABehaviour) []error {
	var errs []error
	if n.Name == "" || n.Code == "" || n.Arc <= 0 {
		errs = append(errs, fmt.Errorf("%s: Name, Code and a positive Arc are required", where))
	}
	if n.Share <= 0 {
		errs = append(errs, fmt.Errorf("%s.Share: %g is not positive", where, n.Share))
	}
	if n.Feed != FeedATNA && n.Feed != FeedSOAP {
		errs = append(errs, fmt.Errorf("%s.Feed: %q is neither %q nor %q", where, n.Feed, FeedATNA, FeedSOAP))
	}
	if len(n.initiating()) == 0 || len(n.responding()) == 0 {
		errs = append(errs, fmt.Errorf("%s.Gateways: needs initiating and responding gateways", where))
	}
	for _, code := range n.Exceptions {
		if _, ok := exceptionNames[code]; !ok {
			errs = append(errs, fmt.Errorf("%s.Exceptions: %q is not a DOMAIN.md exception", where, code))
		}
	}
	seen := map[string]bool{}
	for i, g := range n.Gateways {
		gw := fmt.Sprintf("%s.Gateways[%d]", where, i)
		if g.ID == "" || g.OrgID == "" || g.Host == "" || len(g.Community) <= len("urn:oid:") || !strings.HasPrefix(g.Community, "urn:oid:") {
			errs = append(errs, fmt.Errorf("%s: ID, OrgID, Host and a urn:oid: Community are required", gw))
		}
		if seen[g.ID] {
			errs = append(errs, fmt.Errorf("%s: duplicate ID %q", gw, g.ID))
		}
		seen[g.ID] = true
		if !slices.Contains([]string{ShapeDICOM, ShapeDICOMPrefixed, ShapeRFC3881}, g.Shape) {
			errs = append(errs, fmt.Errorf("%s.Shape: unknown %q", gw, g.Shape))
		}
		if !slices.Contains([]string{SyslogRFC5424, SyslogBSD}, g.Syslog) {
			errs = append(errs, fmt.Errorf("%s.Syslog: unknown %q", gw, g.Syslog))
		}
		if !g.Responding {
			continue
		}
		if g.Weight <= 0 {
			errs = append(errs, fmt.Errorf("%s.Weight: %g is not positive", gw, g.Weight))
		}
		b, ok := findBehaviour(g.Behaviour, behaviours)
		if !ok {
			errs = append(errs, fmt.Errorf("%s.Behaviour: unknown %q", gw, g.Behaviour))
			continue
		}
		errs = append(errs, validateBehaviour(gw, b, len(n.Exceptions) > 0)...)
	}
	return errs
}

func validateBehaviour(where string, b XCABehaviour, exceptions bool) []error {
	var errs []error
	if b.Latency.MedianMs <= 0 || b.Latency.Sigma < 0 {
		errs = append(errs, fmt.Errorf("%s: behaviour %q: latency median must be positive", where, b.Name))
	}
	for _, mix := range [][]ClassWeight{b.Discovery, b.Query, b.Retrieve} {
		var sum float64
		for _, w := range mix {
			if !slices.Contains(xcaClasses, w.Class) || w.Weight < 0 {
				errs = append(errs, fmt.Errorf("%s: behaviour %q: class %q weight %g", where, b.Name, w.Class, w.Weight))
			}
			if w.Class == RefusedException && w.Weight > 0 && !exceptions {
				errs = append(errs, fmt.Errorf("%s: behaviour %q refuses with an exception but the network cites none", where, b.Name))
			}
			sum += w.Weight
		}
		if sum <= 0 {
			errs = append(errs, errors.New(where+": behaviour "+b.Name+": a mix sums to zero"))
		}
	}
	return errs
}
