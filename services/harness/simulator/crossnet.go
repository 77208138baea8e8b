package simulator

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/hinscore/hinscore/services/lib/domain/csvsafe"
)

// CrossNetwork makes exchanges cross networks: a requester organisation of
// one network asks a responder of another, the requester's network
// forwards the request to the responder's, and both networks' feeds carry
// the exchange, each its own copy of the request and the answer as its
// gateway relayed them (the same bytes: MSH-10, MSH-7, the parties), each
// on its own connection to hinscore.
//
// Crossing exchanges are HL7 v2 patient queries (QBP^Q22 → RSP^K22)
// between HL7 v2 networks, answered as the responder's network answers
// (its responder profiles, mix and latency). They are drawn from a random
// stream of their own after the rest of the plan, so the plan's other
// messages and truth rows are the same as without the option; their truth
// is CrossRow (crossnet_truth.csv), not truth.csv.
type CrossNetwork struct {
	// Share is the number of crossing exchanges as a share of
	// Config.Requests (0 = none, at most 10). The responder's network is
	// drawn by the networks' shares, the requester's among the others.
	Share float64 `json:"share"`
	// Thin is, per network, the share of its refusals that its own feed
	// leaves out: of the crossing exchanges its responders answered
	// refused_exception or refused_unjustified, that share (drawn one by
	// one) is missing from the responder's network's feed, the request and
	// the refusal both; the requester's network's feed still carries them.
	// Redirects and other answers are never thinned.
	Thin map[string]float64 `json:"thin,omitempty"`
}

// CrossRow is the truth of one crossing exchange.
type CrossRow struct {
	// TruthRow is the exchange as for any request; its Network is the
	// responder's network.
	TruthRow
	// RequesterNetwork is the requester's network.
	RequesterNetwork string
	// Feeds are the networks whose feeds carried the exchange, in name
	// order.
	Feeds []string
	// Thinned marks an exchange the responder's network left out of its
	// own feed (CrossNetwork.Thin).
	Thinned bool
}

// CrossTruthCSV is the crossing exchanges' truth file (WriteTruth).
const CrossTruthCSV = "crossnet_truth.csv"

func (c CrossNetwork) validate(networks []NetworkProfile) []error {
	var errs []error
	if c.Share < 0 || c.Share > 10 {
		errs = append(errs, fmt.Errorf("CrossNetwork.Share: %g is outside 0…10", c.Share))
	}
	hl7 := 0
	for _, n := range networks {
		if !n.fhir() {
			hl7++
		}
	}
	if c.Share > 0 && hl7 < 2 {
		errs = append(errs, fmt.Errorf("CrossNetwork.Share: %g needs two HL7 v2 networks, the plan has %d", c.Share, hl7))
	}
	names := make([]string, 0, len(c.Thin))
	for name := range c.Thin {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if v := c.Thin[name]; v < 0 || v > 1 {
			errs = append(errs, fmt.Errorf("CrossNetwork.Thin[%s]: %g is outside 0…1", name, v))
		}
		if !slices.ContainsFunc(networks, func(n NetworkProfile) bool { return n.Name == name && !n.fhir() }) {
			errs = append(errs, fmt.Errorf("CrossNetwork.Thin[%s]: no HL7 v2 network of that name", name))
		}
	}
	return errs
}

// crossing adds the crossing exchanges to the plan's feeds and truth.
func crossing(cfg Config, p *Plan) {
	seed := uint64(cfg.Seed)
	g := &generator{cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed^0x5be0cd19137e2179))}
	thin := rand.New(rand.NewPCG(seed, seed^0x1f83d9abfb41bd6b))
	shares := make([]float64, len(cfg.Networks))
	for i, n := range cfg.Networks {
		if !n.fhir() {
			shares[i] = n.Share
		}
	}
	seq := map[[2]int]int{}
	touched := map[int]bool{}
	for range int(float64(cfg.Requests) * cfg.CrossNetwork.Share) {
		to := g.pick(shares)
		others := slices.Clone(shares)
		others[to] = 0
		from := g.pick(others)
		seq[[2]int{from, to}]++
		requester := cfg.Networks[from].Requesters[g.rng.IntN(len(cfg.Networks[from].Requesters))]
		prof := cfg.Networks[to]
		// Control ids of their own (NSXBV00000001: the requester's network,
		// X, the responder's), so they never repeat one of either network.
		prof.Code = cfg.Networks[from].Code + "X" + prof.Code
		row, msgs := g.request(prof, seq[[2]int{from, to}], slot{at: g.requestTime(), network: to, from: &requester})
		row.Network = cfg.Networks[to].Name
		cr := CrossRow{TruthRow: row, RequesterNetwork: cfg.Networks[from].Name}
		refused := row.Outcome == RefusedException || row.Outcome == RefusedUnjustified
		cr.Thinned = refused && thin.Float64() < cfg.CrossNetwork.Thin[row.Network]
		p.feeds[from].msgs = append(p.feeds[from].msgs, msgs...)
		cr.Feeds = []string{cfg.Networks[from].Name}
		if !cr.Thinned {
			p.feeds[to].msgs = append(p.feeds[to].msgs, msgs...)
			cr.Feeds = append(cr.Feeds, row.Network)
		}
		slices.Sort(cr.Feeds)
		touched[from], touched[to] = true, true
		p.cross = append(p.cross, cr)
	}
	for i := range p.feeds {
		if touched[i] {
			slices.SortStableFunc(p.feeds[i].msgs, func(a, b Message) int { return a.DeliverAt.Compare(b.DeliverAt) })
		}
	}
	slices.SortStableFunc(p.cross, func(a, b CrossRow) int { return a.RequestedAt.Compare(b.RequestedAt) })
}

// Crossing returns the truth of the crossing exchanges, in request-time
// order (none without CrossNetwork).
func (p *Plan) Crossing() []CrossRow { return append([]CrossRow(nil), p.cross...) }

// crossTruthCSV is crossnet_truth.csv: one row per crossing exchange.
func (p *Plan) crossTruthCSV() ([]byte, error) {
	var buf bytes.Buffer
	w := csvsafe.NewWriter(&buf)
	_ = w.Write([]string{"network", "requester_network", "control_id", "requester", "responder", "outcome",
		"exception_code", "requested_at", "answered_at", "latency_ms", "patient", "behaviour", "feeds", "thinned"})
	for _, r := range p.cross {
		answered, latency := "", ""
		if r.Answered() {
			answered = r.AnsweredAt.UTC().Format(truthTime)
			latency = strconv.FormatInt(r.LatencyMs, 10)
		}
		_ = w.Write([]string{r.Network, r.RequesterNetwork, r.ControlID, r.Requester, r.Responder, r.Outcome,
			r.ExceptionCode, r.RequestedAt.UTC().Format(truthTime), answered, latency, r.Patient, r.Behaviour,
			strings.Join(r.Feeds, ";"), strconv.FormatBool(r.Thinned)})
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// CrossOutcomes is the number of outcomes hinscore stores for the crossing
// exchanges: one per feed that carried each.
func (p *Plan) CrossOutcomes() int {
	n := 0
	for _, r := range p.cross {
		n += len(r.Feeds)
	}
	return n
}
