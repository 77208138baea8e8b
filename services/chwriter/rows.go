package chwriter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/proto/outcomeclass"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/domain/purpose"
)

// ErrUndecodable marks a message that can never be written; it goes to the
// DLQ instead of blocking its batch forever.
var ErrUndecodable = errors.New("chwriter: undecodable message")

// maxDateTimeMs is the last millisecond a ClickHouse DateTime (UInt32
// seconds) holds. A time outside [0, maxDateTimeMs] would make the server
// reject the whole batch, so such a message is rejected alone, up front.
const maxDateTimeMs = int64(1<<32-1) * 1000

// Column lists of the INSERTs: explicit, because 18.16 needs them for
// batched inserts and because a column added by a later migration must not
// shift the meaning of the values.
const (
	insertEvents = `INSERT INTO exchange_events (event_id, network, format, message_id, message_type, role,
 request_kind, correlation_key, in_reply_to, requester_org, responder_org, event_time, event_time_ms,
 ingest_time, status, ack_code, reason_codes, exception_code, patient_token, patient_key_id,
 record_count, raw_subject, raw_seq, partition, mapping_version, purpose, purpose_code, requester_community,
 responder_community, side, transaction_id, untimed, feed, sequence_source, sequence_number)`
	insertOutcomes = `INSERT INTO exchange_outcomes (outcome_id, version, network, request_id, correlation_key,
 request_kind, requester_org, responder_org, outcome, exception_code, reason_codes, patient_token,
 requested_at, requested_at_ms, acknowledged_at_ms, answered_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms,
 decided_at_ms, rule_version, mapping_version, response_id, record_count, step_count, purpose, purpose_code,
 requester_community, responder_community, sides, sla_business_days, untimed)`
	insertSteps = `INSERT INTO outcome_steps (outcome_id, version, network, event_id, message_id, message_type,
 role, status, event_time, event_time_ms, raw_seq, side)`
)

// Tables written, as metric labels.
const (
	tableEvents   = "exchange_events"
	tableOutcomes = "exchange_outcomes"
	tableSteps    = "outcome_steps"
)

// sink holds the decoded rows of one batch for one stream, column by column,
// so the insert appends whole columns instead of row by row.
type sink interface {
	// add decodes one message and appends its rows; an ErrUndecodable error
	// leaves the sink unchanged.
	add(data []byte) error
	// len is the number of messages held.
	len() int
	// insert writes what the sink holds. After a failure it may be called
	// again: parts already written are not written twice.
	insert(ctx context.Context, conn driver.Conn, observe insertObserver) error
	reset()
}

// insertObserver is told about each table insert that succeeded.
type insertObserver func(table string, rows int, took time.Duration)

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func checkTime(field string, ms int64) error {
	if ms < 0 || ms > maxDateTimeMs {
		return fmt.Errorf("%w: %s %d ms is outside what DateTime holds", ErrUndecodable, field, ms)
	}
	return nil
}

func parseID(field, s string) (uuid.UUID, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return uuid.UUID{}, fmt.Errorf("%w: %s %q is not a UUID", ErrUndecodable, field, s)
	}
	return u, nil
}

// enumName is the lower-case name of a protobuf enum without its type
// prefix ("ROLE_REQUEST" → "request"), "" for the unspecified value. A value
// this build does not know keeps its number rather than vanishing.
func enumName(name, prefix string) string {
	if name == prefix+"UNSPECIFIED" {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

func roleName(r hinscorev1.Role) string     { return enumName(r.String(), "ROLE_") }
func statusName(s hinscorev1.Status) string { return enumName(s.String(), "STATUS_") }
func formatName(f hinscorev1.Format) string { return enumName(f.String(), "FORMAT_") }
func sideName(s hinscorev1.Side) string     { return enumName(s.String(), "SIDE_") }

// purposeName is the purpose column's value: a purpose the message did not
// carry is stored as purpose.Unknown, like a code the table does not know
// (purpose_code tells them apart), so no reader maps "" (schemas/README.md).
func purposeName(p string) string {
	if p == "" {
		return string(purpose.Unknown)
	}
	return p
}

// flag is a bool as the UInt8 columns hold it.
func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// orEmpty keeps a nil list from reaching the driver as a NULL array.
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// nullable maps the proto's has_x flag to SQL NULL: a missing time to
// fulfil is not the same as a zero one.
func nullable(has bool, v uint64) *uint64 {
	if !has {
		return nil
	}
	return &v
}

// sendColumns prepares a batch insert, appends each column and sends it.
func sendColumns(ctx context.Context, conn driver.Conn, query, table string, cols []columnValues) error {
	batch, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("prepare %s: %w", table, err)
	}
	for i, c := range cols {
		if err := batch.Column(i).Append(c.values); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("append %s.%s: %w: %w", table, c.name, errRejectedValue, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %s: %w", table, err)
	}
	return nil
}

type columnValues struct {
	name   string
	values any
}

// eventRows is a batch of exchange_events rows.
type eventRows struct {
	eventID                                       []uuid.UUID
	network, format, messageID, messageType, role []string
	requestKind, correlationKey, inReplyTo        []string
	requesterOrg, responderOrg                    []string
	eventTime, ingestTime                         []time.Time
	eventTimeMs                                   []int64
	status, ackCode                               []string
	reasonCodes                                   [][]string
	exceptionCode, patientToken, patientKeyID     []string
	recordCount                                   []uint32
	rawSubject                                    []string
	rawSeq                                        []uint64
	partition                                     []uint16
	mappingVersion                                []string
	purpose, purposeCode                          []string
	requesterCommunity, responderCommunity        []string
	side, transactionID                           []string
	untimed                                       []uint8
	feed, sequenceSource                          []string
	sequenceNumber                                []int64
}

func (r *eventRows) len() int { return len(r.eventID) }
func (r *eventRows) reset()   { *r = eventRows{} }

func (r *eventRows) add(data []byte) error { return r.addAt(data, "", 0) }

// addMsg is add for a message of EVENTS: an event whose original bytes
// travel with it gets that message's subject and sequence as their place
// (bus.LocateRaw), and its bytes are not kept.
func (r *eventRows) addMsg(msg jetstream.Msg) error {
	md, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("%w: EVENTS message without metadata: %v", ErrUndecodable, err)
	}
	return r.addAt(msg.Data(), msg.Subject(), md.Sequence.Stream)
}

func (r *eventRows) addAt(data []byte, subject string, seq uint64) error {
	var ev hinscorev1.ExchangeEvent
	if err := proto.Unmarshal(data, &ev); err != nil {
		return fmt.Errorf("%w: ExchangeEvent: %v", ErrUndecodable, err)
	}
	bus.LocateRaw(&ev, subject, seq)
	id, err := parseID("event_id", ev.GetEventId())
	if err != nil {
		return err
	}
	if err := checkTime("event_time_ms", ev.GetEventTimeMs()); err != nil {
		return err
	}
	if err := checkTime("ingest_time_ms", ev.GetIngestTimeMs()); err != nil {
		return err
	}
	if ev.GetPartition() > 0xFFFF {
		return fmt.Errorf("%w: partition %d does not fit UInt16", ErrUndecodable, ev.GetPartition())
	}
	r.eventID = append(r.eventID, id)
	r.network = append(r.network, ev.GetNetwork())
	r.format = append(r.format, formatName(ev.GetFormat()))
	r.messageID = append(r.messageID, ev.GetMessageId())
	r.messageType = append(r.messageType, ev.GetMessageType())
	r.role = append(r.role, roleName(ev.GetRole()))
	r.requestKind = append(r.requestKind, ev.GetRequestKind())
	r.correlationKey = append(r.correlationKey, ev.GetCorrelationKey())
	r.inReplyTo = append(r.inReplyTo, ev.GetInReplyTo())
	r.requesterOrg = append(r.requesterOrg, ev.GetRequesterOrg())
	r.responderOrg = append(r.responderOrg, ev.GetResponderOrg())
	r.eventTime = append(r.eventTime, msTime(ev.GetEventTimeMs()))
	r.eventTimeMs = append(r.eventTimeMs, ev.GetEventTimeMs())
	r.ingestTime = append(r.ingestTime, msTime(ev.GetIngestTimeMs()))
	r.status = append(r.status, statusName(ev.GetStatus()))
	r.ackCode = append(r.ackCode, ev.GetAckCode())
	r.reasonCodes = append(r.reasonCodes, orEmpty(ev.GetReasonCodes()))
	r.exceptionCode = append(r.exceptionCode, ev.GetExceptionCode())
	r.patientToken = append(r.patientToken, ev.GetPatientToken())
	r.patientKeyID = append(r.patientKeyID, ev.GetPatientKeyId())
	r.recordCount = append(r.recordCount, ev.GetRecordCount())
	r.rawSubject = append(r.rawSubject, ev.GetRawSubject())
	r.rawSeq = append(r.rawSeq, ev.GetRawSeq())
	r.partition = append(r.partition, uint16(ev.GetPartition()))
	r.mappingVersion = append(r.mappingVersion, ev.GetMappingVersion())
	r.purpose = append(r.purpose, purposeName(ev.GetPurpose()))
	r.purposeCode = append(r.purposeCode, ev.GetPurposeCode())
	r.requesterCommunity = append(r.requesterCommunity, ev.GetRequesterCommunity())
	r.responderCommunity = append(r.responderCommunity, ev.GetResponderCommunity())
	r.side = append(r.side, sideName(ev.GetSide()))
	r.transactionID = append(r.transactionID, ev.GetTransactionId())
	r.untimed = append(r.untimed, flag(ev.GetUntimed()))
	r.feed = append(r.feed, ev.GetFeed())
	r.sequenceSource = append(r.sequenceSource, ev.GetSequenceSource())
	r.sequenceNumber = append(r.sequenceNumber, ev.GetSequenceNumber())
	return nil
}

func (r *eventRows) insert(ctx context.Context, conn driver.Conn, observe insertObserver) error {
	if r.len() == 0 {
		return nil
	}
	start := time.Now()
	err := sendColumns(ctx, conn, insertEvents, tableEvents, []columnValues{
		{"event_id", r.eventID}, {"network", r.network}, {"format", r.format},
		{"message_id", r.messageID}, {"message_type", r.messageType}, {"role", r.role},
		{"request_kind", r.requestKind}, {"correlation_key", r.correlationKey}, {"in_reply_to", r.inReplyTo},
		{"requester_org", r.requesterOrg}, {"responder_org", r.responderOrg}, {"event_time", r.eventTime},
		{"event_time_ms", r.eventTimeMs}, {"ingest_time", r.ingestTime}, {"status", r.status},
		{"ack_code", r.ackCode}, {"reason_codes", r.reasonCodes},
		{"exception_code", r.exceptionCode}, {"patient_token", r.patientToken}, {"patient_key_id", r.patientKeyID},
		{"record_count", r.recordCount}, {"raw_subject", r.rawSubject}, {"raw_seq", r.rawSeq},
		{"partition", r.partition}, {"mapping_version", r.mappingVersion},
		{"purpose", r.purpose}, {"purpose_code", r.purposeCode}, {"requester_community", r.requesterCommunity},
		{"responder_community", r.responderCommunity}, {"side", r.side}, {"transaction_id", r.transactionID},
		{"untimed", r.untimed}, {"feed", r.feed}, {"sequence_source", r.sequenceSource},
		{"sequence_number", r.sequenceNumber},
	})
	if err != nil {
		return err
	}
	observe(tableEvents, r.len(), time.Since(start))
	return nil
}

// outcomeRows is a batch of exchange_outcomes rows and their outcome_steps.
type outcomeRows struct {
	outcomeID                                          []uuid.UUID
	version                                            []uint64
	network, requestID, correlationKey, requestKind    []string
	requesterOrg, responderOrg, outcome, exceptionCode []string
	reasonCodes                                        [][]string
	patientToken                                       []string
	requestedAt                                        []time.Time
	requestedAtMs, acknowledgedAtMs, answeredAtMs      []int64
	ttaMs, ttfMs                                       []*uint64
	slaMs, graceMs                                     []uint64
	decidedAtMs                                        []int64
	ruleVersion, mappingVersion, responseID            []string
	recordCount, stepCount                             []uint32
	purpose, purposeCode                               []string
	requesterCommunity, responderCommunity, sides      []string
	slaBusinessDays                                    []uint32
	untimed                                            []uint8

	// steps is emptied once written, so a retry after the outcomes insert
	// failed does not write them again.
	steps stepRows
}

type stepRows struct {
	outcomeID, eventID              []uuid.UUID
	version                         []uint64
	network, messageID, messageType []string
	role, status                    []string
	eventTime                       []time.Time
	eventTimeMs                     []int64
	rawSeq                          []uint64
	side                            []string
}

func (r *outcomeRows) len() int { return len(r.outcomeID) }

// months lists the first instant of each month the batch's requests fall in:
// the partitions of outcomes_daily it makes stale.
func (r *outcomeRows) months() []time.Time {
	var out []time.Time
	for _, t := range r.requestedAt {
		m := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}
func (r *outcomeRows) reset() { *r = outcomeRows{} }

func (r *outcomeRows) add(data []byte) error {
	var o hinscorev1.Outcome
	if err := proto.Unmarshal(data, &o); err != nil {
		return fmt.Errorf("%w: Outcome: %v", ErrUndecodable, err)
	}
	id, err := parseID("outcome_id", o.GetOutcomeId())
	if err != nil {
		return err
	}
	class := outcomeclass.Name(o.GetOutcomeClass())
	if class == "" {
		return fmt.Errorf("%w: outcome class %s has no name", ErrUndecodable, o.GetOutcomeClass())
	}
	if err := checkTime("requested_at_ms", o.GetRequestedAtMs()); err != nil {
		return err
	}
	// Check every step before appending anything, so a bad step leaves the
	// batch as it was.
	stepIDs := make([]uuid.UUID, len(o.GetSteps()))
	for i, s := range o.GetSteps() {
		if stepIDs[i], err = parseID("steps["+strconv.Itoa(i)+"].event_id", s.GetEventId()); err != nil {
			return err
		}
		if err := checkTime("steps["+strconv.Itoa(i)+"].event_time_ms", s.GetEventTimeMs()); err != nil {
			return err
		}
	}
	r.outcomeID = append(r.outcomeID, id)
	r.version = append(r.version, o.GetVersion())
	r.network = append(r.network, o.GetNetwork())
	r.requestID = append(r.requestID, o.GetRequestId())
	r.correlationKey = append(r.correlationKey, o.GetCorrelationKey())
	r.requestKind = append(r.requestKind, o.GetRequestKind())
	r.requesterOrg = append(r.requesterOrg, o.GetRequesterOrg())
	r.responderOrg = append(r.responderOrg, o.GetResponderOrg())
	r.outcome = append(r.outcome, class)
	r.exceptionCode = append(r.exceptionCode, o.GetExceptionCode())
	r.reasonCodes = append(r.reasonCodes, orEmpty(o.GetReasonCodes()))
	r.patientToken = append(r.patientToken, o.GetPatientToken())
	r.requestedAt = append(r.requestedAt, msTime(o.GetRequestedAtMs()))
	r.requestedAtMs = append(r.requestedAtMs, o.GetRequestedAtMs())
	r.acknowledgedAtMs = append(r.acknowledgedAtMs, o.GetAcknowledgedAtMs())
	r.answeredAtMs = append(r.answeredAtMs, o.GetAnsweredAtMs())
	r.ttaMs = append(r.ttaMs, nullable(o.GetHasTta(), o.GetTtaMs()))
	r.ttfMs = append(r.ttfMs, nullable(o.GetHasTtf(), o.GetTtfMs()))
	r.slaMs = append(r.slaMs, o.GetSlaMs())
	r.graceMs = append(r.graceMs, o.GetGraceMs())
	r.decidedAtMs = append(r.decidedAtMs, o.GetDecidedAtMs())
	r.ruleVersion = append(r.ruleVersion, o.GetRuleVersion())
	r.mappingVersion = append(r.mappingVersion, o.GetMappingVersion())
	r.responseID = append(r.responseID, o.GetResponseId())
	r.recordCount = append(r.recordCount, o.GetRecordCount())
	r.stepCount = append(r.stepCount, uint32(len(o.GetSteps())))
	r.purpose = append(r.purpose, purposeName(o.GetPurpose()))
	r.purposeCode = append(r.purposeCode, o.GetPurposeCode())
	r.requesterCommunity = append(r.requesterCommunity, o.GetRequesterCommunity())
	r.responderCommunity = append(r.responderCommunity, o.GetResponderCommunity())
	r.sides = append(r.sides, o.GetSides())
	r.slaBusinessDays = append(r.slaBusinessDays, o.GetSlaBusinessDays())
	r.untimed = append(r.untimed, flag(o.GetUntimed()))
	st := &r.steps
	for i, s := range o.GetSteps() {
		st.outcomeID = append(st.outcomeID, id)
		st.version = append(st.version, o.GetVersion())
		st.network = append(st.network, o.GetNetwork())
		st.eventID = append(st.eventID, stepIDs[i])
		st.messageID = append(st.messageID, s.GetMessageId())
		st.messageType = append(st.messageType, s.GetMessageType())
		st.role = append(st.role, roleName(s.GetRole()))
		st.status = append(st.status, statusName(s.GetStatus()))
		st.eventTime = append(st.eventTime, msTime(s.GetEventTimeMs()))
		st.eventTimeMs = append(st.eventTimeMs, s.GetEventTimeMs())
		st.rawSeq = append(st.rawSeq, s.GetRawSeq())
		st.side = append(st.side, sideName(s.GetSide()))
	}
	return nil
}

func (r *outcomeRows) insert(ctx context.Context, conn driver.Conn, observe insertObserver) error {
	if r.len() == 0 {
		return nil
	}
	// Steps first, outcomes second: a reader that sees an outcome version can
	// rely on its steps being there.
	if n := len(r.steps.outcomeID); n > 0 {
		st := &r.steps
		start := time.Now()
		err := sendColumns(ctx, conn, insertSteps, tableSteps, []columnValues{
			{"outcome_id", st.outcomeID}, {"version", st.version}, {"network", st.network},
			{"event_id", st.eventID}, {"message_id", st.messageID}, {"message_type", st.messageType},
			{"role", st.role}, {"status", st.status}, {"event_time", st.eventTime},
			{"event_time_ms", st.eventTimeMs}, {"raw_seq", st.rawSeq}, {"side", st.side},
		})
		if err != nil {
			return err
		}
		observe(tableSteps, n, time.Since(start))
		r.steps = stepRows{}
	}
	start := time.Now()
	err := sendColumns(ctx, conn, insertOutcomes, tableOutcomes, []columnValues{
		{"outcome_id", r.outcomeID}, {"version", r.version}, {"network", r.network},
		{"request_id", r.requestID}, {"correlation_key", r.correlationKey}, {"request_kind", r.requestKind},
		{"requester_org", r.requesterOrg}, {"responder_org", r.responderOrg}, {"outcome", r.outcome},
		{"exception_code", r.exceptionCode}, {"reason_codes", r.reasonCodes}, {"patient_token", r.patientToken},
		{"requested_at", r.requestedAt}, {"requested_at_ms", r.requestedAtMs},
		{"acknowledged_at_ms", r.acknowledgedAtMs}, {"answered_at_ms", r.answeredAtMs},
		{"tta_ms", r.ttaMs}, {"ttf_ms", r.ttfMs}, {"sla_ms", r.slaMs}, {"grace_ms", r.graceMs},
		{"decided_at_ms", r.decidedAtMs}, {"rule_version", r.ruleVersion},
		{"mapping_version", r.mappingVersion}, {"response_id", r.responseID},
		{"record_count", r.recordCount}, {"step_count", r.stepCount},
		{"purpose", r.purpose}, {"purpose_code", r.purposeCode}, {"requester_community", r.requesterCommunity},
		{"responder_community", r.responderCommunity}, {"sides", r.sides},
		{"sla_business_days", r.slaBusinessDays}, {"untimed", r.untimed},
	})
	if err != nil {
		return err
	}
	observe(tableOutcomes, r.len(), time.Since(start))
	return nil
}
