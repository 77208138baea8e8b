package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/csvsafe"
)

// Truth file names inside the output directory.
const (
	TruthCSV  = "truth.csv"
	TruthJSON = "truth.json"
	// DirectoryFile is the organisation directory of the plan (DirectoryCSV).
	DirectoryFile = "directory.csv"
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

// FHIRNetworks returns the plan's networks that speak FHIR over HTTP; the
// others speak HL7 v2 over MLLP.
func (p *Plan) FHIRNetworks() []string {
	var out []string
	for _, f := range p.feeds {
		if f.profile.fhir() {
			out = append(out, f.profile.Name)
		}
	}
	return out
}

// Messages returns a network's feed in delivery order (nil if unknown).
func (p *Plan) Messages(network string) []Message {
	for _, f := range p.feeds {
		if f.profile.Name == network {
			return append([]Message(nil), f.msgs...)
		}
	}
	return nil
}

// ValidMessages is the number of distinct messages hinscore must accept
// and store (requests, answers and notifications, exact duplicates
// counted once): the expected "events in".
func (p *Plan) ValidMessages() int {
	return countMessages(p.feeds, feed.messages, func(m Message) bool { return m.Kind != KindMalformed && !m.Duplicate })
}

func (f feed) messages() []Message { return f.msgs }

// countMessages counts the messages of every feed that match (all when
// match is nil).
func countMessages[F, M any](feeds []F, msgs func(F) []M, match func(M) bool) int {
	n := 0
	for _, f := range feeds {
		for _, m := range msgs(f) {
			if match == nil || match(m) {
				n++
			}
		}
	}
	return n
}

// Duplicates is the number of exact re-sent copies in the feeds: frames
// hinscore acknowledges but stores only once.
func (p *Plan) Duplicates() int {
	return countMessages(p.feeds, feed.messages, func(m Message) bool { return m.Duplicate })
}

// Frames is the number of frames Send writes when nothing is re-sent.
func (p *Plan) Frames() int { return countMessages(p.feeds, feed.messages, nil) }

// Runarounds lists, per network, the patients ("<mrn>^^^<authority>") of
// the runaround journeys, sorted.
func (p *Plan) Runarounds() map[string][]string {
	out := make(map[string][]string, len(p.feeds))
	for _, f := range p.feeds {
		out[f.profile.Name] = []string{}
	}
	seen := map[string]bool{}
	for _, r := range p.rows {
		if r.Runaround && !seen[r.Network+"/"+r.Patient] {
			seen[r.Network+"/"+r.Patient] = true
			out[r.Network] = append(out[r.Network], r.Patient)
		}
	}
	for _, ps := range out {
		slices.Sort(ps)
	}
	return out
}

// MalformedMessages is the number of frames hinscore must reject.
func (p *Plan) MalformedMessages() int {
	return countMessages(p.feeds, feed.messages, func(m Message) bool { return m.Kind == KindMalformed })
}

// WriteTruth writes truth.csv (one row per request) and truth.json (the
// per-network summary and the profiles) into dir, creating it.
func (p *Plan) WriteTruth(dir string) error {
	files := map[string]func() ([]byte, error){
		TruthCSV: p.truthCSV, TruthJSON: p.truthJSON, DirectoryFile: p.DirectoryCSV,
	}
	if len(p.cross) > 0 {
		files[CrossTruthCSV] = p.crossTruthCSV
	}
	err := writeFiles(dir, files)
	if err != nil {
		return fmt.Errorf("simulator.WriteTruth: %w", err)
	}
	return nil
}

// writeFiles creates dir and writes each named file's bytes into it, in
// name order.
func writeFiles(dir string, files map[string]func() ([]byte, error)) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		b, err := files[name]()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (p *Plan) truthCSV() ([]byte, error) {
	var buf bytes.Buffer
	w := csvsafe.NewWriter(&buf)
	_ = w.Write([]string{
		"network", "control_id", "query_tag", "requester", "responder", "outcome",
		"exception_code", "requested_at", "answered_at", "latency_ms", "patient", "runaround", "out_of_order",
		"request_kind", "format", "pattern", "behaviour", "acknowledged_at", "tta_ms", "record_count", "sla_ms", "cancelled_at",
		"exception_check",
	})
	for _, r := range p.rows {
		answered, latency, acked, tta, cancelled := "", "", "", "", ""
		if !r.CancelledAt.IsZero() {
			cancelled = r.CancelledAt.UTC().Format(truthTime)
		}
		if r.Answered() {
			answered = r.AnsweredAt.UTC().Format(truthTime)
			latency = strconv.FormatInt(r.LatencyMs, 10)
		}
		if r.Acknowledged() {
			acked = r.AcknowledgedAt.UTC().Format(truthTime)
			tta = strconv.FormatInt(r.AcknowledgedAt.Sub(r.RequestedAt).Milliseconds(), 10)
		}
		_ = w.Write([]string{
			r.Network, r.ControlID, r.QueryTag, r.Requester, r.Responder, r.Outcome,
			r.ExceptionCode, r.RequestedAt.UTC().Format(truthTime), answered, latency,
			r.Patient, strconv.FormatBool(r.Runaround), strconv.FormatBool(r.OutOfOrder),
			r.Kind, r.Format, r.Pattern, r.Behaviour, acked, tta, strconv.Itoa(r.RecordCount),
			strconv.FormatInt(r.SLA.Milliseconds(), 10), cancelled, r.ExceptionCheck,
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
	Duplicates    int              `json:"duplicate_messages"`
	Networks      []networkSummary `json:"networks"`
}

type networkSummary struct {
	Name          string         `json:"name"`
	Requests      int            `json:"requests"`
	Notifications int            `json:"notifications"`
	Malformed     int            `json:"malformed"`
	Duplicates    int            `json:"duplicates"`
	OutOfOrder    int            `json:"out_of_order"`
	Outcomes      map[string]int `json:"outcomes"`
	// Kinds and Patterns count the network's requests by request kind and
	// by pattern.
	Kinds    map[string]int `json:"kinds"`
	Patterns map[string]int `json:"patterns"`
	// RunaroundPatients are the patients of the runaround journeys.
	RunaroundPatients []string       `json:"runaround_patients"`
	Suspect           int            `json:"suspect"`
	Profile           NetworkProfile `json:"profile"`
}

func (p *Plan) truthJSON() ([]byte, error) {
	truth, suspect, runarounds := p.Truth(), p.Suspect(), p.Runarounds()
	outOfOrder := map[string]int{}
	for _, r := range p.rows {
		if r.OutOfOrder {
			outOfOrder[r.Network]++
		}
	}
	s := truthSummary{
		Seed: p.cfg.Seed, Requests: len(p.rows),
		Start: p.cfg.Start.UTC().Format(time.RFC3339), Span: p.cfg.Span.String(),
		SLAMs: QuerySLA.Milliseconds(), ValidMessages: p.ValidMessages(), Malformed: p.MalformedMessages(),
		Duplicates: p.Duplicates(),
	}
	for _, f := range p.feeds {
		ns := networkSummary{
			Name: f.profile.Name, Outcomes: truth[f.profile.Name], Suspect: suspect[f.profile.Name], Profile: f.profile,
			OutOfOrder: outOfOrder[f.profile.Name], RunaroundPatients: runarounds[f.profile.Name],
		}
		ns.Kinds, ns.Patterns = map[string]int{}, map[string]int{}
		for _, r := range p.rows {
			if r.Network == f.profile.Name {
				ns.Requests++
				ns.Kinds[r.Kind]++
				ns.Patterns[r.Pattern]++
			}
		}
		for _, m := range f.msgs {
			if m.Duplicate {
				ns.Duplicates++
				continue
			}
			switch m.Kind {
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
