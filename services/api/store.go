package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/hinscore/hinscore/proto/outcomeclass"
	"github.com/hinscore/hinscore/services/lib/domain/purpose"
)

// errNotFound is returned when a chain does not exist.
var errNotFound = errors.New("api: not found")

// Every query below binds request input through the driver's parameters
// (?); nothing from a request is spliced into SQL text. The fixed fragments
// that are spliced (column lists, ORDER BY) are constants of this file.

// outcomeColumns are read from exchange_outcomes, in scanOutcome's order.
const outcomeColumns = `toString(outcome_id) AS id, version, network, request_id, correlation_key, request_kind,
	requester_org, responder_org, outcome, exception_code, reason_codes, patient_token,
	requested_at_ms, acknowledged_at_ms, answered_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms,
	decided_at_ms, rule_version, mapping_version, response_id, record_count, step_count,
	purpose, purpose_code, requester_community, responder_community, sides, sla_business_days, untimed`

// safeSettings keep a filter on a non-key column from being evaluated
// before FINAL collapses the versions (PREWHERE would then match a
// superseded version), and from being pushed into the FINAL subquery.
// The settings also travel as a value of the context, so that a case
// packet records the settings each of its queries ran with.
func safeSettings(ctx context.Context) context.Context {
	settings := clickhouse.Settings{"optimize_move_to_prewhere": 0}
	return clickhouse.Context(context.WithValue(ctx, settingsKey{}, settings), clickhouse.WithSettings(settings))
}

// settingsKey is the context key of the settings safeSettings applies.
type settingsKey struct{}

// settingsOf returns the settings safeSettings put in ctx (nil: none).
func settingsOf(ctx context.Context) clickhouse.Settings {
	s, _ := ctx.Value(settingsKey{}).(clickhouse.Settings)
	return s
}

// Outcome is one request chain's classification, as the latest version of
// its outcome row says.
type Outcome struct {
	ID             string   `json:"id"`
	Version        uint64   `json:"version"`
	Network        string   `json:"network"`
	RequestID      string   `json:"request_id"`
	CorrelationKey string   `json:"correlation_key"`
	RequestKind    string   `json:"request_kind"`
	RequesterOrg   string   `json:"requester_org"`
	ResponderOrg   string   `json:"responder_org"`
	Class          string   `json:"outcome"`
	ExceptionCode  string   `json:"exception_code"`
	ReasonCodes    []string `json:"reason_codes"`
	PatientToken   string   `json:"patient_token"`
	RequestedAtMs  int64    `json:"requested_at_ms"`
	AckAtMs        int64    `json:"acknowledged_at_ms"`
	AnsweredAtMs   int64    `json:"answered_at_ms"`
	TTAMs          *uint64  `json:"tta_ms"`
	TTFMs          *uint64  `json:"ttf_ms"`
	SLAMs          uint64   `json:"sla_ms"`
	GraceMs        uint64   `json:"grace_ms"`
	DecidedAtMs    int64    `json:"decided_at_ms"`
	RuleVersion    string   `json:"rule_version"`
	MappingVersion string   `json:"mapping_version"`
	ResponseID     string   `json:"response_id"`
	RecordCount    uint32   `json:"record_count"`
	StepCount      uint32   `json:"step_count"`
	// Purpose is the canonical exchange purpose (unknown when the request
	// carried none: the store writes it so), PurposeCode the code as sent
	// ("system|code", "" when none).
	Purpose     string `json:"purpose"`
	PurposeCode string `json:"purpose_code"`
	// Home community ids of a cross-community transaction's gateways.
	RequesterCommunity string `json:"requester_community"`
	ResponderCommunity string `json:"responder_community"`
	// Sides says whose records of a cross-community transaction were
	// seen: initiating, responding or both; "" for the other formats.
	Sides string `json:"sides"`
	// SLABusinessDays: the SLA was given in business days (SLAMs is the
	// span it gave this request); 0 when it is a duration.
	SLABusinessDays uint32 `json:"sla_business_days"`
	// Untimed: the request's time is when its record was written, not
	// when it was asked, so there is no time to acknowledge or fulfil.
	Untimed bool `json:"untimed"`
	Suspect bool `json:"suspect"`
}

type rowScanner interface{ Scan(dest ...any) error }

func scanOutcome(r rowScanner) (Outcome, error) {
	var o Outcome
	err := r.Scan(&o.ID, &o.Version, &o.Network, &o.RequestID, &o.CorrelationKey, &o.RequestKind,
		&o.RequesterOrg, &o.ResponderOrg, &o.Class, &o.ExceptionCode, &o.ReasonCodes, &o.PatientToken,
		&o.RequestedAtMs, &o.AckAtMs, &o.AnsweredAtMs, &o.TTAMs, &o.TTFMs, &o.SLAMs, &o.GraceMs,
		&o.DecidedAtMs, &o.RuleVersion, &o.MappingVersion, &o.ResponseID, &o.RecordCount, &o.StepCount,
		&o.Purpose, &o.PurposeCode, &o.RequesterCommunity, &o.ResponderCommunity, &o.Sides, &o.SLABusinessDays, &o.Untimed)
	if o.ReasonCodes == nil {
		o.ReasonCodes = []string{}
	}
	o.Suspect = suspect(o)
	return o, err
}

// suspect is DOMAIN.md's "suspected blocking" for one request.
func suspect(o Outcome) bool {
	if c, err := outcomeclass.Parse(o.Class); err == nil && outcomeclass.Suspect(c) {
		return true
	}
	return fulfilledClass(o.Class) && o.TTFMs != nil && o.SLAMs > 0 && *o.TTFMs > 3*o.SLAMs
}

// Step is one message of a chain, with the event's details.
type Step struct {
	EventID     string `json:"event_id"`
	MessageID   string `json:"message_id"`
	MessageType string `json:"message_type"`
	Role        string `json:"role"`
	Status      string `json:"status"`
	EventTimeMs int64  `json:"event_time_ms"`
	Format      string `json:"format"`
	InReplyTo   string `json:"in_reply_to"`
	AckCode     string `json:"ack_code"`
	// ReasonCodes and ExceptionCode (the cited exception or redirect kind)
	// are what the mapping decided from the reason; the sender's words are
	// not in ClickHouse (they may name the patient) and are read in the
	// original message, through the audited raw view.
	ReasonCodes   []string `json:"reason_codes"`
	ExceptionCode string   `json:"exception_code"`
	RawSubject    string   `json:"raw_subject"`
	RawSeq        uint64   `json:"raw_seq"`
	// Side is which gateway recorded the step (initiating, responding) in a
	// cross-community transaction; "" for the other formats.
	Side string `json:"side"`
}

// store reads ClickHouse.
type store struct {
	conn driver.Conn
}

// chainKey is where a chain's latest version lives in exchange_outcomes
// (the rest of its key and its partition), and which version that is.
type chainKey struct {
	network     string
	requestedAt time.Time
	version     uint64
}

// stepsOf is what steps needs of a chain, known from its key alone.
func (k chainKey) stepsOf(id uuid.UUID) Outcome {
	return Outcome{ID: id.String(), Version: k.version, Network: k.network, RequestedAtMs: k.requestedAt.UnixMilli()}
}

// chainKey finds a chain in outcome_versions: one 256-row granule of each
// part, the highest version of the id whether or not versions were merged.
func (s *store) chainKey(ctx context.Context, id uuid.UUID) (chainKey, error) {
	var k chainKey
	err := s.conn.QueryRow(ctx, `SELECT network, requested_at, version FROM outcome_versions
		PREWHERE outcome_id = toUUID(?) ORDER BY version DESC LIMIT 1`, id.String()).Scan(&k.network, &k.requestedAt, &k.version)
	if errors.Is(err, sql.ErrNoRows) {
		return chainKey{}, errNotFound
	}
	if err != nil {
		return chainKey{}, fmt.Errorf("api.store.chainKey: %w", err)
	}
	return k, nil
}

// outcomeAt returns the latest version of a chain, read with the whole
// (network, outcome_id) key in the one monthly partition of its request
// time. PREWHERE on the id reads the other columns only of the granule that
// holds the chain, not of every granule the key range selects in each part.
func (s *store) outcomeAt(ctx context.Context, id uuid.UUID, k chainKey) (Outcome, error) {
	row := s.conn.QueryRow(ctx, `SELECT `+outcomeColumns+`
		FROM exchange_outcomes
		PREWHERE outcome_id = toUUID(?)
		WHERE network = ? AND requested_at = toDateTime(?, 'UTC')
		ORDER BY version DESC LIMIT 1`, id.String(), k.network, k.requestedAt.UTC().Unix())
	o, err := scanOutcome(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Outcome{}, errNotFound
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("api.store.outcomeAt: %w", err)
	}
	return o, nil
}

// stepsFrom bounds a chain's steps from below so the monthly partitions
// before its request are skipped: no step precedes the request by more
// than the linker's lateness (an answer that came first); a day is ample.
func stepsFrom(o Outcome) int64 {
	return o.RequestedAtMs/1000 - 86400
}

// steps returns the messages of a chain as its version `version` listed
// them, with each event's details, in event time order. The id selects a
// granule in each part of each month from the request's on; PREWHERE reads
// the other columns only where the chain is.
func (s *store) steps(ctx context.Context, o Outcome) ([]Step, error) {
	rows, err := s.conn.Query(ctx, `SELECT toString(event_id), message_id, message_type, role, status, event_time_ms, raw_seq, side
		FROM outcome_steps
		PREWHERE outcome_id = toUUID(?)
		WHERE version <= ? AND event_time >= toDateTime(?, 'UTC')
		ORDER BY version DESC LIMIT 1 BY event_id`, o.ID, o.Version, stepsFrom(o))
	if err != nil {
		return nil, fmt.Errorf("api.store.steps: %w", err)
	}
	defer rows.Close()
	var steps []Step
	for rows.Next() {
		var st Step
		if err := rows.Scan(&st.EventID, &st.MessageID, &st.MessageType, &st.Role, &st.Status, &st.EventTimeMs, &st.RawSeq, &st.Side); err != nil {
			return nil, fmt.Errorf("api.store.steps: %w", err)
		}
		st.ReasonCodes = []string{}
		steps = append(steps, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("api.store.steps: %w", err)
	}
	sort.Slice(steps, func(i, j int) bool {
		if steps[i].EventTimeMs != steps[j].EventTimeMs {
			return steps[i].EventTimeMs < steps[j].EventTimeMs
		}
		if ri, rj := roleRank(steps[i].Role), roleRank(steps[j].Role); ri != rj {
			return ri < rj
		}
		return steps[i].EventID < steps[j].EventID
	})
	if len(steps) == 0 {
		return steps, nil
	}
	return steps, s.eventDetails(ctx, o.Network, steps)
}

// roleRank orders the steps of one instant: an untimed audit record gives
// a request and its answer the same time, and the request comes first.
func roleRank(role string) int {
	switch role {
	case "request":
		return 0
	case "interim":
		return 1
	case "response":
		return 2
	}
	return 3
}

// eventDetails fills each step from exchange_events, read by its key
// (network, event_time range of the chain, event ids).
func (s *store) eventDetails(ctx context.Context, network string, steps []Step) error {
	ids := make([]string, len(steps))
	lo, hi := steps[0].EventTimeMs, steps[0].EventTimeMs
	for i, st := range steps {
		ids[i] = st.EventID
		lo, hi = min(lo, st.EventTimeMs), max(hi, st.EventTimeMs)
	}
	rows, err := s.conn.Query(ctx, `SELECT toString(event_id), format, in_reply_to, ack_code, reason_codes, exception_code, raw_subject, raw_seq
		FROM exchange_events
		WHERE network = ? AND event_time >= toDateTime(?, 'UTC') AND event_time <= toDateTime(?, 'UTC') AND has(?, toString(event_id))
		LIMIT 1 BY event_id`, network, lo/1000, hi/1000+1, ids)
	if err != nil {
		return fmt.Errorf("api.store.eventDetails: %w", err)
	}
	defer rows.Close()
	byID := make(map[string]int, len(steps))
	for i, st := range steps {
		byID[st.EventID] = i
	}
	for rows.Next() {
		var (
			id  string
			det Step
		)
		if err := rows.Scan(&id, &det.Format, &det.InReplyTo, &det.AckCode, &det.ReasonCodes, &det.ExceptionCode, &det.RawSubject, &det.RawSeq); err != nil {
			return fmt.Errorf("api.store.eventDetails: %w", err)
		}
		i, ok := byID[id]
		if !ok {
			continue
		}
		st := &steps[i]
		st.Format, st.InReplyTo, st.AckCode, st.ExceptionCode, st.RawSubject = det.Format, det.InReplyTo, det.AckCode, det.ExceptionCode, det.RawSubject
		if det.ReasonCodes != nil {
			st.ReasonCodes = det.ReasonCodes
		}
		if st.RawSeq == 0 {
			st.RawSeq = det.RawSeq
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("api.store.eventDetails: %w", err)
	}
	return nil
}

// communityNames returns the organisation names the directory gives home
// community ids (identifier_kind home_community, chstore.KindHomeCommunity).
func (s *store) communityNames(ctx context.Context, ids []string) (map[string]string, error) {
	rows, err := s.conn.Query(safeSettings(ctx), `SELECT identifier, name FROM organizations FINAL
		WHERE has(?, identifier) AND identifier_kind = 'home_community'`, ids)
	if err != nil {
		return nil, fmt.Errorf("api.store.communityNames: %w", err)
	}
	defer rows.Close()
	names := map[string]string{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("api.store.communityNames: %w", err)
		}
		names[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("api.store.communityNames: %w", err)
	}
	return names, nil
}

// SearchFilter is a validated chain search.
type SearchFilter struct {
	Network   string
	Networks  []string // the networks the caller may see; nil = all
	Responder string
	Outcome   string
	From, To  time.Time // [From, To) on requested_at; zero = unbounded
	ControlID string
	Purpose   string // a canonical purpose
	Limit     int
	After     *cursor
}

// cursor is the position after the last chain of a page: chains are listed
// newest first by (requested_at_ms, outcome_id).
type cursor struct {
	RequestedAtMs int64
	ID            string
}

// search lists chains, newest first. The FINAL subquery collapses versions
// before the outer WHERE filters on class and responder (see safeSettings).
// A control id is resolved through outcomes_by_request, ordered by it.
func (s *store) search(ctx context.Context, f SearchFilter) ([]Outcome, error) {
	var (
		inner []string
		outer []string
		args  []any
	)
	if f.Network != "" {
		inner = append(inner, "network = ?")
		args = append(args, f.Network)
	}
	if f.Networks != nil {
		inner = append(inner, "has(?, network)")
		args = append(args, f.Networks)
	}
	if !f.From.IsZero() {
		inner = append(inner, "requested_at >= toDateTime(?, 'UTC')")
		args = append(args, f.From.Unix())
	}
	if !f.To.IsZero() {
		// requested_at has whole seconds: the _ms filter below is exact.
		inner = append(inner, "requested_at <= toDateTime(?, 'UTC')")
		args = append(args, f.To.Unix())
	}
	if f.ControlID != "" {
		// GLOBAL: on a cluster both tables are Distributed, and a plain IN
		// of one in the other is refused ("Double-distributed IN/JOIN
		// subqueries is denied"); GLOBAL reads the ids once and sends them
		// to every shard. On one server it is the same IN.
		inner = append(inner, "(network, outcome_id) GLOBAL IN (SELECT network, outcome_id FROM outcomes_by_request WHERE request_id = ?)")
		args = append(args, f.ControlID)
	}
	if !f.From.IsZero() {
		outer = append(outer, "requested_at_ms >= ?")
		args = append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		outer = append(outer, "requested_at_ms < ?")
		args = append(args, f.To.UnixMilli())
	}
	if f.Responder != "" {
		outer = append(outer, "responder_org = ?")
		args = append(args, f.Responder)
	}
	if f.Outcome != "" {
		outer = append(outer, "outcome = ?")
		args = append(args, f.Outcome)
	}
	if f.Purpose != "" {
		outer = append(outer, purposeCond)
		args = append(args, f.Purpose)
	}
	if f.After != nil {
		outer = append(outer, "(requested_at_ms < ? OR (requested_at_ms = ? AND toString(outcome_id) < ?))")
		args = append(args, f.After.RequestedAtMs, f.After.RequestedAtMs, f.After.ID)
	}
	args = append(args, f.Limit)
	q := `SELECT ` + outcomeColumns + ` FROM (SELECT * FROM exchange_outcomes FINAL` + where(inner) + `)` + where(outer) +
		` ORDER BY requested_at_ms DESC, toString(outcome_id) DESC LIMIT ?`
	return s.outcomes(safeSettings(ctx), "api.store.search", q, args...)
}

// purposeCond matches a canonical purpose (a request that carried none
// is stored as unknown).
const purposeCond = "purpose = ?"

func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

func (s *store) outcomes(ctx context.Context, where, q string, args ...any) ([]Outcome, error) {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer rows.Close()
	out := []Outcome{}
	for rows.Next() {
		o, err := scanOutcome(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return out, nil
}

// journeyLimit bounds a journey: a token asked for more often than this is
// shown with its latest requests (and says it was cut).
const journeyLimit = 2000

// journey returns every request whose latest outcome version names the
// patient token, oldest first: what `outcomes` (the FINAL view) holds for
// the token, without its cost.
//
// patient_journeys holds every version of every outcome naming a patient,
// ordered by the token, so the token's rows are a few 256-row granules per
// part; of each outcome the highest version there is kept, the journeyLimit
// newest. That version is the outcome's latest unless outcome_versions,
// keyed by the outcome id alone, knows a higher one: a later version naming
// another token (or none), or one patient_journeys has not received yet.
// Such an outcome is read again from exchange_outcomes and kept if its
// latest version names the token; a full page with one of them is read
// again whole, as a row past the limit may then belong in it.
func (s *store) journey(ctx context.Context, token string, networks []string) ([]Outcome, error) {
	out, err := s.journeyRows(ctx, token, networks, journeyLimit)
	if err != nil {
		return nil, err
	}
	out, superseded, err := s.latestOnly(ctx, token, out)
	if err != nil {
		return nil, err
	}
	if len(superseded) > 0 && len(out)+len(superseded) == journeyLimit {
		if out, err = s.journeyRows(ctx, token, networks, 0); err != nil {
			return nil, err
		}
		if out, superseded, err = s.latestOnly(ctx, token, out); err != nil {
			return nil, err
		}
	}
	if len(superseded) > 0 {
		latest, err := s.outcomes(ctx, "api.store.journey", `SELECT `+outcomeColumns+` FROM exchange_outcomes
			WHERE (network, outcome_id) IN (?) ORDER BY version DESC LIMIT 1 BY network, outcome_id`, superseded)
		if err != nil {
			return nil, err
		}
		for _, o := range latest {
			if o.PatientToken == token {
				out = append(out, o)
			}
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].RequestedAtMs != out[j].RequestedAtMs {
				return out[i].RequestedAtMs > out[j].RequestedAtMs
			}
			return out[i].ID > out[j].ID
		})
		out = out[:min(len(out), journeyLimit)]
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].RequestedAtMs < out[j].RequestedAtMs })
	return out, nil
}

// journeyRows reads the highest version of each outcome patient_journeys
// holds for the token, newest first (request time, then id), at most limit
// (0: all).
func (s *store) journeyRows(ctx context.Context, token string, networks []string, limit int) ([]Outcome, error) {
	q, args := `SELECT `+outcomeColumns+` FROM patient_journeys PREWHERE patient_token = ?`, []any{token}
	if networks != nil {
		q += ` AND has(?, network)`
		args = append(args, networks)
	}
	q += ` ORDER BY version DESC LIMIT 1 BY network, outcome_id`
	q = `SELECT * FROM (` + q + `) ORDER BY requested_at_ms DESC, id DESC`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	return s.outcomes(ctx, "api.store.journey", q, args...)
}

// latestOnly keeps the rows whose version is the highest outcome_versions
// holds for their id (or that it does not hold yet), in order, and returns
// the (network, outcome_id) of the others. A page's ids are sent as a set;
// more than a page are named by the token again.
func (s *store) latestOnly(ctx context.Context, token string, rows []Outcome) ([]Outcome, []clickhouse.GroupSet, error) {
	if len(rows) == 0 {
		return rows, nil, nil
	}
	var (
		q    = `SELECT toString(outcome_id), max(version) FROM outcome_versions WHERE outcome_id `
		args []any
	)
	if len(rows) <= journeyLimit {
		ids := clickhouse.GroupSet{Value: make([]any, len(rows))}
		for i, o := range rows {
			ids.Value[i] = o.ID
		}
		q += `IN ?`
		args = append(args, ids)
	} else {
		// GLOBAL: both tables are Distributed on a cluster (see search).
		q += `GLOBAL IN (SELECT outcome_id FROM patient_journeys PREWHERE patient_token = ?)`
		args = append(args, token)
	}
	res, err := s.conn.Query(ctx, q+` GROUP BY outcome_id`, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("api.store.journey: %w", err)
	}
	defer res.Close()
	latest := make(map[string]uint64, len(rows))
	for res.Next() {
		var (
			id string
			v  uint64
		)
		if err := res.Scan(&id, &v); err != nil {
			return nil, nil, fmt.Errorf("api.store.journey: %w", err)
		}
		latest[id] = v
	}
	if err := res.Err(); err != nil {
		return nil, nil, fmt.Errorf("api.store.journey: %w", err)
	}
	var superseded []clickhouse.GroupSet
	current := rows[:0]
	for _, o := range rows {
		if o.Version < latest[o.ID] {
			superseded = append(superseded, clickhouse.GroupSet{Value: []any{o.Network, o.ID}})
			continue
		}
		current = append(current, o)
	}
	return current, superseded, nil
}

// ScorecardRow is one stored scorecard (latest run of its network and period).
type ScorecardRow struct {
	Network        string          `json:"network"`
	Granularity    string          `json:"granularity"`
	Period         string          `json:"period"`
	PeriodStartMs  int64           `json:"period_start_ms"`
	PeriodEndMs    int64           `json:"period_end_ms"`
	GeneratedAtMs  int64           `json:"generated_at_ms"`
	FormulaVersion string          `json:"formula_version"`
	Requests       uint64          `json:"requests"`
	Suspect        uint64          `json:"suspect"`
	SuspectRate    float64         `json:"suspect_rate"`
	SuspectCILow   float64         `json:"suspect_ci_low"`
	Scorecard      json.RawMessage `json:"scorecard"`
}

// scorecard returns the latest run of one network's scorecard for a period
// label; the label says its granularity.
func (s *store) scorecard(ctx context.Context, network, period string) (ScorecardRow, error) {
	rows, err := s.scorecards(ctx, `network = ? AND period = ?`, network, period)
	if err != nil {
		return ScorecardRow{}, err
	}
	if len(rows) == 0 {
		return ScorecardRow{}, errNotFound
	}
	return rows[0], nil
}

// scorecards reads the scorecards table, the last run of each network,
// granularity and period. cond is a constant of this file with ? for
// the request's values.
func (s *store) scorecards(ctx context.Context, cond string, args ...any) ([]ScorecardRow, error) {
	rows, err := s.conn.Query(ctx, `SELECT network, granularity, period, period_start_ms, period_end_ms,
			generated_at_ms, formula_version, requests, suspect, suspect_rate, suspect_ci_low, scorecard_json
		FROM scorecards WHERE `+cond+`
		ORDER BY generated_at_ms DESC LIMIT 1 BY network, granularity, period_start`, args...)
	if err != nil {
		return nil, fmt.Errorf("api.store.scorecards: %w", err)
	}
	defer rows.Close()
	var out []ScorecardRow
	for rows.Next() {
		var r ScorecardRow
		var js string
		if err := rows.Scan(&r.Network, &r.Granularity, &r.Period, &r.PeriodStartMs, &r.PeriodEndMs, &r.GeneratedAtMs, &r.FormulaVersion,
			&r.Requests, &r.Suspect, &r.SuspectRate, &r.SuspectCILow, &js); err != nil {
			return nil, fmt.Errorf("api.store.scorecards: %w", err)
		}
		if json.Valid([]byte(js)) && js != "" {
			r.Scorecard = json.RawMessage(js)
		} else {
			r.Scorecard = json.RawMessage("null")
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("api.store.scorecards: %w", err)
	}
	return out, nil
}

// suspectChains returns up to n suspect chains of a network in
// [fromMs, toMs), newest first: what an offender's flag rests on.
// A purpose ("" = any) keeps the chains of that purpose, or of the
// required-response purposes for RequiredResponseLine.
func (s *store) suspectChains(ctx context.Context, network string, fromMs, toMs int64, n int, purposeName string) ([]Outcome, error) {
	args := []any{network, fromMs / 1000, (toMs + 999) / 1000}
	byPurpose := ""
	if purposes := purposesOfLine(purposeName); len(purposes) > 0 {
		byPurpose = " AND has(?, purpose)"
		args = append(args, purposes)
	}
	q := `SELECT ` + outcomeColumns + ` FROM (SELECT * FROM exchange_outcomes FINAL
			WHERE network = ? AND requested_at >= toDateTime(?, 'UTC') AND requested_at < toDateTime(?, 'UTC'))
		WHERE (outcome IN ('refused_unjustified', 'redirected', 'unanswered')
		   OR (outcome IN ('fulfilled', 'fulfilled_late', 'partial') AND ifNull(ttf_ms, 0) > 3 * sla_ms))` + byPurpose + `
		ORDER BY requested_at_ms DESC LIMIT ?`
	return s.outcomes(safeSettings(ctx), "api.store.suspectChains", q, append(args, n)...)
}

// purposesOfLine are the canonical purposes of a scorecard line: one
// purpose, the required-response ones, or none ("": every purpose).
func purposesOfLine(name string) []string {
	out := []string{}
	switch name {
	case "":
	case RequiredResponseLine:
		for _, p := range purpose.All {
			if purpose.RequiredResponse(p) {
				out = append(out, string(p))
			}
		}
	default:
		out = append(out, name)
	}
	return out
}
