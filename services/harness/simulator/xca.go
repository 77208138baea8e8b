package simulator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// XCAConfig sets the size, seed, time range and feed defects of a
// simulated cross-community run.
type XCAConfig struct {
	// Journeys is the number of patient journeys (discovery, then query,
	// then retrieve, stopping early when a step fails), default 1000.
	Journeys int
	// Seed makes the run reproducible (default 1).
	Seed int64
	// Start is the first journey's time (default: yesterday 00:00 UTC by
	// Clock); Span is how long journeys keep starting (default 24h).
	Start time.Time
	Span  time.Duration
	Clock func() time.Time
	// Networks defaults to XCANetworks(); Behaviours to XCABehaviours().
	Networks   []XCANetwork
	Behaviours []XCABehaviour

	// LossRate is the chance, per transaction seen by both gateways, that
	// one side's records never reach hinscore (default 0.03; negative = none).
	LossRate float64
	// DuplicateRate is the chance, per record or SOAP copy, that it is sent
	// again a few seconds later with the same bytes (default 0.02).
	DuplicateRate float64
	// LateRate is the chance, per transaction side, that its records are
	// delivered LateMin…LateMax after their time (default 0.02; LateMin 1m,
	// LateMax 10m).
	LateRate float64
	LateMin  time.Duration
	LateMax  time.Duration

	// Rate paces Send at this many messages per second per network (0 =
	// as fast as the connections take them).
	Rate float64
	// ReconnectWithin bounds how long a gateway's connection may stay
	// broken before Send gives up (default 30s; negative = never reconnect).
	ReconnectWithin time.Duration
	// WriteTimeout bounds each write or HTTP exchange (default 10s).
	WriteTimeout time.Duration
}

func (c XCAConfig) withDefaults() XCAConfig {
	if c.Journeys == 0 {
		c.Journeys = 1000
	}
	c.Seed, c.Start, c.Span = runDefaults(c.Seed, c.Start, c.Span, c.Clock)
	if c.Networks == nil {
		c.Networks = XCANetworks()
	}
	if c.Behaviours == nil {
		c.Behaviours = XCABehaviours()
	}
	c.LossRate = rateDefault(c.LossRate, 0.03)
	c.DuplicateRate = rateDefault(c.DuplicateRate, 0.02)
	c.LateRate = rateDefault(c.LateRate, 0.02)
	if c.LateMin == 0 {
		c.LateMin = time.Minute
	}
	if c.LateMax == 0 {
		c.LateMax = 10 * time.Minute
	}
	if c.ReconnectWithin == 0 {
		c.ReconnectWithin = 30 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	return c
}

func (c XCAConfig) validate() error {
	var errs []error
	if c.Journeys < 0 {
		errs = append(errs, fmt.Errorf("Journeys: %d is negative", c.Journeys))
	}
	if c.Span <= 0 {
		errs = append(errs, fmt.Errorf("Span: %s is not positive", c.Span))
	}
	for name, r := range map[string]float64{"LossRate": c.LossRate, "DuplicateRate": c.DuplicateRate, "LateRate": c.LateRate} {
		if r > 0.5 {
			errs = append(errs, fmt.Errorf("%s: %g is above 0.5", name, r))
		}
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("Rate: %g is negative", c.Rate))
	}
	if c.LateMin <= 0 || c.LateMax < c.LateMin {
		errs = append(errs, fmt.Errorf("LateMin, LateMax: %s, %s must be positive and ordered", c.LateMin, c.LateMax))
	}
	if len(c.Networks) == 0 {
		errs = append(errs, errors.New("Networks: none"))
	}
	seen := map[string]bool{}
	for i, n := range c.Networks {
		if seen[n.Name] {
			errs = append(errs, fmt.Errorf("Networks[%d]: duplicate name %q", i, n.Name))
		}
		seen[n.Name] = true
		errs = append(errs, validateXCANetwork(fmt.Sprintf("Networks[%d]", i), n, c.Behaviours)...)
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return compareStrings(a.Error(), b.Error()) })
		return fmt.Errorf("simulator.XCAConfig: %w", errors.Join(errs...))
	}
	return nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// XCATruthRow is what one cross-community transaction was: what hinscore
// must report for it, and which records of it were sent.
type XCATruthRow struct {
	Network string
	Feed    string // FeedATNA or FeedSOAP
	// TransactionID is the simulator's own id of the transaction (the
	// WS-Addressing MessageID of its request); it appears in SOAP copies,
	// not in audits.
	TransactionID string
	Journey       string // all steps of one patient journey share it
	Step          int    // 1 discovery, 2 query, 3 retrieve
	Kind          string // KindPatientDiscovery, KindDocumentQuery, KindDocumentRetrieve
	Transaction   string // "ITI-55", "ITI-38", "ITI-39"

	Requester          string // directory org id of the initiating gateway
	RequesterCommunity string
	Responder          string
	ResponderCommunity string
	Behaviour          string // the responder's

	// Purpose is the canonical purpose ("" when no purpose was carried);
	// PurposeCode is "system|code" of the code sent.
	Purpose     string
	PurposeCode string

	Outcome       string // DOMAIN.md class
	ExceptionCode string // the 171.xxx code a refusal cites
	ErrorCode     string // RegistryError, XCPD code or "timeout"
	// EventOutcome is the audits' EventOutcomeIndicator (-1 on SOAP feeds).
	EventOutcome int

	RequestedAt time.Time
	AnsweredAt  time.Time // zero when unanswered
	LatencyMs   int64     // -1 when unanswered
	// Timed reports whether the feed shows when the request was asked:
	// false for audit records, which carry only when the transaction
	// ended, so hinscore reports no time to fulfil.
	Timed bool
	// RecordedAt is the earliest time any record sent of it carries (the
	// audit's EventDateTime, or the request's wsu:Created).
	RecordedAt time.Time
	// Sides is which gateways' records were sent: SideInitiating,
	// SideResponding or SideBoth. LateSides lists the sides delivered
	// minutes late ("" none); Duplicates counts the re-sent copies.
	Sides      string
	LateSides  string
	Duplicates int
	// Deferred marks an XCPD answer sent in deferred mode.
	Deferred bool
	// Patient is the CX asked for, "<id>^^^&<oid>&ISO".
	Patient   string
	Runaround bool
	Documents int // documents asked for (retrieve) or returned (query)
}

// Answered reports whether the transaction got an answer.
func (r XCATruthRow) Answered() bool { return !r.AnsweredAt.IsZero() }

// XCAMessage is one record (a syslog MSG carrying an AuditMessage) or one
// SOAP copy, as one gateway sends it.
type XCAMessage struct {
	// Time is the message's own time (the audit's EventDateTime, the
	// SOAP message's wsu:Created); DeliverAt is when the gateway sends it
	// (Time, later for a late or re-sent one). Feeds are sorted by DeliverAt.
	Time      time.Time
	DeliverAt time.Time
	Network   string
	Gateway   string // the sending gateway's ID
	Side      string // SideInitiating or SideResponding
	// TransactionID links the message to its truth row.
	TransactionID string
	// What: "audit", "audit-deferred-request" and "audit-deferred-response"
	// (the two records of XCPD deferred mode), "request", "response", "ack" (the responding gateway
	// accepting a deferred query), "deferred-response",
	// "deferred-response-ack" (the initiating gateway accepting it).
	What      string
	Raw       []byte
	Duplicate bool
	Late      bool
}

// IsAudit reports whether m is an audit record (of a whole transaction, or
// of one part of it in XCPD deferred mode) rather than a SOAP copy.
func (m XCAMessage) IsAudit() bool { return strings.HasPrefix(m.What, "audit") }

// xcaFeed is what one gateway sends, in delivery order.
type xcaFeed struct {
	network XCANetwork
	gateway Gateway
	msgs    []XCAMessage
}

// XCAPlan is a generated cross-community run: every record and copy each
// gateway sends, and the truth of every transaction.
type XCAPlan struct {
	cfg   XCAConfig
	feeds []xcaFeed
	rows  []XCATruthRow
}

// GenerateXCA builds the whole run in memory. The same XCAConfig gives
// the same plan byte for byte.
func GenerateXCA(cfg XCAConfig) (*XCAPlan, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x6a09e667f3bcc908))
	g := &xcaGenerator{
		generator: &generator{cfg: Config{Start: cfg.Start, Span: cfg.Span}, rng: rng},
		x:         cfg,
		// Feed defects draw from their own stream, so that their rates
		// change nothing else in the plan.
		def: rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0xbb67ae8584caa73b)),
	}
	return g.run(), nil
}

// Requests returns the truth row of every transaction, in request-time order.
func (p *XCAPlan) Requests() []XCATruthRow { return append([]XCATruthRow(nil), p.rows...) }

// Networks returns the network names in configuration order.
func (p *XCAPlan) Networks() []string {
	out := make([]string, len(p.cfg.Networks))
	for i, n := range p.cfg.Networks {
		out[i] = n.Name
	}
	return out
}

// Network returns a network's profile.
func (p *XCAPlan) Network(name string) (XCANetwork, bool) {
	for _, n := range p.cfg.Networks {
		if n.Name == name {
			return n, true
		}
	}
	return XCANetwork{}, false
}

// Messages returns what a gateway sends, in delivery order (nil if unknown).
func (p *XCAPlan) Messages(network, gateway string) []XCAMessage {
	for _, f := range p.feeds {
		if f.network.Name == network && f.gateway.ID == gateway {
			return append([]XCAMessage(nil), f.msgs...)
		}
	}
	return nil
}

// AllMessages returns every message of a network, gateway after gateway.
func (p *XCAPlan) AllMessages(network string) []XCAMessage {
	var out []XCAMessage
	for _, f := range p.feeds {
		if f.network.Name == network {
			out = append(out, f.msgs...)
		}
	}
	return out
}

// Start is the first journey's time.
func (p *XCAPlan) Start() time.Time { return p.cfg.Start }
