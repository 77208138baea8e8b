package simulator

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Truth file names inside the output directory.
const (
	TruthCSV  = "truth.csv"
	TruthJSON = "truth.json"
)

const truthTime = "2006-01-02T15:04:05.000Z"

// Requests returns the truth row of every request, in request-time order.
func (p *Plan) Requests() []TruthRow { return append([]TruthRow(nil), p.rows...) }

// Truth counts requests per network and outcome class. Only classes that
// occur are present, so it compares directly with a GROUP BY.
func (p *Plan) Truth() map[string]map[string]int {
	out := make(map[string]map[string]int, len(p.feeds))
	for _, f := range p.feeds {
		out[f.profile.Name] = map[string]int{}
	}
	for _, r := range p.rows {
		out[r.Network][r.Outcome]++
	}
	return out
}

// Suspect counts, per network, the requests DOMAIN.md calls suspected
// blocking: refused_unjustified, redirected, unanswered, and answers
// later than 3x the SLA.
func (p *Plan) Suspect() map[string]int {
	out := make(map[string]int, len(p.feeds))
	for _, f := range p.feeds {
		out[f.profile.Name] = 0
	}
	for _, r := range p.rows {
		switch {
		case r.Outcome == RefusedUnjustified, r.Outcome == Redirected, r.Outcome == Unanswered:
			out[r.Network]++
		case r.Outcome == FulfilledLate && r.LatencyMs > (3*QuerySLA).Milliseconds():
			out[r.Network]++
		}
	}
	return out
}

// Networks returns the network names in configuration order.
func (p *Plan) Networks() []string {
	out := make([]string, len(p.feeds))
	for i, f := range p.feeds {
		out[i] = f.profile.Name
	}
	return out
}

// Messages returns a network's feed in event-time order (nil if unknown).
func (p *Plan) Messages(network string) []Message {
	for _, f := range p.feeds {
		if f.profile.Name == network {
			return append([]Message(nil), f.msgs...)
		}
	}
	return nil
}

// ValidMessages is the number of messages hinscore must accept (requests,
// answers and notifications): the expected "events in".
func (p *Plan) ValidMessages() int {
	n := 0
	for _, f := range p.feeds {
		for _, m := range f.msgs {
			if m.Kind != KindMalformed {
				n++
			}
		}
	}
	return n
}

// MalformedMessages is the number of frames hinscore must reject.
func (p *Plan) MalformedMessages() int {
	n := 0
	for _, f := range p.feeds {
		for _, m := range f.msgs {
			if m.Kind == KindMalformed {
				n++
			}
		}
	}
	return n
}

// WriteTruth writes truth.csv (one row per request) and truth.json (the
// per-network summary and the profiles) into dir, creating it.
func (p *Plan) WriteTruth(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("simulator.WriteTruth: %w", err)
	}
	csvBytes, err := p.truthCSV()
	if err != nil {
		return fmt.Errorf("simulator.WriteTruth: %w", err)
	}
	jsonBytes, err := p.truthJSON()
	if err != nil {
		return fmt.Errorf("simulator.WriteTruth: %w", err)
	}
	for name, b := range map[string][]byte{TruthCSV: csvBytes, TruthJSON: jsonBytes} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("simulator.WriteTruth: %w", err)
		}
	}
	return nil
}

func (p *Plan) truthCSV() ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{
		"network", "control_id", "query_tag", "requester", "responder", "outcome",
		"exception_code", "requested_at", "answered_at", "latency_ms",
	})
	for _, r := range p.rows {
		answered, latency := "", ""
		if r.Answered() {
			answered = r.AnsweredAt.UTC().Format(truthTime)
			latency = strconv.FormatInt(r.LatencyMs, 10)
		}
		_ = w.Write([]string{
			r.Network, r.ControlID, r.QueryTag, r.Requester, r.Responder, r.Outcome,
			r.ExceptionCode, r.RequestedAt.UTC().Format(truthTime), answered, latency,
		})
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

type truthSummary struct {
	Seed          int64            `json:"seed"`
	Requests      int              `json:"requests"`
	Start         string           `json:"start"`
	Span          string           `json:"span"`
	SLAMs         int64            `json:"sla_ms"`
	ValidMessages int              `json:"valid_messages"`
	Malformed     int              `json:"malformed_messages"`
	Networks      []networkSummary `json:"networks"`
}

type networkSummary struct {
	Name          string         `json:"name"`
	Requests      int            `json:"requests"`
	Notifications int            `json:"notifications"`
	Malformed     int            `json:"malformed"`
	Outcomes      map[string]int `json:"outcomes"`
	Suspect       int            `json:"suspect"`
	Profile       NetworkProfile `json:"profile"`
}

func (p *Plan) truthJSON() ([]byte, error) {
	truth, suspect := p.Truth(), p.Suspect()
	s := truthSummary{
		Seed: p.cfg.Seed, Requests: len(p.rows),
		Start: p.cfg.Start.UTC().Format(time.RFC3339), Span: p.cfg.Span.String(),
		SLAMs: QuerySLA.Milliseconds(), ValidMessages: p.ValidMessages(), Malformed: p.MalformedMessages(),
	}
	for _, f := range p.feeds {
		ns := networkSummary{Name: f.profile.Name, Outcomes: truth[f.profile.Name], Suspect: suspect[f.profile.Name], Profile: f.profile}
		for _, m := range f.msgs {
			switch m.Kind {
			case KindRequest:
				ns.Requests++
			case KindNotification:
				ns.Notifications++
			case KindMalformed:
				ns.Malformed++
			}
		}
		s.Networks = append(s.Networks, ns)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	return append(b, '\n'), err
}
