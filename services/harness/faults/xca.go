package faults

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/hinscore/hinscore/services/harness/simulator"
)

// newXCA generates the cross-community load beside an HL7 plan: journeys
// over the plan's event time (same seed, start and span), paced so that
// the busier network's feed lasts as long as the plan's frames at the
// plan's rate, so that a fault at a share of the HL7 traffic lands at
// about the same share of the audits and SOAP copies.
func newXCA(t Traffic, hl7Frames int) (*simulator.XCAPlan, error) {
	cfg := simulator.XCAConfig{Journeys: t.XCAJourneys, Seed: t.Seed, Start: t.Start, Span: t.Span,
		// Outages in the scenarios last seconds, as for the HL7 sender.
		ReconnectWithin: 90 * time.Second}
	p, err := simulator.GenerateXCA(cfg)
	if err != nil || t.Rate <= 0 {
		return p, err
	}
	busiest := 0
	for _, n := range p.Networks() {
		busiest = max(busiest, len(p.AllMessages(n)))
	}
	cfg.Rate = float64(busiest) * t.Rate / float64(max(hl7Frames, 1))
	return simulator.GenerateXCA(cfg)
}

// XCAEvents is the number of distinct events the feeds of networks (all
// of the plan's when none are named) store, by
// the rules of the mappings (DOMAIN.md): an audit record of a transaction
// gives its request and its answer, the audit of an XCPD deferred response
// the answer alone; a SOAP copy is one event. A re-sent copy
// (XCAMessage.Duplicate, the same bytes) stores nothing more.
func XCAEvents(p *simulator.XCAPlan, networks ...string) int {
	if len(networks) == 0 {
		networks = p.Networks()
	}
	n := 0
	for _, network := range networks {
		for _, m := range p.AllMessages(network) {
			switch {
			case m.Duplicate:
			case m.What == "audit-deferred-response", !m.IsAudit():
				n++
			default:
				n += 2
			}
		}
	}
	return n
}

// XCANetworks splits the plan's networks by feed: audits (syslog-TLS to
// atna-ingest) and SOAP copies (to fhir-ingest).
func XCANetworks(p *simulator.XCAPlan) (atna, soap []string) {
	if p == nil {
		return nil, nil
	}
	for _, name := range p.Networks() {
		if n, _ := p.Network(name); n.Feed == simulator.FeedATNA {
			atna = append(atna, name)
		} else {
			soap = append(soap, name)
		}
	}
	return atna, soap
}

// XCATargets is where each network of the plan sends: its audit listener,
// or the SOAP endpoint of fhir-ingest with the network's token.
func (c *Cluster) XCATargets(p *simulator.XCAPlan) (map[string]simulator.XCATarget, error) {
	atna, soap := XCANetworks(p)
	out := map[string]simulator.XCATarget{}
	for _, n := range atna {
		addr, ok := c.atna[n]
		if !ok {
			return nil, fmt.Errorf("faults.XCATargets: no audit listener for %q (Options.ATNANetworks)", n)
		}
		out[n] = simulator.XCATarget{Syslog: addr, TLS: c.ATNATLS()}
	}
	for _, n := range soap {
		out[n] = simulator.XCATarget{SOAP: c.FHIRURL() + "/fhir/" + n + "/soap", Token: FHIRToken(n)}
	}
	return out, nil
}

// driveXCA sends the cross-community load, counting each message
// delivered. A network's feed never runs ahead of the HL7 plan: after its
// k-th of n messages it waits until k/n of the plan's frames are
// acknowledged, so that a fault placed at a share of the HL7 traffic
// finds the feeds at most at that share, even when a busy machine slows
// the HL7 sender.
func (r *Run) driveXCA(ctx context.Context) error {
	targets := maps.Clone(r.XCATargets)
	frames := float64(r.Plan.Frames())
	for n, t := range targets {
		total, sent := float64(len(r.XCA.AllMessages(n))), 0
		t.Delivered = func(simulator.XCAMessage) {
			r.xcaDelivered.Add(1)
			sent++
			want := int64(frames * float64(sent) / total)
			_ = waitFor(ctx, 10*time.Minute, "the HL7 plan ahead of the cross-community feeds", func() bool { return r.Acked() >= want })
		}
		targets[n] = t
	}
	st, err := r.XCA.Send(ctx, targets)
	r.xcaStats = st
	if err != nil {
		return fmt.Errorf("faults: cross-community load: %w", err)
	}
	if st.Rejected != 0 {
		return fmt.Errorf("faults: cross-community load: %d SOAP copies refused (%s)", st.Rejected, st)
	}
	return nil
}

// AfterXCAShare waits until share (0…1) of the cross-community messages
// are delivered.
func (r *Run) AfterXCAShare(ctx context.Context, share float64) error {
	if r.XCA == nil {
		return nil
	}
	n := int64(share * float64(r.XCA.Frames()))
	return waitFor(ctx, 10*time.Minute, fmt.Sprintf("%d cross-community messages delivered", n), func() bool { return r.xcaDelivered.Load() >= n })
}

// XCATransactions is the number of cross-community transactions sent.
func (r *Run) XCATransactions() int {
	if r.XCA == nil {
		return 0
	}
	return len(r.XCA.Requests())
}

// XCAStats is what the cross-community sender did (after Drive).
func (r *Run) XCAStats() simulator.XCAStats { return r.xcaStats }
