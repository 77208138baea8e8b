package simulator

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Config sets the size, seed and time range of a simulated run.
type Config struct {
	// Requests is the total number of requests across networks (default 20000).
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
	// AckTimeout bounds the wait for each acknowledgement (default 30s).
	AckTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Requests == 0 {
		c.Requests = 20000
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Start.IsZero() {
		now := time.Now
		if c.Clock != nil {
			now = c.Clock
		}
		c.Start = now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	}
	c.Start = c.Start.UTC().Truncate(time.Millisecond)
	if c.Span == 0 {
		c.Span = 24 * time.Hour
	}
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
	return c
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
		for _, code := range n.Exceptions {
			if _, ok := exceptionNames[code]; !ok {
				errs = append(errs, fmt.Errorf("%s.Exceptions: %q is not a DOMAIN.md exception", where, code))
			}
		}
	}
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
	}
	return fmt.Sprintf("MessageKind(%d)", int(k))
}

// Message is one frame of a network's feed.
type Message struct {
	Time      time.Time
	Kind      MessageKind
	ControlID string // MSH-10 ("" for malformed frames)
	Raw       []byte // the HL7 message, segments ended by CR
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
}

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
}

// Generate builds the whole run in memory. The same Config gives the same
// plan byte for byte.
func Generate(cfg Config) (*Plan, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x9e3779b97f4a7c15))
	g := &generator{cfg: cfg, rng: rng}
	return g.run(), nil
}

type generator struct {
	cfg Config
	rng *rand.Rand
}

func (g *generator) run() *Plan {
	cfg := g.cfg
	p := &Plan{cfg: cfg, feeds: make([]feed, len(cfg.Networks))}
	for i, n := range cfg.Networks {
		p.feeds[i].profile = n
	}
	// Request times first, sorted, so control ids increase with time.
	times := make([]time.Time, cfg.Requests)
	for i := range times {
		times[i] = g.requestTime()
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })

	shares := make([]float64, len(cfg.Networks))
	for i, n := range cfg.Networks {
		shares[i] = n.Share
	}
	seq := make([]int, len(cfg.Networks))
	for _, at := range times {
		ni := g.pick(shares)
		seq[ni]++
		row, msgs := g.request(cfg.Networks[ni], seq[ni], at)
		p.rows = append(p.rows, row)
		p.feeds[ni].msgs = append(p.feeds[ni].msgs, msgs...)
	}
	for i := range p.feeds {
		f := &p.feeds[i]
		f.msgs = append(f.msgs, g.notifications(f.profile, seq[i])...)
		f.msgs = append(f.msgs, g.malformed(f.profile, f.msgs)...)
		// Stable: a request and its malformed neighbour keep their order.
		slices.SortStableFunc(f.msgs, func(a, b Message) int { return a.Time.Compare(b.Time) })
	}
	return p
}

// requestTime draws a time in [Start, Start+Span) from a daily load curve
// that peaks late morning UTC and never drops to zero at night.
func (g *generator) requestTime() time.Time {
	for {
		off := time.Duration(g.rng.Int64N(int64(g.cfg.Span)/int64(time.Millisecond)+1)) * time.Millisecond
		if off >= g.cfg.Span && g.cfg.Span > 0 {
			continue
		}
		at := g.cfg.Start.Add(off)
		h := float64(at.Hour()) + float64(at.Minute())/60
		load := 0.3 + math.Exp(-math.Pow((h-11)/3.5, 2))
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

// Latency boundaries the linker cares about; late answers keep 1.5 s away
// from each so that the class cannot flip on rounding.
var lateBoundaries = [...]time.Duration{
	QuerySLA, QuerySLA + QueryGrace, QuerySLA + QueryGrace + LinkerLateness, 3 * QuerySLA,
}

func (g *generator) lateMs(p NetworkProfile) int64 {
	const margin = 1500
	for {
		var v float64
		if g.rng.Float64() < p.LateBeyondShare {
			// After the linker has already given up: reported unanswered
			// first, then re-issued as fulfilled_late.
			lo := float64((QuerySLA + QueryGrace + LinkerLateness).Milliseconds())
			v = lo + float64(g.lognormalMs(LogNormal{MedianMs: 90_000, Sigma: 0.7}, margin, 900_000))
		} else {
			lo := float64(QuerySLA.Milliseconds())
			hi := float64((QuerySLA + QueryGrace + LinkerLateness).Milliseconds())
			v = lo + g.rng.Float64()*(hi-lo)
		}
		ok := true
		for _, b := range lateBoundaries {
			if math.Abs(v-float64(b.Milliseconds())) < margin {
				ok = false
			}
		}
		if ok {
			return int64(v)
		}
	}
}

func (g *generator) request(p NetworkProfile, n int, at time.Time) (TruthRow, []Message) {
	req := p.Requesters[g.rng.IntN(len(p.Requesters))]
	rsp := p.Responders[g.rng.IntN(len(p.Responders))]
	class := g.pickClass(p.Mix)
	q := query{
		network:   p,
		requester: req,
		responder: rsp,
		controlID: fmt.Sprintf("%s%08d", p.Code, n),
		queryTag:  fmt.Sprintf("%sQ%08d", p.Code, n),
		mrn:       fmt.Sprintf("%07d", g.rng.IntN(10_000_000)),
		at:        at,
	}
	row := TruthRow{
		Network: p.Name, ControlID: q.controlID, QueryTag: q.queryTag,
		Requester: req.Facility, Responder: rsp.Facility,
		Outcome: class, RequestedAt: at, LatencyMs: -1,
	}
	msgs := []Message{{Time: at, Kind: KindRequest, ControlID: q.controlID, Raw: q.request()}}
	if class == Unanswered {
		return row, msgs
	}
	// Anything but a late answer arrives within the SLA, clear of it.
	latency := g.lognormalMs(p.Latency, 50, float64((QuerySLA - 1500*time.Millisecond).Milliseconds()))
	if class == FulfilledLate {
		latency = g.lateMs(p)
	}
	a := answer{class: class}
	switch class {
	case RefusedException:
		a.code = p.Exceptions[g.rng.IntN(len(p.Exceptions))]
		a.textOnly = g.rng.Float64() < p.ExceptionTextShare
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
	if class == RefusedException || class == Redirected {
		row.ExceptionCode = a.code
	}
	answeredAt := at.Add(time.Duration(latency) * time.Millisecond)
	row.AnsweredAt = answeredAt
	row.LatencyMs = latency
	msgs = append(msgs, Message{
		Time: answeredAt, Kind: KindAnswer, ControlID: q.controlID + "R",
		Raw: q.answer(a, answeredAt),
	})
	return row, msgs
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
		out = append(out, Message{Time: at, Kind: KindNotification, ControlID: id, Raw: notification(p, org, id, mrn, at)})
	}
	return out
}

// malformed adds, next to some valid messages, a frame hinscore must reject.
func (g *generator) malformed(p NetworkProfile, valid []Message) []Message {
	var out []Message
	for _, m := range valid {
		if g.rng.Float64() >= g.cfg.MalformedRate {
			continue
		}
		i := len(out) + 1
		out = append(out, Message{
			Time: m.Time.Add(time.Millisecond), Kind: KindMalformed,
			Raw: malformedFrame(p, g.rng.IntN(malformedKinds), i, m.Time),
		})
	}
	return out
}
