package scorecard

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

const week = 7 * 24 * time.Hour

// feedKey is one feed connection of one network.
type feedKey struct{ network, feed string }

// seqFigures are one feed's messages and sequence figures in one period.
type seqFigures struct {
	received, sequenced        uint64
	sources                    uint32
	gaps, duplicates, restarts uint64
}

// allFeeds is the feed name of a network's total: no feed is named so
// (a feed is "<channel>:<peer>", or "" for rows stored before feeds).
const allFeeds = "*"

// chainCounts are a network's requests, orphans and unanswered requests.
type chainCounts struct{ requests, orphans, unanswered uint64 }

func (c *chainCounts) add(o chainCounts) {
	c.requests += o.requests
	c.orphans += o.orphans
	c.unanswered += o.unanswered
}

// feedWorld is what the feed-health section reads from ClickHouse.
type feedWorld struct {
	// hours: messages per feed and hour (Unix seconds); zero hours absent.
	hours map[feedKey]map[int64]uint64
	// and the network's total under the feed allFeeds.
	first map[feedKey]int64 // the first hour each feed (and network) carried anything in the range
	seq   map[feedKey]map[int64]*seqFigures
	// days: chains by the feed of their first message (and the network's
	// total under allFeeds) and day (Unix seconds).
	days map[feedKey]map[int64]chainCounts
}

// attachFeedHealth fills each card's feed-health section: the sequence
// figures and silent hours of each feed connection of its network, the
// network's own silent hours, its orphan and unanswered rates against the
// rates expected of them, and the score (feedhealth.go states the rules).
func attachFeedHealth(ctx context.Context, conn driver.Conn, q Query, cards []*hinscorev1.Scorecard, now time.Time) error {
	if len(cards) == 0 {
		return nil
	}
	p := DefaultFeedParams()
	from, to := time.UnixMilli(cards[0].GetPeriodStartMs()).UTC(), time.UnixMilli(cards[0].GetPeriodEndMs()).UTC()
	for _, c := range cards {
		from = minTime(from, time.UnixMilli(c.GetPeriodStartMs()).UTC())
		to = maxTime(to, time.UnixMilli(c.GetPeriodEndMs()).UTC())
	}
	from = from.Add(-time.Duration(p.HistoryWeeks) * week)
	fw := &feedWorld{hours: map[feedKey]map[int64]uint64{}, first: map[feedKey]int64{},
		seq: map[feedKey]map[int64]*seqFigures{}, days: map[feedKey]map[int64]chainCounts{}}
	if err := fw.loadHours(ctx, conn, q.Network, from, to); err != nil {
		return fmt.Errorf("feed health: %w", err)
	}
	if err := fw.loadSequences(ctx, conn, q, from, to); err != nil {
		return fmt.Errorf("feed health: %w", err)
	}
	if err := fw.loadChains(ctx, conn, from, to); err != nil {
		return fmt.Errorf("feed health: %w", err)
	}
	for _, c := range cards {
		c.FeedHealth = fw.section(c, now, p)
	}
	return nil
}

// loadHours reads the messages of every feed by hour of event time.
func (fw *feedWorld) loadHours(ctx context.Context, conn driver.Conn, network string, from, to time.Time) error {
	where, args := eventRange(network, from, to)
	rows, err := conn.Query(ctx, `SELECT network, feed, toStartOfHour(event_time) AS hour, count()
FROM events WHERE `+where+` GROUP BY network, feed, hour`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k feedKey
		var hour time.Time
		var n uint64
		if err := rows.Scan(&k.network, &k.feed, &hour, &n); err != nil {
			return err
		}
		for _, key := range []feedKey{k, {k.network, allFeeds}} {
			if fw.hours[key] == nil {
				fw.hours[key] = map[int64]uint64{}
			}
			fw.hours[key][hour.Unix()] += n
			if f, ok := fw.first[key]; !ok || hour.Unix() < f {
				fw.first[key] = hour.Unix()
			}
		}
	}
	return rows.Err()
}

// loadSequences reads, per feed, sequence source and period, the messages,
// the distinct numbers and the differences between consecutive distinct
// numbers that are not 1 (few: the gaps and restarts).
func (fw *feedWorld) loadSequences(ctx context.Context, conn driver.Conn, q Query, from, to time.Time) error {
	where, args := eventRange(q.Network, from, to)
	rows, err := conn.Query(ctx, `SELECT network, feed, sequence_source, `+periodExprs[q.Granularity]+`(event_time) AS period,
    count(), uniqExact(sequence_number),
    arrayFilter(d -> d != 1, arrayDifference(arraySort(groupUniqArray(sequence_number))))
FROM events WHERE `+where+`
GROUP BY network, feed, sequence_source, period`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	p := DefaultFeedParams()
	for rows.Next() {
		var k feedKey
		var source string
		var start time.Time
		var messages, numbers uint64
		var jumps []int64
		if err := rows.Scan(&k.network, &k.feed, &source, &start, &messages, &numbers, &jumps); err != nil {
			return err
		}
		s := fw.seqOf(k, midnight(start).UnixMilli())
		s.received += messages
		if source == "" {
			continue
		}
		gaps, restarts := sequenceGaps(jumps, p.MaxGap)
		s.sequenced += messages
		s.sources++
		s.gaps += gaps
		s.restarts += restarts
		s.duplicates += messages - numbers
	}
	return rows.Err()
}

func (fw *feedWorld) seqOf(k feedKey, periodStart int64) *seqFigures {
	if fw.seq[k] == nil {
		fw.seq[k] = map[int64]*seqFigures{}
	}
	s := fw.seq[k][periodStart]
	if s == nil {
		s = &seqFigures{}
		fw.seq[k][periodStart] = s
	}
	return s
}

// loadChains reads every network's requests, orphans and unanswered
// requests by day and by the feed of the chain's first message (the
// request; an orphan's answer): the network's own history and its peers
// are the expected rates, and a feed's own history its own. A chain whose
// first message is not found (events outside the day around the range)
// counts under the feed "".
func (fw *feedWorld) loadChains(ctx context.Context, conn driver.Conn, from, to time.Time) error {
	lo, hi := uint32(from.Unix()), uint32(to.Unix())
	rows, err := conn.Query(ctx, `SELECT network, feed, toDate(requested_at) AS day,
    countIf(outcome != 'orphan'), countIf(outcome = 'orphan'), countIf(outcome = 'unanswered')
FROM
(
    SELECT network, outcome_id, outcome, requested_at FROM outcomes
    WHERE requested_at >= toDateTime(?, 'UTC') AND requested_at < toDateTime(?, 'UTC')
)
ANY LEFT JOIN
(
    SELECT outcome_id, feed FROM
    (
        SELECT outcome_id, argMin(event_id, event_time_ms) AS event_id FROM outcome_steps
        WHERE event_time >= toDateTime(?, 'UTC') - 86400 AND event_time < toDateTime(?, 'UTC') + 86400
        GROUP BY outcome_id
    )
    ANY LEFT JOIN
    (
        SELECT event_id, feed FROM exchange_events
        WHERE event_time >= toDateTime(?, 'UTC') - 86400 AND event_time < toDateTime(?, 'UTC') + 86400
    ) USING event_id
) USING outcome_id
GROUP BY network, feed, day`, lo, hi, lo, hi, lo, hi)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k feedKey
		var day time.Time
		var c chainCounts
		if err := rows.Scan(&k.network, &k.feed, &day, &c.requests, &c.orphans, &c.unanswered); err != nil {
			return err
		}
		for _, key := range []feedKey{k, {k.network, allFeeds}} {
			if fw.days[key] == nil {
				fw.days[key] = map[int64]chainCounts{}
			}
			d := fw.days[key][midnight(day).Unix()]
			d.add(c)
			fw.days[key][midnight(day).Unix()] = d
		}
	}
	return rows.Err()
}

// eventRange is the condition on events of [from, to), of one network
// unless network is "".
func eventRange(network string, from, to time.Time) (string, []any) {
	where, args := "event_time >= toDateTime(?, 'UTC') AND event_time < toDateTime(?, 'UTC')", []any{uint32(from.Unix()), uint32(to.Unix())}
	if network != "" {
		where += " AND network = ?"
		args = append(args, network)
	}
	return where, args
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// feedsOf lists a network's feeds (not the network's total) in name order.
func (fw *feedWorld) feedsOf(network string) []string {
	var out []string
	for k := range fw.hours {
		if k.network == network && k.feed != allFeeds {
			out = append(out, k.feed)
		}
	}
	slices.Sort(out)
	return out
}
