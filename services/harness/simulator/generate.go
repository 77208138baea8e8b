package simulator

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Config sets the size, seed and time range of a simulated run.
type Config struct {
	// Requests is the total number of requests across networks (default
	// 20000); with patterns, of exchanges: a batch's further entries and a
	// continued query's continuation are requests of the truth too.
	Requests int
	// Seed makes the run reproducible (default 1).
	Seed int64
	// Start is the first request time (default: yesterday 00:00 UTC by Clock).
	Start time.Time
	// Span is how long requests keep arriving (default 24h); answers may
	// arrive after Start+Span.
	Span time.Duration
	// MalformedRate is the chance, per valid message, of an extra malformed
	// frame that hinscore must reject (default 0.002; negative = none).
	MalformedRate float64
	// NotificationRate is the number of ADT^A04 notifications per request
	// (default 0.05; negative = none).
	NotificationRate float64
	// Networks defaults to DefaultNetworks().
	Networks []NetworkProfile

	// Clock gives "now" for the default Start only; nil = time.Now.
	Clock func() time.Time
	// Window is the number of frames in flight per connection (default 128).
	Window int
	// MaxRetries bounds re-sends of a valid message that was rejected (default 3).
	MaxRetries int
	// AckTimeout bounds the wait for each acknowledgement (default 30s);
	// when it passes, the connection is replaced and the frames without an
	// acknowledgement are re-sent.
	AckTimeout time.Duration
	// ReconnectWithin bounds how long a network's connection may stay
	// broken, or connected but silent, before Send gives up (default 60s,
	// long enough for a restarted ingest; negative = never reconnect).
	ReconnectWithin time.Duration

	// DuplicateRate is the chance, per valid message, that the network
	// forwards an exact copy of it again a little later (default 0.01;
	// negative = none). Copies have the same bytes, so they never change
	// the truth.
	DuplicateRate float64
	// OutOfOrderRate is the chance, per answer that comes within
	// OutOfOrderMax of its request, that it is delivered before the request
	// (default 0.01; negative = none).
	OutOfOrderRate float64
	// OutOfOrderMax bounds, in event time, how far an answer can overtake
	// its request (default 5s, at most LinkerLateness/3 so that the linker
	// always still holds the answer when the request comes; negative = no
	// answer overtakes its request).
	OutOfOrderMax time.Duration
	// RunaroundShare is the share of requests that belong to runaround
	// journeys: one patient asked for again and again across a network's
	// responders, never fulfilled (default 0.03; negative = none).
	RunaroundShare float64

	// Rate paces Send at this many frames per second in total, split among
	// networks in proportion to their feeds (0 = as fast as the
	// acknowledgements allow). NetworkRate paces each network at its own
	// frames per second instead; at most one of them may be set.
	Rate        float64
	NetworkRate float64
	// Progress, when set, receives a progress line every ProgressEvery
	// (default 2s) while Send runs, and a last one at its end.
	Progress      io.Writer
	ProgressEvery time.Duration
	// FHIRToken is the bearer token of the FHIR networks' POSTs.
	FHIRToken string
	// CrossNetwork, when its Share is set, adds exchanges between a
	// requester of one network and a responder of another, carried by both
	// networks' feeds (crossnet.go); zero = none, and the plan is the same
	// as without the field.
	CrossNetwork CrossNetwork

	// Acked, when set, is called for every acknowledgement Send reads, with
	// the wall-clock time it arrived (e.g. to measure an answer's way to
	// its outcome row). It is called from one goroutine per network.
	Acked func(network string, m Message, accepted bool, at time.Time)
}

func (c Config) withDefaults() Config {
	if c.Requests == 0 {
		c.Requests = 20000
	}
	c.Seed, c.Start, c.Span = runDefaults(c.Seed, c.Start, c.Span, c.Clock)
	if c.MalformedRate == 0 {
		c.MalformedRate = 0.002
	}
	if c.MalformedRate < 0 {
		c.MalformedRate = 0
	}
	if c.NotificationRate == 0 {
		c.NotificationRate = 0.05
	}
	if c.NotificationRate < 0 {
		c.NotificationRate = 0
	}
	if c.Networks == nil {
		c.Networks = DefaultNetworks()
	}
	if c.Window == 0 {
		c.Window = 128
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 3
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 30 * time.Second
	}
	if c.ReconnectWithin == 0 {
		c.ReconnectWithin = 60 * time.Second
	}
	c.DuplicateRate = rateDefault(c.DuplicateRate, 0.01)
	c.OutOfOrderRate = rateDefault(c.OutOfOrderRate, 0.01)
	c.RunaroundShare = rateDefault(c.RunaroundShare, 0.03)
	switch {
	case c.OutOfOrderMax == 0:
		c.OutOfOrderMax = 5 * time.Second
	case c.OutOfOrderMax < 0:
		c.OutOfOrderMax = 0
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 2 * time.Second
	}
	return c
}

// runDefaults gives a run its default seed (1), start (yesterday 00:00
// UTC by clock, or time.Now) and span (24h); the start is kept to the
// millisecond, the precision of every message's time.
func runDefaults(seed int64, start time.Time, span time.Duration, clock func() time.Time) (int64, time.Time, time.Duration) {
	if seed == 0 {
		seed = 1
	}
	if start.IsZero() {
		now := time.Now
		if clock != nil {
			now = clock
		}
		start = now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	}
	if span == 0 {
		span = 24 * time.Hour
	}
	return seed, start.UTC().Truncate(time.Millisecond), span
}

// rateDefault applies a rate's default to 0 and turns a negative rate off.
func rateDefault(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

func (c Config) validate() error {
	var errs []error
	if c.Requests < 0 {
		errs = append(errs, fmt.Errorf("Requests: %d is negative", c.Requests))
	}
	if c.Span < 0 {
		errs = append(errs, fmt.Errorf("Span: %s is negative", c.Span))
	}
	if c.MalformedRate > 0.5 {
		errs = append(errs, fmt.Errorf("MalformedRate: %g is above 0.5", c.MalformedRate))
	}
	if c.NotificationRate > 10 {
		errs = append(errs, fmt.Errorf("NotificationRate: %g is above 10", c.NotificationRate))
	}
	if c.Window < 1 {
		errs = append(errs, fmt.Errorf("Window: %d is below 1", c.Window))
	}
	if c.DuplicateRate > 0.5 {
		errs = append(errs, fmt.Errorf("DuplicateRate: %g is above 0.5", c.DuplicateRate))
	}
	if c.OutOfOrderRate > 1 {
		errs = append(errs, fmt.Errorf("OutOfOrderRate: %g is above 1", c.OutOfOrderRate))
	}
	if c.OutOfOrderMax > LinkerLateness/3 || (c.OutOfOrderMax > 0 && c.OutOfOrderMax < time.Millisecond) {
		errs = append(errs, fmt.Errorf("OutOfOrderMax: %s is outside 1ms…%s (the linker's lateness / 3)", c.OutOfOrderMax, LinkerLateness/3))
	}
	if c.RunaroundShare > 0.5 {
		errs = append(errs, fmt.Errorf("RunaroundShare: %g is above 0.5", c.RunaroundShare))
	}
	if c.Rate < 0 || c.NetworkRate < 0 {
		errs = append(errs, fmt.Errorf("Rate, NetworkRate: %g, %g must not be negative", c.Rate, c.NetworkRate))
	}
	if c.Rate > 0 && c.NetworkRate > 0 {
		errs = append(errs, errors.New("Rate, NetworkRate: set one of them, not both"))
	}
	if c.ProgressEvery < 0 {
		errs = append(errs, fmt.Errorf("ProgressEvery: %s is negative", c.ProgressEvery))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("MaxRetries: %d is negative", c.MaxRetries))
	}
	if len(c.Networks) == 0 {
		errs = append(errs, errors.New("Networks: none"))
	}
	seen := map[string]bool{}
	for i, n := range c.Networks {
		where := fmt.Sprintf("Networks[%d]", i)
		if n.Name == "" || n.Code == "" {
			errs = append(errs, fmt.Errorf("%s: Name and Code are required", where))
		}
		if seen[n.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate name %q", where, n.Name))
		}
		seen[n.Name] = true
		if n.Share <= 0 {
			errs = append(errs, fmt.Errorf("%s.Share: %g is not positive", where, n.Share))
		}
		if len(n.Requesters) == 0 || len(n.Responders) == 0 {
			errs = append(errs, fmt.Errorf("%s: needs requesters and responders", where))
		}
		if n.Latency.MedianMs <= 0 || n.Latency.Sigma < 0 {
			errs = append(errs, fmt.Errorf("%s.Latency: median must be positive, sigma not negative", where))
		}
		var sum float64
		for _, w := range n.Mix {
			if !slices.Contains(classOrder[:], w.Class) {
				errs = append(errs, fmt.Errorf("%s.Mix: unknown class %q", where, w.Class))
			}
			if w.Weight < 0 {
				errs = append(errs, fmt.Errorf("%s.Mix: negative weight for %q", where, w.Class))
			}
			sum += w.Weight
			if w.Class == RefusedException && w.Weight > 0 && len(n.Exceptions) == 0 {
				errs = append(errs, fmt.Errorf("%s.Exceptions: refused_exception needs at least one code", where))
			}
		}
		if sum <= 0 {
			errs = append(errs, fmt.Errorf("%s.Mix: weights sum to %g", where, sum))
		}
		errs = append(errs, validateResponders(where, n)...)
		for ri, r := range n.ResponderProfiles {
			errs = append(errs, validateEpisodes(fmt.Sprintf("%s.ResponderProfiles[%d]", where, ri), n, r, c.Span)...)
		}
		errs = append(errs, validatePatterns(where, n)...)
		for _, code := range n.Exceptions {
			if _, ok := exceptionNames[code]; !ok {
				errs = append(errs, fmt.Errorf("%s.Exceptions: %q is not a DOMAIN.md exception", where, code))
			}
		}
	}
	errs = append(errs, c.CrossNetwork.validate(c.Networks)...)
	if len(errs) > 0 {
		return fmt.Errorf("simulator.Config: %w", errors.Join(errs...))
	}
	return nil
}

// MessageKind says what a generated frame is.
type MessageKind int

const (
	KindRequest MessageKind = iota
	KindAnswer
	KindNotification
	KindMalformed
	// KindCancel is a requester's withdrawal of its request (an order's
	// ORC-1 CA, a Task cancelled).
	KindCancel
)

func (k MessageKind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindAnswer:
		return "answer"
	case KindNotification:
		return "notification"
	case KindMalformed:
		return "malformed"
	case KindCancel:
		return "cancel"
	}
	return fmt.Sprintf("MessageKind(%d)", int(k))
}

// Message is one frame of a network's feed.
type Message struct {
	// Time is the message's event time (MSH-7).
	Time time.Time
	// DeliverAt is the event-time position at which the network forwards
	// it: Time, except for an answer that overtakes its request (earlier)
	// and an exact duplicate (later than the original). Feeds are sorted
	// by DeliverAt.
	DeliverAt time.Time
	Kind      MessageKind
	ControlID string // MSH-10 ("" for malformed frames)
	Raw       []byte // the HL7 message, segments ended by CR
	// Duplicate marks an exact re-sent copy of an earlier message of the
	// feed (same bytes): hinscore stores it once.
	Duplicate bool
	// CorrelationID is the X-Correlation-ID a FHIR feed sends with a batch
	// or transaction and its response ("" otherwise).
	CorrelationID string
}

// TruthRow is the intended outcome of one request.
type TruthRow struct {
	Network       string
	ControlID     string
	QueryTag      string
	Requester     string // MSH-4 facility of the request
	Responder     string // MSH-6 facility of the request
	Outcome       string // DOMAIN.md class name
	ExceptionCode string // cited 171.xxx code, or redirect-portal / redirect-fax
	RequestedAt   time.Time
	AnsweredAt    time.Time // zero when unanswered
	LatencyMs     int64     // -1 when unanswered
	// Patient is the identifier asked for, "<mrn>^^^<authority>" (hinscore
	// turns it into a token).
	Patient string
	// Runaround marks a request of a runaround journey: the same patient
	// asked for again and again across responders without fulfilment.
	Runaround bool
	// OutOfOrder marks a request whose answer is delivered before it.
	OutOfOrder bool

	// Kind is the request kind (patient_query, document_query, referral,
	// order, record_request), Format the feed's (hl7v2, fhir), Pattern how
	// request and answers travel (PatternQBP ...).
	Kind, Format, Pattern string
	// Behaviour is the responder's behaviour ("" without a profile).
	Behaviour string
	// AcknowledgedAt is the first answer's time, interim or final (zero
	// when nothing answered).
	AcknowledgedAt time.Time
	// RecordCount is the number of records the deciding answer returns.
	RecordCount int
	// SLA is the policy SLA of the kind the truth assumes.
	SLA time.Duration
	// CancelledAt is when the requester withdrew a cancelled request (its
	// AnsweredAt stays zero: a cancel answers nothing).
	CancelledAt time.Time
	// ExceptionCheck is what the checks of cited exceptions should find of
	// a refusal citing 171.205 in a PerformanceEpisode: CheckFlag (cited
	// while serving) or CheckClear (a real outage); "" for every other
	// request.
	ExceptionCheck string
}

// Acknowledged reports whether any answer, interim or final, came.
func (r TruthRow) Acknowledged() bool { return !r.AcknowledgedAt.IsZero() }

// Answered reports whether the request gets an answer.
func (r TruthRow) Answered() bool { return !r.AnsweredAt.IsZero() }

type feed struct {
	profile NetworkProfile
	msgs    []Message
}

// Plan is a generated run: every message of every network and the truth.
type Plan struct {
	cfg   Config
	feeds []feed
	rows  []TruthRow
	// cross are the crossing exchanges (CrossNetwork), not among rows.
	cross []CrossRow
}

// Generate builds the whole run in memory. The same Config gives the same
// plan byte for byte.
func Generate(cfg Config) (*Plan, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x9e3779b97f4a7c15))
	// Duplicates draw from a stream of their own, so that their rate
	// changes nothing else in the plan.
	dup := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x3c6ef372fe94f82b))
	g := &generator{cfg: cfg, rng: rng, dup: dup}
	p := g.run()
	if cfg.CrossNetwork.Share > 0 {
		crossing(cfg, p)
	}
	return p, nil
}

type generator struct {
	cfg Config
	rng *rand.Rand
	dup *rand.Rand
}

// slot is one request to generate: its time and network, and for a
// runaround journey the patient, requester, responder and class it keeps.
type slot struct {
	at        time.Time
	network   int
	runaround *journeyStep
	// from is the requester of a crossing exchange: an organisation of
	// another network (CrossNetwork); nil = one of the network's own.
	from *Org
	// episode is an added request of a PerformanceEpisode.
	episode *episodeStep
}

type journeyStep struct {
	mrn       string
	requester Org
	responder Org
	class     string
}

// runaroundMix is how a runaround journey's requests end: never fulfilled.
var runaroundMix = []ClassWeight{
	{RefusedUnjustified, 0.35}, {Redirected, 0.35}, {Unanswered, 0.15}, {NotFound, 0.15},
}

func (g *generator) run() *Plan {
	cfg := g.cfg
	p := &Plan{cfg: cfg, feeds: make([]feed, len(cfg.Networks))}
	shares := make([]float64, len(cfg.Networks))
	for i, n := range cfg.Networks {
		p.feeds[i].profile = n
		shares[i] = n.Share
	}
	slots := g.journeys(shares)
	for len(slots) < cfg.Requests {
		slots = append(slots, slot{at: g.requestTime(), network: g.pick(shares)})
	}
	slots = append(slots, g.episodes()...)
	// Sorted by time so control ids increase with time; stable so that the
	// order of equal times does not depend on the sort algorithm.
	slices.SortStableFunc(slots, func(a, b slot) int { return a.at.Compare(b.at) })

	seq := make([]int, len(cfg.Networks))
	for _, s := range slots {
		seq[s.network]++
		prof := cfg.Networks[s.network]
		if len(prof.Patterns) > 0 {
			rows, msgs := g.patterned(prof, seq[s.network], s)
			p.rows = append(p.rows, rows...)
			p.feeds[s.network].msgs = append(p.feeds[s.network].msgs, msgs...)
			continue
		}
		row, msgs := g.request(prof, seq[s.network], s)
		p.rows = append(p.rows, row)
		p.feeds[s.network].msgs = append(p.feeds[s.network].msgs, msgs...)
	}
	for i := range p.feeds {
		f := &p.feeds[i]
		if !f.profile.fhir() {
			// ADT notifications and broken frames are HL7 v2's.
			f.msgs = append(f.msgs, g.notifications(f.profile, seq[i])...)
		}
		slices.SortStableFunc(f.msgs, func(a, b Message) int { return a.DeliverAt.Compare(b.DeliverAt) })
		if !f.profile.fhir() {
			f.msgs = append(f.msgs, g.malformed(f.profile, f.msgs)...)
		}
		f.msgs = append(f.msgs, g.duplicates(f.msgs)...)
		// Stable: a message and its malformed neighbour keep their order.
		slices.SortStableFunc(f.msgs, func(a, b Message) int { return a.DeliverAt.Compare(b.DeliverAt) })
	}
	return p
}

// journeys draws the runaround journeys: 3 to 6 requests for one patient
// by one requester, to the network's responders in turn, 20 minutes to 3
// hours apart, none fulfilled.
func (g *generator) journeys(shares []float64) []slot {
	budget := int(float64(g.cfg.Requests) * g.cfg.RunaroundShare)
	// Runaround journeys are HL7 v2 patient queries: FHIR networks have none.
	shares = slices.Clone(shares)
	hl7 := false
	for i, n := range g.cfg.Networks {
		if n.fhir() {
			shares[i] = 0
		}
		hl7 = hl7 || shares[i] > 0
	}
	if !hl7 {
		return nil
	}
	var out []slot
	for budget-len(out) >= 3 {
		ni := g.pick(shares)
		p := g.cfg.Networks[ni]
		steps := min(3+g.rng.IntN(4), budget-len(out))
		mrn := fmt.Sprintf("9%06d", g.rng.IntN(1_000_000))
		req := p.Requesters[g.rng.IntN(len(p.Requesters))]
		first := g.rng.IntN(len(p.Responders))
		at := g.requestTime()
		journey := len(out)
		for i := range steps {
			out = append(out, slot{at: at, network: ni, runaround: &journeyStep{
				mrn: mrn, requester: req,
				responder: p.Responders[(first+i)%len(p.Responders)],
				class:     g.pickClass(runaroundMix),
			}})
			at = at.Add(20*time.Minute + time.Duration(g.rng.Int64N(int64(160*time.Minute))))
		}
		g.withinSpan(out[journey:])
	}
	return out
}

// withinSpan moves a journey's requests into [Start, Start+Span), as every
// request of a plan is: earlier as a whole when it would run past the end,
// and pressed together when it is longer than the span. A request after
// the span would be in the future of a plan that ends now (the default),
// still waiting for its deadline when the run is checked.
func (g *generator) withinSpan(steps []slot) {
	first, last := steps[0].at, steps[len(steps)-1].at
	end := g.cfg.Start.Add(g.cfg.Span)
	if last.Before(end) {
		return
	}
	room := g.cfg.Span - time.Millisecond
	length := last.Sub(first)
	for i := range steps {
		off := steps[i].at.Sub(first)
		if length > room {
			off = time.Duration(float64(off) * float64(room) / float64(length)).Truncate(time.Millisecond)
			steps[i].at = g.cfg.Start.Add(off)
			continue
		}
		steps[i].at = end.Add(-time.Millisecond - length + off)
	}
}

// requestTime draws a time in [Start, Start+Span) from a daily load curve
// that peaks late morning UTC and never drops to zero at night, with
// weekends at under half the weekday load.
func (g *generator) requestTime() time.Time {
	for {
		off := time.Duration(g.rng.Int64N(int64(g.cfg.Span)/int64(time.Millisecond)+1)) * time.Millisecond
		if off >= g.cfg.Span && g.cfg.Span > 0 {
			continue
		}
		at := g.cfg.Start.Add(off)
		h := float64(at.Hour()) + float64(at.Minute())/60
		load := 0.3 + math.Exp(-math.Pow((h-11)/3.5, 2))
		if wd := at.Weekday(); wd == time.Saturday || wd == time.Sunday {
			load *= 0.45
		}
		if g.rng.Float64()*1.3 < load {
			return at
		}
	}
}

func (g *generator) pick(weights []float64) int {
	var sum float64
	for _, w := range weights {
		sum += w
	}
	x := g.rng.Float64() * sum
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

func (g *generator) pickClass(mix []ClassWeight) string {
	w := make([]float64, len(mix))
	for i, m := range mix {
		w[i] = m.Weight
	}
	return mix[g.pick(w)].Class
}

// mixAt is a profile's class mix at time at: its suspect classes scaled
// by the network's drift since Start.
func (g *generator) mixAt(p NetworkProfile, at time.Time) []ClassWeight {
	return drift(p.Mix, p.DriftPerMonth, at.Sub(g.cfg.Start).Hours()/(30*24))
}

// suspectClass reports whether a class counts as suspected blocking
// whatever its timing.
func suspectClass(class string) bool {
	return class == RefusedUnjustified || class == Redirected || class == Unanswered
}

// lognormalMs draws from the profile's latency, kept within [lo, hi] by
// redrawing (a bounded number of times, then clamping).
func (g *generator) lognormalMs(d LogNormal, lo, hi float64) int64 {
	v := 0.0
	for range 32 {
		v = d.MedianMs * math.Exp(d.Sigma*g.rng.NormFloat64())
		if v >= lo && v <= hi {
			return int64(v)
		}
	}
	return int64(math.Min(math.Max(v, lo), hi))
}

func (g *generator) lateMs(beyondShare float64) int64 {
	return g.lateMsFor(QuerySLA, beyondShare)
}

func (g *generator) request(p NetworkProfile, n int, s slot) (TruthRow, []Message) {
	var q query
	q.network, q.at = p, s.at
	q.controlID = fmt.Sprintf("%s%08d", p.Code, n)
	q.queryTag = fmt.Sprintf("%sQ%08d", p.Code, n)
	rp, class, check := g.parties(p, s, &q)
	lat, beyond, exceptions := p.Latency, p.LateBeyondShare, p.Exceptions
	if rp != nil {
		lat, beyond = rp.latency(p), rp.lateBeyondShare(p)
		if len(rp.Exceptions) > 0 {
			exceptions = rp.Exceptions
		}
	}
	row := TruthRow{
		Network: p.Name, ControlID: q.controlID, QueryTag: q.queryTag,
		Requester: q.requester.Facility, Responder: q.responder.Facility,
		Outcome: class, RequestedAt: s.at, LatencyMs: -1,
		Patient: q.mrn + "^^^" + q.authority(), Runaround: s.runaround != nil,
		Kind: KindPatientQuery, Format: FormatHL7v2, Pattern: PatternQBP, SLA: QuerySLA,
	}
	if rp != nil {
		row.Behaviour = rp.Behaviour
	}
	if check != "" {
		exceptions, row.ExceptionCheck = []string{PerformanceCode}, check
	}
	msgs := []Message{{Time: s.at, DeliverAt: s.at, Kind: KindRequest, ControlID: q.controlID, Raw: q.request()}}
	if class == Unanswered {
		return row, msgs
	}
	// Anything but a late answer arrives within the SLA, clear of it.
	latency := g.lognormalMs(lat, 50, float64((QuerySLA - 1500*time.Millisecond).Milliseconds()))
	if class == FulfilledLate {
		latency = g.lateMs(beyond)
	}
	a := g.answerFor(class, exceptions, p.ExceptionTextShare)
	row.ExceptionCode = a.cited()
	answeredAt := s.at.Add(time.Duration(latency) * time.Millisecond)
	row.AnsweredAt, row.AcknowledgedAt = answeredAt, answeredAt
	row.LatencyMs = latency
	if class == Fulfilled || class == FulfilledLate {
		row.RecordCount = 1
	}
	deliver := answeredAt
	// A quick answer may overtake its request on the way (another route, a
	// retry of the request's forwarding): by at most OutOfOrderMax of
	// event time, so the linker, which holds an answer for its lateness,
	// still links it.
	if bound := g.cfg.OutOfOrderMax; bound > 0 && time.Duration(latency)*time.Millisecond <= bound && g.rng.Float64() < g.cfg.OutOfOrderRate {
		deliver = s.at.Add(-time.Millisecond - time.Duration(g.rng.Int64N(int64(bound/time.Millisecond)))*time.Millisecond)
		row.OutOfOrder = true
	}
	msgs = append(msgs, Message{
		Time: answeredAt, DeliverAt: deliver, Kind: KindAnswer, ControlID: q.controlID + "R",
		Raw: q.answer(a, answeredAt),
	})
	return row, msgs
}

// parties draws a request's requester, responder and patient into q, and
// returns the responder's profile (nil = the network's behaviour), the
// class the request ends in and what the exception checks should find of
// it (CheckFlag, CheckClear or ""). A request to a responder in one of its
// outages is refused citing 171.205 whatever its class was.
func (g *generator) parties(p NetworkProfile, s slot, q *query) (rp *ResponderProfile, class, check string) {
	switch {
	case s.runaround != nil:
		j := s.runaround
		q.requester, q.responder, q.mrn, class = j.requester, j.responder, j.mrn, j.class
	case s.episode != nil:
		e := s.episode
		rp, q.requester, class, check = e.profile, e.requester, e.class, e.check
		q.responder = responderOrg(p, rp.Facility)
		q.mrn = fmt.Sprintf("%07d", g.rng.IntN(10_000_000))
	default:
		q.requester = p.Requesters[g.rng.IntN(len(p.Requesters))]
		if s.from != nil {
			q.requester = *s.from
		}
		if len(p.ResponderProfiles) > 0 {
			rp = &p.ResponderProfiles[g.pick(responderWeights(p))]
			q.responder = responderOrg(p, rp.Facility)
			class = g.pickClass(rp.mixFor(g.cfg.Start, s.at, q.requester))
		} else {
			q.responder = p.Responders[g.rng.IntN(len(p.Responders))]
			class = g.pickClass(g.mixAt(p, s.at))
		}
		q.mrn = fmt.Sprintf("%07d", g.rng.IntN(10_000_000))
	}
	if rp != nil && s.runaround == nil && rp.inOutage(g.cfg.Start, s.at) {
		class, check = RefusedException, CheckClear
	}
	return rp, class, check
}

// answerFor draws how a responder words an answer of class: the
// exception or redirect it cites, the refusal's wording, the error code,
// the patient it returns.
func (g *generator) answerFor(class string, exceptions []string, textShare float64) answer {
	a := answer{class: class}
	switch class {
	case RefusedException:
		a.code = exceptions[g.rng.IntN(len(exceptions))]
		a.textOnly = g.rng.Float64() < textShare
	case RefusedUnjustified:
		a.variant = g.rng.IntN(len(unjustifiedTexts))
	case Redirected:
		a.code = "redirect-portal"
		if g.rng.Float64() < 0.3 {
			a.code = "redirect-fax"
		}
	case ErrorTransient:
		a.errCode = transientCodes[g.rng.IntN(len(transientCodes))]
	case ErrorPermanent:
		a.errCode = permanentCodes[g.rng.IntN(len(permanentCodes))]
	case Fulfilled, FulfilledLate:
		a.dob = fmt.Sprintf("%04d%02d%02d", 1930+g.rng.IntN(90), 1+g.rng.IntN(12), 1+g.rng.IntN(28))
		a.sex = string("FM"[g.rng.IntN(2)])
	}
	return a
}

func (g *generator) notifications(p NetworkProfile, requests int) []Message {
	want := float64(requests) * g.cfg.NotificationRate
	n := int(want)
	if g.rng.Float64() < want-float64(n) {
		n++
	}
	out := make([]Message, 0, n)
	for i := range n {
		at := g.requestTime()
		org := p.Responders[g.rng.IntN(len(p.Responders))]
		id := fmt.Sprintf("%sN%07d", p.Code, i+1)
		mrn := fmt.Sprintf("%07d", g.rng.IntN(10_000_000))
		out = append(out, Message{Time: at, DeliverAt: at, Kind: KindNotification, ControlID: id, Raw: notification(p, org, id, mrn, at)})
	}
	return out
}

// duplicates adds exact copies of some valid messages, forwarded again up
// to 5 s (event time) after the original: a network retrying a forward
// whose acknowledgement it missed, or forwarding the same message twice.
func (g *generator) duplicates(valid []Message) []Message {
	var out []Message
	for _, m := range valid {
		if m.Kind == KindMalformed || g.dup.Float64() >= g.cfg.DuplicateRate {
			continue
		}
		d := m
		d.Duplicate = true
		d.DeliverAt = m.DeliverAt.Add(time.Duration(g.dup.Int64N(5000)+1) * time.Millisecond)
		out = append(out, d)
	}
	return out
}

// malformed adds, next to some valid messages, a frame hinscore must reject.
func (g *generator) malformed(p NetworkProfile, valid []Message) []Message {
	var out []Message
	for _, m := range valid {
		// Copies are skipped: the malformed frames do not depend on them.
		if m.Duplicate || g.rng.Float64() >= g.cfg.MalformedRate {
			continue
		}
		i := len(out) + 1
		out = append(out, Message{
			Time: m.Time.Add(time.Millisecond), DeliverAt: m.DeliverAt.Add(time.Millisecond), Kind: KindMalformed,
			Raw: malformedFrame(p, g.rng.IntN(malformedKinds), i, m.Time),
		})
	}
	return out
}
