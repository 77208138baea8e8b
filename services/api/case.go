package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/api/casepacket"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/seal"
	"github.com/hinscore/hinscore/services/lib/service"
)

// CasePeriod is a case packet's period: its label as scorecards name
// periods (2026-10, 2026-W43, 2026-10-05) and its bounds, [Start, End) on
// the request time.
type CasePeriod struct {
	Label      string
	Start, End time.Time
}

// CaseRequest says whose packet is built, for which period, by whom and why.
type CaseRequest struct {
	Responder string
	Period    CasePeriod
	Who       string
	Role      Role
	Reason    string
	Remote    string // where the request came from: an address, or "cli"
	tokenID   string
}

// caseChainLimit bounds a packet: a responder with more chains in the
// period gets an error asking for a shorter one, not a packet that does
// not fit in memory.
const caseChainLimit = 20000

// CaseSummary is summary.json: what the packet holds and the violation
// units it counts, with the rule that counts them.
type CaseSummary struct {
	Format               string         `json:"format"`
	Responder            string         `json:"responder"`
	Period               string         `json:"period"`
	PeriodStart          string         `json:"period_start"`
	PeriodEnd            string         `json:"period_end"`
	GeneratedAt          string         `json:"generated_at"`
	GeneratedBy          string         `json:"generated_by"`
	Reason               string         `json:"reason"`
	Chains               int            `json:"chains"`
	Classes              map[string]int `json:"classes"`
	RequiredResponse     int            `json:"required_response_requests"`
	ViolationUnits       int            `json:"violation_units"`
	ViolationRuleVersion string         `json:"violation_rule_version"`
	ViolationRule        string         `json:"violation_rule"`
	Violations           []string       `json:"violations"` // the chains counted, by id
	// ContradictedExceptions are the refusals of a required-response
	// purpose that cite an exception the responder's own behaviour
	// contradicts (a flag of the exception checks): counted apart from the
	// units, as evidence a cited exception is not valid, not as proof.
	ContradictedExceptionUnits int            `json:"contradicted_exception_units"`
	ContradictedExceptions     []string       `json:"contradicted_exceptions"`
	Originals                  map[string]int `json:"originals"` // original messages by status
	Queries                    int            `json:"queries"`
	AuditSource                string         `json:"audit_source"`
	AuditEntries               int            `json:"audit_entries"`
	PublicKey                  string         `json:"public_key"`
}

// CaseBuilder builds case packets from ClickHouse (the chains, through
// queries it records), the bus (the original messages, opened as the raw
// view opens them, and AUDIT) and a signing key. The api and `hinscore
// case build` build with it alike; they differ in where the openings are
// recorded and read back (auditTrail).
type CaseBuilder struct {
	conn  driver.Conn
	js    jetstream.JetStream
	keys  *seal.RawKeys
	key   *casepacket.PrivateKey
	clock service.Clock
	// log is the api server's audit log: the openings are written to it
	// and to AUDIT, and read back from it. Nil on the command line, which
	// records in AUDIT and reads AUDIT back.
	log *auditLog
}

// NewCaseBuilder is the command line's builder: openings recorded in, and
// the trail read from, the AUDIT stream (which needs a NATS user that may
// read AUDIT).
func NewCaseBuilder(conn driver.Conn, js jetstream.JetStream, keys *seal.RawKeys, key *casepacket.PrivateKey, clock service.Clock) *CaseBuilder {
	return &CaseBuilder{conn: conn, js: js, keys: keys, key: key, clock: clock}
}

// Case packet errors a caller tells apart.
var (
	ErrNoChains      = statusErr(http.StatusNotFound, "no chains of this responder in this period (an unknown responder, or none in the period)")
	ErrTooManyChains = statusErr(http.StatusRequestEntityTooLarge, "more chains than one packet holds (%d): choose a shorter period", caseChainLimit)
	errNoSigningKey  = statusErr(http.StatusServiceUnavailable, "case packets are not configured: no signing key (%s or %s)", casepacket.EnvSigningKey, casepacket.EnvSigningKeyFile)
)

// caseChain is one chain of a packet with its original messages.
type caseChain struct {
	view ChainView
	msgs []RawMessage
}

// Build writes the packet of req to w and returns its summary. The
// original messages are opened, and each opening recorded (one audit entry
// per chain, action case), before any of their bytes is written.
func (b *CaseBuilder) Build(ctx context.Context, req CaseRequest, w io.Writer) (CaseSummary, error) {
	if err := req.validate(); err != nil {
		return CaseSummary{}, err
	}
	if b.key == nil {
		return CaseSummary{}, errNoSigningKey
	}
	if b.js == nil {
		return CaseSummary{}, statusErr(http.StatusServiceUnavailable, "RAW is not connected")
	}
	rec := &queryRecorder{Conn: b.conn}
	st := &store{conn: rec}
	outs, err := st.caseOutcomes(ctx, req.Responder, req.Period.Start, req.Period.End, caseChainLimit+1)
	switch {
	case err != nil:
		return CaseSummary{}, err
	case len(outs) == 0:
		return CaseSummary{}, fmt.Errorf("%w: responder %q, period %s", ErrNoChains, req.Responder, req.Period.Label)
	case len(outs) > caseChainLimit:
		return CaseSummary{}, ErrTooManyChains
	}
	chains, err := b.readChains(ctx, st, outs)
	if err != nil {
		return CaseSummary{}, err
	}
	now := b.clock.Now().UTC()
	if err := b.recordOpenings(ctx, req, chains, now); err != nil {
		return CaseSummary{}, err
	}
	trail, source, err := b.auditTrail(ctx, req.Period.Start, chains)
	if err != nil {
		return CaseSummary{}, err
	}
	p := casePacket{req: req, at: now, chains: chains, queries: rec.recorded(), trail: trail, source: source, publicKey: b.key.Public()}
	files, sum, err := p.files()
	if err != nil {
		return CaseSummary{}, err
	}
	m := casepacket.Manifest{Responder: req.Responder, Period: req.Period.Label, PeriodStart: sum.PeriodStart, PeriodEnd: sum.PeriodEnd,
		GeneratedAt: sum.GeneratedAt, GeneratedBy: req.Who}
	if err := casepacket.Write(w, files, m, b.key.Ed25519(), now); err != nil {
		return CaseSummary{}, err
	}
	return sum, nil
}

func (req CaseRequest) validate() error {
	if err := req.validateAsked(); err != nil {
		return err
	}
	if req.Period.Label == "" || !req.Period.Start.Before(req.Period.End) {
		return badParam("period", "want a period with a start before its end (2026-10, 2026-W43 or 2026-10-05)")
	}
	return nil
}

// Validate checks what the caller gives (the responder, the reason and
// who asks) before anything is read: errors wrap ErrBadParam.
func (req CaseRequest) Validate() error { return req.validateAsked() }

// validateAsked checks what the caller gives: the responder, the reason
// and who asks.
func (req CaseRequest) validateAsked() error {
	if !orgPattern.MatchString(req.Responder) {
		return badParam("responder", "want an organisation identifier (1-128 of [A-Za-z0-9._:/^&#-])")
	}
	if _, err := parseReason(req.Reason); err != nil {
		return err
	}
	if req.Who == "" || !utf8.ValidString(req.Who) || len(req.Who) > 128 {
		return badParam("who", "want who builds the packet (1-128 bytes)")
	}
	return nil
}

// readChains reads each chain's steps and original messages as the chain
// and raw views do.
func (b *CaseBuilder) readChains(ctx context.Context, st *store, outs []Outcome) ([]caseChain, error) {
	chains := make([]caseChain, 0, len(outs))
	var communities []string
	for _, o := range outs {
		steps, err := st.steps(ctx, o)
		if err != nil {
			return nil, err
		}
		v := chainView(o, steps)
		if cc := v.CrossCommunity; cc != nil {
			communities = append(communities, cc.RequesterCommunity, cc.ResponderCommunity)
		}
		id, err := uuid.Parse(o.ID)
		if err != nil {
			return nil, fmt.Errorf("api.CaseBuilder: outcome id %q: %w", o.ID, err)
		}
		if v.ExceptionChecks, err = st.exceptionChecks(ctx, id); err != nil {
			return nil, err
		}
		msgs, err := rawMessages(ctx, b.js, b.keys, o.Network, v.Steps)
		if err != nil {
			return nil, err
		}
		chains = append(chains, caseChain{view: v, msgs: msgs})
	}
	if len(communities) == 0 {
		return chains, nil
	}
	slices.Sort(communities)
	names, err := st.communityNames(ctx, slices.Compact(communities))
	if err != nil {
		return nil, err
	}
	for i := range chains {
		if cc := chains[i].view.CrossCommunity; cc != nil {
			cc.RequesterName, cc.ResponderName = names[cc.RequesterCommunity], names[cc.ResponderCommunity]
		}
	}
	return chains, nil
}

// recordOpenings records one audit entry per chain whose messages the
// packet holds, through the path every raw access is recorded by.
func (b *CaseBuilder) recordOpenings(ctx context.Context, req CaseRequest, chains []caseChain, now time.Time) error {
	for _, c := range chains {
		e := AuditEntry{Time: now, Who: req.Who, Role: req.Role, TokenID: req.tokenID, Action: "case", Chain: c.view.ID,
			Network: c.view.Network, Reason: req.Reason, Remote: req.Remote, Messages: len(c.msgs), RequestID: requestID(),
			Outcome: AuditServed, Responder: req.Responder, Period: req.Period.Label}
		if err := recordAudit(ctx, b.log, b.js, e); err != nil {
			return err
		}
	}
	return nil
}

// auditTrail returns the audit entries, as they were written, of every
// opening of the packet's chains (this packet's included), and where they
// were read: the api's own log, or AUDIT from the period's start on.
func (b *CaseBuilder) auditTrail(ctx context.Context, since time.Time, chains []caseChain) ([]json.RawMessage, string, error) {
	ids := make(map[string]bool, len(chains))
	var networks []string
	for _, c := range chains {
		ids[c.view.ID] = true
		networks = append(networks, bus.AuditSubject(c.view.Network))
	}
	slices.Sort(networks)
	networks = slices.Compact(networks)
	keep := func(line []byte) (bool, error) {
		var e AuditEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return false, fmt.Errorf("api.auditTrail: an entry that is not JSON: %w", err)
		}
		return ids[e.Chain], nil
	}
	if b.log != nil {
		trail, err := readAuditFile(b.log.path, keep)
		return trail, "the api's audit log " + b.log.path + " (the openings made through this api replica)", err
	}
	trail, err := readAuditStream(ctx, b.js, networks, since, keep)
	return trail, fmt.Sprintf("the %s stream, subjects %v, from %s on (every api replica and the command line)",
		bus.StreamAudit, networks, since.UTC().Format(time.RFC3339)), err
}

// readAuditFile reads the entries of an audit log that keep accepts.
func readAuditFile(path string, keep func([]byte) (bool, error)) ([]json.RawMessage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("api.auditTrail: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	trail := []json.RawMessage{}
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		ok, err := keep(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if ok {
			trail = append(trail, json.RawMessage(slices.Clone(line)))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("api.auditTrail %s: %w", path, err)
	}
	return trail, nil
}

// readAuditStream reads the entries of AUDIT on subjects from since on
// that keep accepts, everything stored when it starts.
func readAuditStream(ctx context.Context, js jetstream.JetStream, subjects []string, since time.Time, keep func([]byte) (bool, error)) ([]json.RawMessage, error) {
	trail := []json.RawMessage{}
	err := ReadAudit(ctx, js, jetstream.OrderedConsumerConfig{FilterSubjects: subjects,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since}, func(msg jetstream.Msg) error {
		ok, err := keep(msg.Data())
		if err != nil {
			return err
		}
		if ok {
			trail = append(trail, json.RawMessage(slices.Clone(msg.Data())))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("api.auditTrail: %w", err)
	}
	return trail, nil
}

// ReadAudit hands each entry of the AUDIT stream that cfg selects to each,
// in order, and returns once it has read everything stored when it
// started: an empty fetch after that ends it. The first error of each
// ends it too.
func ReadAudit(ctx context.Context, js jetstream.JetStream, cfg jetstream.OrderedConsumerConfig, each func(jetstream.Msg) error) error {
	stream, err := js.Stream(ctx, bus.StreamAudit)
	if err != nil {
		return fmt.Errorf("stream %s: %w", bus.StreamAudit, err)
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return err
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			if err := each(msg); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if got == 0 {
			return nil
		}
	}
}

// handleCase is GET /v1/case?responder=ORG&period=P&reason=R: the signed
// case packet of a responder in a period that has scorecards, built as
// `hinscore case build` builds it; investigator only, every opening
// audited, and every refused attempt too.
func (s *Server) handleCase(w http.ResponseWriter, r *http.Request, p Principal) (err error) {
	defer func() { s.auditIfRefused(r, p, "case", err) }()
	if err := onlyParams(r, "responder", "period", "reason"); err != nil {
		return err
	}
	if p.Role != RoleInvestigator {
		return errInvestigatorOnly
	}
	q := r.URL.Query()
	req := CaseRequest{Responder: q.Get("responder"), Who: p.Name, Role: p.Role, Reason: q.Get("reason"), Remote: r.RemoteAddr, tokenID: p.tokenID}
	if req.Period.Label, err = parsePeriod(q.Get("period")); err != nil {
		return err
	}
	if err := req.validateAsked(); err != nil {
		return err
	}
	req.Period.Start, req.Period.End, err = s.store.periodBounds(r.Context(), req.Period.Label)
	if err == errNotFound {
		return statusErr(http.StatusNotFound, "no scorecard covers period %s: a packet's period is one the scorecards computed", req.Period.Label)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	b := &CaseBuilder{conn: s.conn, js: s.js, keys: s.cfg.RawKeys, key: s.cfg.Case.Key, clock: s.clock, log: s.audit}
	s.mu.Unlock()
	if b.log == nil {
		return statusErr(http.StatusServiceUnavailable, "audit log not open")
	}
	var buf bytes.Buffer
	sum, err := b.Build(r.Context(), req, &buf)
	if err != nil {
		return err
	}
	s.metrics.rawAccess.WithLabelValues("case").Inc()
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", `attachment; filename="case-`+unsafeName.ReplaceAllString(req.Responder, "_")+"-"+req.Period.Label+`.tar"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Hinscore-Case-Public-Key", sum.PublicKey)
	w.Header().Set("X-Hinscore-Violation-Units", fmt.Sprint(sum.ViolationUnits))
	_, _ = w.Write(buf.Bytes())
	return nil
}
