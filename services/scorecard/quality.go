package scorecard

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// Markers of the data-quality query's flag column: every message, and
// every message with at least one flag. Flags are never empty nor "*"
// (lib/domain/quality).
const (
	allMessages    = ""
	anyFlagMessage = "*"
)

// attachDataQuality fills each card's "messages with defects" line from the
// events view: the network's messages of the period, those with at least
// one data-quality flag, and each flag's count. Each message is one row
// for allMessages, one for anyFlagMessage when it has a flag, and one per
// flag it carries, so the events are scanned once.
func attachDataQuality(ctx context.Context, conn driver.Conn, q Query, cards []*hinscorev1.Scorecard) error {
	if len(cards) == 0 {
		return nil
	}
	where, args := q.timeFilter("event_time")
	if q.Network != "" {
		where += " AND network = ?"
		args = append(args, q.Network)
	}
	rows, err := conn.Query(ctx, `SELECT network, `+periodExprs[q.Granularity]+`(event_time) AS period, flag, count()
FROM events
ARRAY JOIN arrayConcat(['`+allMessages+`'], if(notEmpty(dq_flags), ['`+anyFlagMessage+`'], emptyArrayString()), arrayDistinct(dq_flags)) AS flag
WHERE `+where+`
GROUP BY network, period, flag`, args...)
	if err != nil {
		return fmt.Errorf("data quality: %w", err)
	}
	defer rows.Close()
	type key struct {
		network string
		start   int64
	}
	counts := map[key]map[string]uint64{}
	for rows.Next() {
		var network, flag string
		var start time.Time
		var n uint64
		if err := rows.Scan(&network, &start, &flag, &n); err != nil {
			return fmt.Errorf("data quality: %w", err)
		}
		k := key{network, midnight(start).UnixMilli()}
		if counts[k] == nil {
			counts[k] = map[string]uint64{}
		}
		counts[k][flag] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("data quality: %w", err)
	}
	for _, c := range cards {
		c.DataQuality = dataQuality(counts[key{c.GetNetwork(), c.GetPeriodStartMs()}])
	}
	return nil
}

// dataQuality is the line of one card from its counts by flag (with the
// two markers); flags in name order.
func dataQuality(counts map[string]uint64) *hinscorev1.DataQuality {
	total := counts[allMessages]
	dq := &hinscorev1.DataQuality{Messages: total, Defective: NewRate(counts[anyFlagMessage], total)}
	var flags []string
	for f := range counts {
		if f != allMessages && f != anyFlagMessage {
			flags = append(flags, f)
		}
	}
	slices.Sort(flags)
	for _, f := range flags {
		dq.Flags = append(dq.Flags, &hinscorev1.FlagShare{Flag: f, Share: NewRate(counts[f], total)})
	}
	return dq
}
