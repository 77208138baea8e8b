package truthcheck

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Outcome is one row of the outcomes view, the columns the truth speaks of.
type Outcome struct {
	Network, RequestID                     string
	Kind                                   string
	Requester, Responder                   string
	RequesterCommunity, ResponderCommunity string
	Purpose, PurposeCode                   string
	Class, ExceptionCode                   string
	ReasonCodes                            []string
	PatientToken                           string
	RequestedAtMs                          int64
	TTAMs, TTFMs                           *uint64
	Records                                uint32
	Sides                                  string
	Untimed                                uint8
}

func (o Outcome) String() string {
	return fmt.Sprintf("%s %s %s %s→%s at %s %s exception %q tta %s ttf %s records %d",
		o.Network, o.Kind, o.RequestID, o.Requester, o.Responder,
		time.UnixMilli(o.RequestedAtMs).UTC().Format(timeLayout), o.Class, o.ExceptionCode, ms(o.TTAMs), ms(o.TTFMs), o.Records)
}

func ms(v *uint64) string {
	if v == nil {
		return "NULL"
	}
	return fmt.Sprint(*v)
}

// ReadOutcomes reads every row of the outcomes view (its latest version
// of every request).
func ReadOutcomes(ctx context.Context, conn driver.Conn) ([]Outcome, error) {
	rows, err := conn.Query(ctx, `SELECT network, request_id, request_kind, requester_org, responder_org,
		requester_community, responder_community, purpose, purpose_code, outcome, exception_code, reason_codes,
		patient_token, requested_at_ms, tta_ms, ttf_ms, record_count, sides, untimed FROM outcomes`)
	if err != nil {
		return nil, fmt.Errorf("truthcheck.ReadOutcomes: %w", err)
	}
	defer rows.Close()
	var out []Outcome
	for rows.Next() {
		var o Outcome
		if err := rows.Scan(&o.Network, &o.RequestID, &o.Kind, &o.Requester, &o.Responder,
			&o.RequesterCommunity, &o.ResponderCommunity, &o.Purpose, &o.PurposeCode, &o.Class, &o.ExceptionCode, &o.ReasonCodes,
			&o.PatientToken, &o.RequestedAtMs, &o.TTAMs, &o.TTFMs, &o.Records, &o.Sides, &o.Untimed); err != nil {
			return nil, fmt.Errorf("truthcheck.ReadOutcomes: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("truthcheck.ReadOutcomes: %w", err)
	}
	return out, nil
}
