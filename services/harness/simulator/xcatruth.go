package simulator

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/csvsafe"
)

// Truth file names of a cross-community run inside the output directory.
const (
	XCATruthCSV      = "xca_truth.csv"
	XCATruthJSON     = "xca_truth.json"
	XCADirectoryFile = "xca_directory.csv"
)

// Truth counts transactions per network and outcome class (only classes
// that occur), each transaction once whichever sides were seen.
func (p *XCAPlan) Truth() map[string]map[string]int {
	out := make(map[string]map[string]int, len(p.cfg.Networks))
	for _, n := range p.cfg.Networks {
		out[n.Name] = map[string]int{}
	}
	for _, r := range p.rows {
		out[r.Network][r.Outcome]++
	}
	return out
}

// MessageCount counts the distinct records (ATNA) or SOAP copies the
// gateways send (re-sent copies not counted): what hinscore must store.
func (p *XCAPlan) MessageCount() int {
	return countMessages(p.feeds, xcaFeed.messages, func(m XCAMessage) bool { return !m.Duplicate })
}

func (f xcaFeed) messages() []XCAMessage { return f.msgs }

// Duplicates is the number of re-sent copies in the feeds.
func (p *XCAPlan) Duplicates() int {
	return countMessages(p.feeds, xcaFeed.messages, func(m XCAMessage) bool { return m.Duplicate })
}

// Frames is the number of messages Send delivers when nothing is re-sent.
func (p *XCAPlan) Frames() int { return countMessages(p.feeds, xcaFeed.messages, nil) }

// DirectoryCSV is the organisation directory of every gateway, in
// chstore.ParseOrganizations' format: one row per home community id and
// one per AuditSourceID, both naming the gateway's organisation.
func (p *XCAPlan) DirectoryCSV() ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"identifier", "org_id", "name", "type", "developer", "networks"})
	for _, n := range p.cfg.Networks {
		for _, g := range n.Gateways {
			for _, id := range []string{g.Community, g.ID} {
				_ = w.Write([]string{id, g.OrgID, g.Name, "provider", g.Developer, n.Name})
			}
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("simulator.XCAPlan.DirectoryCSV: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteTruth writes xca_truth.csv (one row per transaction),
// xca_truth.json (the per-network summary and profiles) and
// xca_directory.csv into dir, creating it.
func (p *XCAPlan) WriteTruth(dir string) error {
	err := writeFiles(dir, map[string]func() ([]byte, error){
		XCATruthCSV: p.truthCSV, XCATruthJSON: p.truthJSON, XCADirectoryFile: p.DirectoryCSV,
	})
	if err != nil {
		return fmt.Errorf("simulator.XCAPlan.WriteTruth: %w", err)
	}
	return nil
}

// XCATruthHeader is the header of xca_truth.csv.
var XCATruthHeader = []string{
	"network", "feed", "transaction_id", "journey", "step", "kind", "transaction",
	"requester", "requester_community", "responder", "responder_community", "behaviour",
	"purpose", "purpose_code", "outcome", "exception_code", "error_code", "event_outcome",
	"requested_at", "answered_at", "latency_ms", "timed", "recorded_at",
	"sides", "late_sides", "duplicates", "deferred", "patient", "runaround", "documents",
}

func (p *XCAPlan) truthCSV() ([]byte, error) {
	var buf bytes.Buffer
	w := csvsafe.NewWriter(&buf)
	_ = w.Write(XCATruthHeader)
	for _, r := range p.rows {
		answered, latency, outcome := "", "", ""
		if r.Answered() {
			answered = r.AnsweredAt.UTC().Format(truthTime)
			latency = strconv.FormatInt(r.LatencyMs, 10)
		}
		if r.EventOutcome >= 0 {
			outcome = strconv.Itoa(r.EventOutcome)
		}
		_ = w.Write([]string{
			r.Network, r.Feed, r.TransactionID, r.Journey, strconv.Itoa(r.Step), r.Kind, r.Transaction,
			r.Requester, r.RequesterCommunity, r.Responder, r.ResponderCommunity, r.Behaviour,
			r.Purpose, r.PurposeCode, r.Outcome, r.ExceptionCode, r.ErrorCode, outcome,
			r.RequestedAt.UTC().Format(truthTime), answered, latency, strconv.FormatBool(r.Timed), r.RecordedAt.UTC().Format(truthTime),
			r.Sides, r.LateSides, strconv.Itoa(r.Duplicates), strconv.FormatBool(r.Deferred), r.Patient,
			strconv.FormatBool(r.Runaround), strconv.Itoa(r.Documents),
		})
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

type xcaSummary struct {
	Seed         int64               `json:"seed"`
	Journeys     int                 `json:"journeys"`
	Transactions int                 `json:"transactions"`
	Start        string              `json:"start"`
	Span         string              `json:"span"`
	SLAMs        map[string]int64    `json:"sla_ms"`
	Messages     int                 `json:"messages"`
	Duplicates   int                 `json:"duplicate_messages"`
	Rates        map[string]float64  `json:"rates"`
	Networks     []xcaNetworkSummary `json:"networks"`
	Behaviours   []XCABehaviour      `json:"behaviours"`
}

type xcaNetworkSummary struct {
	Name         string         `json:"name"`
	Feed         string         `json:"feed"`
	Journeys     int            `json:"journeys"`
	Transactions map[string]int `json:"transactions"` // by kind
	Outcomes     map[string]int `json:"outcomes"`
	// Purposes counts transactions by canonical purpose ("" = none carried).
	Purposes map[string]int `json:"purposes"`
	// RequiredResponse counts transactions of a purpose that requires a
	// response under TEFCA (treatment, individual access).
	RequiredResponse int            `json:"required_response"`
	Sides            map[string]int `json:"sides"`
	Late             int            `json:"late_sides"`
	Duplicates       int            `json:"duplicates"`
	Untimed          int            `json:"untimed"`
	Deferred         int            `json:"deferred"`
	Runaround        int            `json:"runaround_journeys"`
	Messages         int            `json:"messages"`
	Profile          XCANetwork     `json:"profile"`
}

func (p *XCAPlan) truthJSON() ([]byte, error) {
	s := xcaSummary{
		Seed: p.cfg.Seed, Journeys: p.cfg.Journeys, Transactions: len(p.rows),
		Start: p.cfg.Start.UTC().Format(time.RFC3339), Span: p.cfg.Span.String(),
		SLAMs: map[string]int64{
			KindPatientDiscovery: SLAOf(KindPatientDiscovery).Milliseconds(),
			KindDocumentQuery:    SLAOf(KindDocumentQuery).Milliseconds(),
			KindDocumentRetrieve: SLAOf(KindDocumentRetrieve).Milliseconds(),
		},
		Messages: p.MessageCount(), Duplicates: p.Duplicates(),
		Rates:      map[string]float64{"loss": p.cfg.LossRate, "duplicate": p.cfg.DuplicateRate, "late": p.cfg.LateRate},
		Behaviours: p.cfg.Behaviours,
	}
	for _, n := range p.cfg.Networks {
		ns := xcaNetworkSummary{
			Name: n.Name, Feed: n.Feed, Transactions: map[string]int{}, Outcomes: map[string]int{},
			Purposes: map[string]int{}, Sides: map[string]int{}, Profile: n,
		}
		runaround := map[string]bool{}
		for _, r := range p.rows {
			if r.Network != n.Name {
				continue
			}
			if r.Step == 1 {
				ns.Journeys++
			}
			ns.Transactions[r.Kind]++
			ns.Outcomes[r.Outcome]++
			ns.Purposes[r.Purpose]++
			if r.Purpose == "treatment" || r.Purpose == "individual_access" {
				ns.RequiredResponse++
			}
			ns.Sides[r.Sides]++
			ns.Duplicates += r.Duplicates
			ns.Late += len(strings.Fields(r.LateSides))
			if !r.Timed {
				ns.Untimed++
			}
			if r.Deferred {
				ns.Deferred++
			}
			if r.Runaround {
				runaround[r.Journey] = true
			}
		}
		ns.Runaround = len(runaround)
		for _, m := range p.AllMessages(n.Name) {
			if !m.Duplicate {
				ns.Messages++
			}
		}
		s.Networks = append(s.Networks, ns)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	return append(b, '\n'), err
}

// Suspect counts, per network, the transactions DOMAIN.md calls suspected
// blocking: refused_unjustified, unanswered, and answers later than 3×
// their kind's SLA (the cross-community networks never redirect).
func (p *XCAPlan) Suspect() map[string]int {
	out := make(map[string]int, len(p.cfg.Networks))
	for _, n := range p.cfg.Networks {
		out[n.Name] = 0
	}
	for _, r := range p.rows {
		late := r.Outcome == FulfilledLate && time.Duration(r.LatencyMs)*time.Millisecond > 3*SLAOf(r.Kind)
		if r.Outcome == RefusedUnjustified || r.Outcome == Unanswered || late {
			out[r.Network]++
		}
	}
	return out
}

// Runarounds lists, per network, the patients of journeys to a runaround
// responder (answers discovery, never returns documents), sorted.
func (p *XCAPlan) Runarounds() map[string][]string {
	out := make(map[string][]string, len(p.cfg.Networks))
	for _, n := range p.cfg.Networks {
		out[n.Name] = []string{}
	}
	for _, r := range p.rows {
		if r.Runaround && !slices.Contains(out[r.Network], r.Patient) {
			out[r.Network] = append(out[r.Network], r.Patient)
		}
	}
	for _, ps := range out {
		slices.Sort(ps)
	}
	return out
}
