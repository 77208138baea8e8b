package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// RecordedQuery is one query a case packet was built from, as it ran: the
// SQL text, the values bound to its ? placeholders in order, the settings
// it ran with, and every row it returned (the values scanned, in the
// order of Columns), so that a reader can run it again and compare.
type RecordedQuery struct {
	SQL      string         `json:"sql"`
	Args     []any          `json:"args"`
	Settings map[string]any `json:"settings,omitempty"`
	Columns  []string       `json:"columns"`
	Rows     [][]any        `json:"rows"`
}

// queryRecorder is a ClickHouse connection that records every Query and
// QueryRow it runs with their rows; the store reads through it to build a
// packet, so the queries recorded are the ones that ran, not a copy.
type queryRecorder struct {
	driver.Conn
	mu      sync.Mutex
	queries []*RecordedQuery
}

func (q *queryRecorder) add(ctx context.Context, sql string, args []any) *RecordedQuery {
	rec := &RecordedQuery{SQL: sql, Args: args, Columns: []string{}, Rows: [][]any{}}
	if args == nil {
		rec.Args = []any{}
	}
	if settings := settingsOf(ctx); settings != nil {
		rec.Settings = map[string]any(settings)
	}
	q.mu.Lock()
	q.queries = append(q.queries, rec)
	q.mu.Unlock()
	return rec
}

// Query runs and records a query.
func (q *queryRecorder) Query(ctx context.Context, sql string, args ...any) (driver.Rows, error) {
	rows, err := q.Conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	rec := q.add(ctx, sql, args)
	rec.Columns = rows.Columns()
	return &recordingRows{Rows: rows, rec: rec, mu: &q.mu}, nil
}

// QueryRow runs and records a query of one row.
func (q *queryRecorder) QueryRow(ctx context.Context, sql string, args ...any) driver.Row {
	return &recordingRow{Row: q.Conn.QueryRow(ctx, sql, args...), rec: q.add(ctx, sql, args), mu: &q.mu}
}

// recorded returns the queries run so far.
func (q *queryRecorder) recorded() []*RecordedQuery {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]*RecordedQuery(nil), q.queries...)
}

type recordingRows struct {
	driver.Rows
	rec *RecordedQuery
	mu  *sync.Mutex
}

func (r *recordingRows) Scan(dest ...any) error {
	err := r.Rows.Scan(dest...)
	if err == nil {
		r.mu.Lock()
		r.rec.Rows = append(r.rec.Rows, scanned(dest))
		r.mu.Unlock()
	}
	return err
}

type recordingRow struct {
	driver.Row
	rec *RecordedQuery
	mu  *sync.Mutex
}

func (r *recordingRow) Scan(dest ...any) error {
	err := r.Row.Scan(dest...)
	if err == nil {
		r.mu.Lock()
		r.rec.Rows = append(r.rec.Rows, scanned(dest))
		r.mu.Unlock()
	}
	return err
}

// scanned is the values Scan wrote through dest's pointers.
func scanned(dest []any) []any {
	row := make([]any, len(dest))
	for i, d := range dest {
		if v := reflect.ValueOf(d); v.Kind() == reflect.Pointer && !v.IsNil() {
			row[i] = v.Elem().Interface()
		}
	}
	return row
}

// caseOutcomes returns the latest version of every chain of a responder
// whose request lies in [from, to), oldest first, at most limit. The
// FINAL subquery collapses versions before the outer WHERE filters on the
// responder (see safeSettings), as search does.
func (s *store) caseOutcomes(ctx context.Context, responder string, from, to time.Time, limit int) ([]Outcome, error) {
	q := `SELECT ` + outcomeColumns + ` FROM (SELECT * FROM exchange_outcomes FINAL
			WHERE requested_at >= toDateTime(?, 'UTC') AND requested_at <= toDateTime(?, 'UTC'))
		WHERE responder_org = ? AND requested_at_ms >= ? AND requested_at_ms < ?
		ORDER BY requested_at_ms, toString(outcome_id) LIMIT ?`
	return s.outcomes(safeSettings(ctx), "api.store.caseOutcomes", q,
		from.Unix(), to.Unix(), responder, from.UnixMilli(), to.UnixMilli(), limit)
}

// periodBounds returns the bounds the scorecards give a period label
// (every network's card of a period has the same): the api takes a
// packet's period from the scorecards, which computed it.
func (s *store) periodBounds(ctx context.Context, label string) (time.Time, time.Time, error) {
	var from, to int64
	err := s.conn.QueryRow(ctx, `SELECT period_start_ms, period_end_ms FROM scorecards WHERE period = ? LIMIT 1`, label).Scan(&from, &to)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, time.Time{}, errNotFound
	}
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("api.store.periodBounds: %w", err)
	}
	return time.UnixMilli(from).UTC(), time.UnixMilli(to).UTC(), nil
}
