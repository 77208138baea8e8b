package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/purpose"
	"github.com/hinscore/hinscore/services/lib/domain/text"
)

// ChainView is GET /v1/chains/{id}: the outcome with the reason for its
// class, its times against the SLA and its messages grouped by role.
type ChainView struct {
	Outcome
	Why     Why    `json:"why"`
	Times   Times  `json:"times"`
	SLA     SLA    `json:"sla"`
	Request *Step  `json:"request"`
	Interim []Step `json:"interim"`
	Answers []Step `json:"answers"`
	Other   []Step `json:"other"` // cancels and anything else in the chain
	Steps   []Step `json:"steps"` // every message, in event time order
	// RequiredResponse: the purpose is one a responder must answer
	// (TEFCA: treatment and individual access).
	RequiredResponse bool `json:"required_response"`
	// CrossCommunity is set for IHE cross-community transactions only.
	CrossCommunity *CrossCommunity `json:"cross_community"`
	// ExceptionChecks: the cited exception checked against the
	// responder's behaviour, one per rule ([] when none applied).
	ExceptionChecks []ExceptionCheck `json:"exception_checks"`
}

// CrossCommunity is what a chain of an IHE cross-community transaction
// (XCPD, XCA) adds: the two gateways' communities and whose records of the
// transaction hinscore saw.
type CrossCommunity struct {
	RequesterCommunity string `json:"requester_community"`
	ResponderCommunity string `json:"responder_community"`
	// The organisations the directory names for the communities; "" when
	// it does not know one.
	RequesterName string `json:"requester_name"`
	ResponderName string `json:"responder_name"`
	Sides         string `json:"sides"`      // initiating, responding or both
	SidesSeen     string `json:"sides_seen"` // what that means
}

// Why says which rules decided the class.
type Why struct {
	RuleVersion    string `json:"rule_version"`
	MappingVersion string `json:"mapping_version"`
	DecidingAnswer string `json:"deciding_answer"`
	Explanation    string `json:"explanation"`
	// Timing says why an untimed chain has no times to acknowledge or
	// fulfil; "" for a timed one.
	Timing string `json:"timing"`
}

// Times are the chain's instants (RFC 3339, UTC; empty when they did not happen).
type Times struct {
	RequestedAt    string `json:"requested_at"`
	AcknowledgedAt string `json:"acknowledged_at"`
	AnsweredAt     string `json:"answered_at"`
	DecidedAt      string `json:"decided_at"`
}

// SLA is the deadline applied and whether it was met.
type SLA struct {
	SLAMs   uint64 `json:"sla_ms"`
	GraceMs uint64 `json:"grace_ms"`
	// BusinessDays is the SLA in business days (SLAMs is then the span
	// they gave this request); 0 when it is a duration.
	BusinessDays uint32 `json:"business_days"`
	Text         string `json:"text"` // the SLA as a person reads it
	// Deadline is "" for an untimed chain: its request time is when the
	// exchange was recorded, so no deadline follows from it.
	Deadline string `json:"deadline"`
	// UnansweredAfter is when a request without a final answer counts as unanswered.
	UnansweredAfter string `json:"unanswered_after"`
	Met             *bool  `json:"met"` // nil: no final answer
}

func msTime(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func explain(o Outcome) string {
	code := o.ExceptionCode
	switch o.Class {
	case "fulfilled":
		return "the deciding answer returned the record within the SLA"
	case "fulfilled_late":
		return fmt.Sprintf("the record came after the SLA of %s", slaText(o))
	case "partial":
		return "the deciding answer returned part of the record"
	case "not_found":
		return "the responder answered that it holds no such record"
	case "refused_exception":
		return fmt.Sprintf("refused citing the 45 CFR 171 exception %s (lawful on its face; reported)", code)
	case "refused_unjustified":
		return "refused without a recognised 45 CFR 171 exception"
	case "redirected":
		return fmt.Sprintf("told to use another channel (%s) instead of answering", code)
	case "error_transient":
		return "the responder answered with a transient error"
	case "error_permanent":
		return "the responder answered with a permanent error"
	case "cancelled":
		return "the requester cancelled before the deadline"
	case "unanswered":
		return fmt.Sprintf("no final answer by the SLA plus grace (%s); decided when event time passed it",
			time.Duration(o.SLAMs+o.GraceMs)*time.Millisecond)
	case "orphan":
		return "an answer that never matched a request (data quality, not an offence)"
	}
	return "class " + o.Class
}

// slaText is the SLA as a person reads it: a duration, or business days
// with the span they gave this request.
func slaText(o Outcome) string {
	d := time.Duration(o.SLAMs) * time.Millisecond
	if o.SLABusinessDays == 0 {
		return d.String()
	}
	return fmt.Sprintf("%d business days (US federal calendar, the day of receipt not counted; %s for this request)", o.SLABusinessDays, d)
}

// untimedTiming explains an untimed chain's missing times.
const untimedTiming = "the audit records say when it ended, not when it was asked: no time to acknowledge or fulfil, and never late"

// sidesSeen explains whose records of a cross-community transaction were seen.
func sidesSeen(sides string) string {
	switch sides {
	case "both":
		return "both gateways recorded the transaction (initiating and responding): counted once"
	case "initiating":
		return "only the initiating (requester's) gateway's record was seen; the responding gateway's is missing"
	case "responding":
		return "only the responding (responder's) gateway's record was seen; the initiating gateway's is missing"
	}
	return "no gateway's record names its side"
}

func chainView(o Outcome, steps []Step) ChainView {
	v := ChainView{Outcome: o, Interim: []Step{}, Answers: []Step{}, Other: []Step{}, Steps: steps}
	if v.Steps == nil {
		v.Steps = []Step{}
	}
	if p, err := purpose.Parse(o.Purpose); err == nil {
		v.RequiredResponse = purpose.RequiredResponse(p)
	}
	if isCrossCommunity(o) {
		v.CrossCommunity = &CrossCommunity{RequesterCommunity: o.RequesterCommunity, ResponderCommunity: o.ResponderCommunity,
			Sides: o.Sides, SidesSeen: sidesSeen(o.Sides)}
	}
	v.Why = Why{RuleVersion: o.RuleVersion, MappingVersion: o.MappingVersion, DecidingAnswer: o.ResponseID, Explanation: explain(o)}
	if o.Untimed {
		v.Why.Timing = untimedTiming
	}
	v.Times = Times{RequestedAt: msTime(o.RequestedAtMs), AcknowledgedAt: msTime(o.AckAtMs), AnsweredAt: msTime(o.AnsweredAtMs), DecidedAt: msTime(o.DecidedAtMs)}
	v.SLA = SLA{SLAMs: o.SLAMs, GraceMs: o.GraceMs, BusinessDays: o.SLABusinessDays, Text: slaText(o)}
	if o.Class != "orphan" {
		if !o.Untimed {
			v.SLA.Deadline = msTime(o.RequestedAtMs + int64(o.SLAMs))
		}
		v.SLA.UnansweredAfter = msTime(o.RequestedAtMs + int64(o.SLAMs+o.GraceMs))
		if o.TTFMs != nil {
			met := *o.TTFMs <= o.SLAMs
			v.SLA.Met = &met
		}
	}
	for i := range v.Steps {
		st := v.Steps[i]
		switch st.Role {
		case "request":
			if v.Request == nil {
				v.Request = &v.Steps[i]
			} else {
				v.Other = append(v.Other, st)
			}
		case "interim":
			v.Interim = append(v.Interim, st)
		case "response":
			v.Answers = append(v.Answers, st)
		default:
			v.Other = append(v.Other, st)
		}
	}
	return v
}

// chain loads a chain the principal may see: 404 when it does not exist,
// 403 when it belongs to another network than the operator's.
func (s *Server) chain(ctx context.Context, r *http.Request, p Principal) (ChainView, error) {
	id, err := parseChainID(r.PathValue("id"))
	if err != nil {
		return ChainView{}, err
	}
	k, err := s.store.chainKey(ctx, id)
	if err == errNotFound {
		return ChainView{}, errChainNotFound
	}
	if err != nil {
		return ChainView{}, err
	}
	if !p.CanSee(k.network) {
		return ChainView{}, errForbiddenNetwork
	}
	// The key names the version, so the outcome and its steps are read at
	// once: the lookup waits for the slower of the two, not for both.
	var (
		o    Outcome
		oErr error
		read = make(chan struct{})
	)
	go func() {
		defer close(read)
		o, oErr = s.store.outcomeAt(ctx, id, k)
	}()
	steps, err := s.store.steps(ctx, k.stepsOf(id))
	<-read
	if oErr == errNotFound {
		return ChainView{}, errChainNotFound
	}
	if oErr != nil {
		return ChainView{}, oErr
	}
	if err == nil && o.Version != k.version {
		// A version written between the two reads (outcome_versions is
		// fed after exchange_outcomes): its steps are those of o.
		steps, err = s.store.steps(ctx, o)
	}
	if err != nil {
		return ChainView{}, err
	}
	v := chainView(o, steps)
	if cc := v.CrossCommunity; cc != nil {
		names, err := s.store.communityNames(ctx, []string{cc.RequesterCommunity, cc.ResponderCommunity})
		if err != nil {
			return ChainView{}, err
		}
		cc.RequesterName, cc.ResponderName = names[cc.RequesterCommunity], names[cc.ResponderCommunity]
	}
	if v.ExceptionChecks, err = s.store.exceptionChecks(ctx, id); err != nil {
		return ChainView{}, err
	}
	return v, nil
}

func (s *Server) handleChain(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := onlyParams(r); err != nil {
		return err
	}
	v, err := s.chain(r.Context(), r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// SearchResult is GET /v1/chains.
type SearchResult struct {
	Chains     []Outcome `json:"chains"`
	NextCursor string    `json:"next_cursor"` // "" on the last page
}

func (s *Server) searchFilter(r *http.Request, p Principal) (SearchFilter, error) {
	if err := onlyParams(r, "network", "responder", "outcome", "purpose", "from", "to", "control_id", "limit", "cursor"); err != nil {
		return SearchFilter{}, err
	}
	q := r.URL.Query()
	var f SearchFilter
	var err error
	if v := q.Get("network"); q.Has("network") {
		if f.Network, err = parseNetwork("network", v); err != nil {
			return f, err
		}
	}
	if v := q.Get("responder"); q.Has("responder") {
		if !orgPattern.MatchString(v) {
			return f, badParam("responder", "want an organisation identifier (1-128 of [A-Za-z0-9._:/^&#-])")
		}
		f.Responder = v
	}
	if v := q.Get("outcome"); q.Has("outcome") {
		if f.Outcome, err = parseOutcomeClass(v); err != nil {
			return f, err
		}
	}
	if v := q.Get("purpose"); q.Has("purpose") {
		if f.Purpose, err = parsePurpose(v); err != nil {
			return f, err
		}
	}
	if v := q.Get("from"); q.Has("from") {
		if f.From, err = parseTime("from", v); err != nil {
			return f, err
		}
	}
	if v := q.Get("to"); q.Has("to") {
		if f.To, err = parseTime("to", v); err != nil {
			return f, err
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, badParam("to", "must be after from")
	}
	if v := q.Get("control_id"); q.Has("control_id") {
		if !controlIDPattern.MatchString(v) {
			return f, badParam("control_id", "want a message id (1-128 of [A-Za-z0-9._:/-])")
		}
		f.ControlID = v
	}
	if f.Limit, err = parseLimit(q.Get("limit"), defaultSearchLimit, maxSearchLimit); err != nil {
		return f, err
	}
	if q.Has("limit") && q.Get("limit") == "" {
		return f, badParam("limit", "empty")
	}
	if v := q.Get("cursor"); q.Has("cursor") {
		if f.After, err = parseCursor(v); err != nil {
			return f, err
		}
	}
	if p.Role == RoleOperator {
		if f.Network != "" && f.Network != p.Network {
			return f, errForbiddenNetwork
		}
		f.Networks = []string{p.Network}
	}
	return f, nil
}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request, p Principal) error {
	f, err := s.searchFilter(r, p)
	if err != nil {
		return err
	}
	// One more than the page tells whether another page follows.
	page := f.Limit
	f.Limit++
	chains, err := s.store.search(r.Context(), f)
	if err != nil {
		return err
	}
	res := SearchResult{Chains: chains}
	if len(chains) > page {
		res.Chains = chains[:page]
		last := res.Chains[page-1]
		res.NextCursor = encodeCursor(cursor{RequestedAtMs: last.RequestedAtMs, ID: last.ID})
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// Journey is GET /v1/patients/{token}/journey.
type Journey struct {
	Token       string   `json:"token"`
	Scope       []string `json:"scope"` // networks searched; empty = all
	RuleVersion string   `json:"rule_version"`
	// Purpose, when given, keeps the requests of that purpose only, and
	// the episodes are those of these requests; "" = every purpose.
	Purpose string `json:"purpose"`
	// Purposes are those of the patient's requests, whatever Purpose
	// keeps, in lib/domain/purpose's order: what Purpose may narrow to.
	Purposes  []string  `json:"purposes"`
	Requests  []Outcome `json:"requests"`
	Episodes  []Episode `json:"episodes"`
	Runaround bool      `json:"runaround"`
	Truncated bool      `json:"truncated"`
}

func (s *Server) journey(ctx context.Context, r *http.Request, p Principal) (Journey, error) {
	if err := onlyParams(r, "purpose"); err != nil {
		return Journey{}, err
	}
	token, err := parsePatientToken(r.PathValue("token"))
	if err != nil {
		return Journey{}, err
	}
	j := Journey{Token: token, Scope: []string{}, RuleVersion: RunaroundRuleVersion, Episodes: []Episode{}}
	if q := r.URL.Query(); q.Has("purpose") {
		if j.Purpose, err = parsePurpose(q.Get("purpose")); err != nil {
			return Journey{}, err
		}
	}
	var scope []string
	if p.Role == RoleOperator {
		scope = []string{p.Network}
		j.Scope = scope
	}
	if j.Requests, err = s.store.journey(ctx, token, scope); err != nil {
		return Journey{}, err
	}
	j.Truncated = len(j.Requests) >= journeyLimit
	j.Purposes = purposesOf(j.Requests)
	if j.Purpose != "" {
		kept := j.Requests[:0]
		for _, o := range j.Requests {
			if o.Purpose == j.Purpose {
				kept = append(kept, o)
			}
		}
		j.Requests = kept
	}
	if eps := detectRunarounds(j.Requests, s.clock.Now()); eps != nil {
		j.Episodes = eps
	}
	for _, e := range j.Episodes {
		j.Runaround = j.Runaround || e.Runaround
	}
	return j, nil
}

// purposesOf lists the purposes of a journey's requests in the order of
// lib/domain/purpose (then any other name, sorted).
func purposesOf(requests []Outcome) []string {
	seen := map[string]bool{}
	for _, o := range requests {
		seen[o.Purpose] = true
	}
	out := []string{}
	for _, p := range purpose.All {
		if seen[string(p)] {
			out = append(out, string(p))
			delete(seen, string(p))
		}
	}
	return append(out, sortedKeys(seen)...)
}

func (s *Server) handleJourney(w http.ResponseWriter, r *http.Request, p Principal) error {
	j, err := s.journey(r.Context(), r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) offenderQuery(r *http.Request) (OffenderQuery, error) {
	if err := onlyParams(r, "granularity", "k", "n", "threshold", "min_requests", "chains", "purpose"); err != nil {
		return OffenderQuery{}, err
	}
	q := DefaultOffenderQuery()
	v := r.URL.Query()
	var err error
	if v.Has("granularity") {
		if q.Granularity, err = parseGranularity(v.Get("granularity")); err != nil {
			return q, err
		}
	}
	ints := []struct {
		name     string
		into     *int
		min, max int
	}{{"k", &q.K, 1, 52}, {"n", &q.N, 1, 52}, {"chains", &q.Chains, 0, 50}}
	for _, it := range ints {
		if !v.Has(it.name) {
			continue
		}
		n, err := strconv.Atoi(v.Get(it.name))
		if err != nil || n < it.min || n > it.max || strconv.Itoa(n) != v.Get(it.name) {
			return q, badParam(it.name, "want %d..%d", it.min, it.max)
		}
		*it.into = n
	}
	if q.K > q.N {
		return q, badParam("k", "must not exceed n")
	}
	if v.Has("threshold") {
		t, err := strconv.ParseFloat(v.Get("threshold"), 64)
		if err != nil || !(t >= 0 && t < 1) {
			return q, badParam("threshold", "want a rate in [0, 1)")
		}
		q.Threshold = t
	}
	if v.Has("purpose") {
		if q.Purpose = v.Get("purpose"); q.Purpose != RequiredResponseLine {
			if _, err := purpose.Parse(q.Purpose); err != nil {
				return q, badParam("purpose", "want %s or one of %s", RequiredResponseLine, purposeNames())
			}
		}
	}
	if v.Has("min_requests") {
		n, err := strconv.ParseUint(v.Get("min_requests"), 10, 32)
		if err != nil || strconv.FormatUint(n, 10) != v.Get("min_requests") {
			return q, badParam("min_requests", "want a whole number")
		}
		q.MinRequests = n
	}
	return q, nil
}

func (s *Server) offenders(r *http.Request, p Principal) (Offenders, error) {
	q, err := s.offenderQuery(r)
	if err != nil {
		return Offenders{}, err
	}
	res, err := s.store.offenders(r.Context(), q, p.CanSee)
	if err != nil {
		return Offenders{}, err
	}
	if p.Role == RoleOperator {
		for i := range res.Offenders {
			res.Offenders[i].LatestScorecard.Scorecard = redactNetworks(res.Offenders[i].LatestScorecard.Scorecard, p.Network)
		}
	}
	return res, nil
}

func (s *Server) handleOffenders(w http.ResponseWriter, r *http.Request, p Principal) error {
	res, err := s.offenders(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) handleScorecard(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := onlyParams(r); err != nil {
		return err
	}
	network, err := parseNetwork("network", r.PathValue("network"))
	if err != nil {
		return err
	}
	period, err := parsePeriod(r.PathValue("period"))
	if err != nil {
		return err
	}
	if !p.CanSee(network) {
		return errForbiddenNetwork
	}
	row, err := s.store.scorecard(r.Context(), network, period)
	if err == errNotFound {
		return statusErr(http.StatusNotFound, "no scorecard for %s in %s", network, period)
	}
	if err != nil {
		return err
	}
	if p.Role == RoleOperator {
		row.Scorecard = redactNetworks(row.Scorecard, p.Network)
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

// RawView is GET /v1/chains/{id}/raw.
type RawView struct {
	Chain    string       `json:"chain"`
	Network  string       `json:"network"`
	Messages []RawMessage `json:"messages"`
}

// rawAccess checks the role and the reason, loads the chain and its raw
// messages and writes the audit entry; nothing is returned to the caller
// unless the entry is on disk.
func (s *Server) rawAccess(r *http.Request, p Principal, action string) (v ChainView, msgs []RawMessage, reason string, err error) {
	defer func() { s.auditIfRefused(r, p, action, err) }()
	if err := onlyParams(r, "reason"); err != nil {
		return ChainView{}, nil, "", err
	}
	if p.Role != RoleInvestigator {
		return ChainView{}, nil, "", errInvestigatorOnly
	}
	reason, err = parseReason(r.URL.Query().Get("reason"))
	if err != nil {
		return ChainView{}, nil, "", err
	}
	if s.js == nil {
		return ChainView{}, nil, "", statusErr(http.StatusServiceUnavailable, "RAW is not connected")
	}
	v, err = s.chain(r.Context(), r, p)
	if err != nil {
		return ChainView{}, nil, "", err
	}
	msgs, err = rawMessages(r.Context(), s.js, s.cfg.RawKeys, v.Network, v.Steps)
	if err != nil {
		return ChainView{}, nil, "", err
	}
	if err := s.writeAudit(r, p, AuditEntry{Action: action, Chain: v.ID, Network: v.Network, Reason: reason,
		Messages: len(msgs), Outcome: AuditServed}); err != nil {
		return ChainView{}, nil, "", err
	}
	s.metrics.rawAccess.WithLabelValues(action).Inc()
	return v, msgs, reason, nil
}

// writeAudit completes e with who asked, from where, when and the request
// id, and records it: in the local audit log, then in the AUDIT stream,
// where the entries of every api replica are kept together (503 while the
// log is not open, or when either write fails).
func (s *Server) writeAudit(r *http.Request, p Principal, e AuditEntry) error {
	s.mu.Lock()
	audit := s.audit
	s.mu.Unlock()
	if audit == nil {
		return statusErr(http.StatusServiceUnavailable, "audit log not open")
	}
	e.Time, e.Who, e.Role, e.TokenID = s.clock.Now().UTC(), p.Name, p.Role, p.tokenID
	e.Remote, e.RequestID = r.RemoteAddr, requestID()
	return recordAudit(r.Context(), audit, s.js, e)
}

// auditIfRefused logs the attempt an error refused (a bad parameter or
// another 4xx).
func (s *Server) auditIfRefused(r *http.Request, p Principal, action string, err error) {
	var he *httpError
	switch {
	case errors.Is(err, ErrBadParam):
		s.auditDenied(r, p, action, err.Error())
	case errors.As(err, &he) && he.status >= 400 && he.status < 500:
		s.auditDenied(r, p, action, he.msg)
	}
}

// auditDenied logs an attempt at raw messages or evidence that was refused.
// The chain and reason are the caller's, as given but bounded (the log must
// not grow by whatever a caller sends); a failure to log is only logged,
// since nothing was served.
func (s *Server) auditDenied(r *http.Request, p Principal, action, refusal string) {
	q := r.URL.Query()
	if err := s.writeAudit(r, p, AuditEntry{Action: action, Chain: text.Truncate(r.PathValue("id"), 64),
		Responder: text.Truncate(q.Get("responder"), 128), Period: text.Truncate(q.Get("period"), 16),
		Reason: text.Truncate(q.Get("reason"), 500), Outcome: AuditDenied, Refusal: text.Truncate(refusal, 200)}); err != nil {
		s.log.Error().Err(err).Str("action", action).Msg("denied access not written to the audit log")
	}
}

func (s *Server) handleRaw(w http.ResponseWriter, r *http.Request, p Principal) error {
	v, msgs, _, err := s.rawAccess(r, p, "raw")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, RawView{Chain: v.ID, Network: v.Network, Messages: msgs})
	return nil
}

func (s *Server) handleEvidence(w http.ResponseWriter, r *http.Request, p Principal) error {
	v, msgs, reason, err := s.rawAccess(r, p, "evidence")
	if err != nil {
		return err
	}
	data, err := evidenceZip(v, msgs, p.Name, reason, s.clock.Now())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="chain-`+v.ID+`.zip"`)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(data)
	return nil
}
