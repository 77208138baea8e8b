package scorecard

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
)

// feedEvent is one message of a feed, as the ingests record it.
type feedEvent struct {
	network, feed, source string
	number                int64
	at                    time.Time
}

// insertFeedEvents stores evs and returns their event ids, in order.
func insertFeedEvents(t *testing.T, conn driver.Conn, evs []feedEvent) []uuid.UUID {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), `INSERT INTO exchange_events (event_id, network, role, event_time, event_time_ms,
 feed, sequence_source, sequence_number)`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	for i, e := range evs {
		eid := uuid.NewSHA1(uuid.NameSpaceOID, []byte(e.network+e.feed+e.at.String()+string(rune(i))))
		if err := b.Append(eid, e.network, "notification", e.at, e.at.UnixMilli(), e.feed, e.source, e.number); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, eid)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// busyFeed is a feed carrying perHour numbered messages every hour from
// 09:00 to 17:59 of each day in [from, to), numbered on from next; skip
// says how many numbers to skip before the message at a time (a gap), and
// silent which hours carry nothing. It returns the events and the next
// number.
func busyFeed(network, feed string, from, to time.Time, perHour int, next int64, skip map[time.Time]int64, silent map[time.Time]bool) ([]feedEvent, int64) {
	var out []feedEvent
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		for h := 9; h < 18; h++ {
			hour := d.Add(time.Duration(h) * time.Hour)
			if silent[hour] {
				continue
			}
			for i := range perHour {
				at := hour.Add(time.Duration(i) * time.Minute)
				next += skip[at]
				out = append(out, feedEvent{network, feed, "hl7|EHR^" + feed + ">HIE^NET", next, at})
				next++
			}
		}
	}
	return out, next
}

// TestFeedHealthThroughClickHouse: four weeks of a network's two feeds,
// each busy 09:00-18:00 with numbered messages, then a day on which one
// feed skips 3 numbers, repeats one and carries nothing from 13:00 to
// 14:00: that feed shows the gap, the duplicate and the silent hour, its
// score below 1; the other feed of the network and the peer network's
// feed show none, their score 1; the network's section counts them and
// its own silent hour (the network carried half its usual 13:00).
func TestFeedHealthThroughClickHouse(t *testing.T) {
	conn := testDatabase(t)
	ctx := context.Background()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	histFrom := day.AddDate(0, 0, -28)
	const gappy, clean, peer = "mllp:10.0.0.1", "mllp:10.0.0.2", "mllp:10.9.0.1"
	var evs []feedEvent
	hist, next := busyFeed("alpha", gappy, histFrom, day, 20, 1, nil, nil)
	evs = append(evs, hist...)
	today, _ := busyFeed("alpha", gappy, day, day.AddDate(0, 0, 1), 20, next,
		map[time.Time]int64{day.Add(10*time.Hour + 5*time.Minute): 3}, map[time.Time]bool{day.Add(13 * time.Hour): true})
	evs = append(evs, today...)
	repeated := today[len(today)-1]
	repeated.at = repeated.at.Add(30 * time.Second)
	evs = append(evs, repeated)
	for _, f := range []struct{ network, feed string }{{"alpha", clean}, {"beta", peer}} {
		all, _ := busyFeed(f.network, f.feed, histFrom, day.AddDate(0, 0, 1), 20, 500, nil, nil)
		evs = append(evs, all...)
	}
	insertFeedEvents(t, conn, evs)
	insert(t, conn, []row{
		{id: id(1), version: 1, network: "alpha", kind: "patient_query", outcome: "fulfilled", at: day.Add(9 * time.Hour), ttfMs: ttf(100)},
		{id: id(2), version: 1, network: "beta", kind: "patient_query", outcome: "fulfilled", at: day.Add(9 * time.Hour), ttfMs: ttf(100)},
	})
	cards, err := Build(ctx, conn, Query{Granularity: Day, From: day, To: day.AddDate(0, 0, 1)}, day.AddDate(0, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(cards) != 2 {
		t.Fatalf("%d cards, want alpha's and beta's", len(cards))
	}
	lines := map[string]*feedLineWant{}
	for _, c := range cards {
		for _, l := range c.GetFeedHealth().GetFeeds() {
			lines[l.GetFeed()] = &feedLineWant{l.GetReceived(), l.GetSequenceGaps(), l.GetSequenceDuplicates(), l.GetSilentHours(), l.GetSilentShortfall(), l.GetScore()}
		}
	}
	want := map[string]feedLineWant{
		gappy: {received: 8*20 + 1, gaps: 3, duplicates: 1, silent: 1, shortfall: 20, score: 161.0 / (161 + 23)},
		clean: {received: 9 * 20, score: 1},
		peer:  {received: 9 * 20, score: 1},
	}
	for feed, w := range want {
		got := lines[feed]
		if got == nil {
			t.Errorf("feed %s: no line", feed)
			continue
		}
		if got.received != w.received || got.gaps != w.gaps || got.duplicates != w.duplicates || got.silent != w.silent ||
			got.shortfall != w.shortfall || !near(got.score, w.score) {
			t.Errorf("feed %s: %+v, want %+v", feed, *got, w)
		}
	}
	alpha := cards[0].GetFeedHealth()
	if cards[0].GetNetwork() != "alpha" || alpha.GetReceived() != 341 || alpha.GetSequenceGaps() != 3 ||
		alpha.GetSilentHours() != 1 || alpha.GetSilentShortfall() != 20 || alpha.GetMissing() != 23 || alpha.GetVersion() != FeedHealthVersion {
		t.Errorf("alpha's section: %v", alpha)
	}
	// The analysts' view says the same of the day.
	var gaps, dups, restarts int64
	if err := conn.QueryRow(ctx, `SELECT toInt64(sum(gaps)), toInt64(sum(duplicates)), toInt64(sum(restarts)) FROM feed_sequences
WHERE network = 'alpha' AND feed = ? AND day = toDate(?)`, gappy, day).Scan(&gaps, &dups, &restarts); err != nil {
		t.Fatal(err)
	}
	if gaps != 3 || dups != 1 || restarts != 0 {
		t.Errorf("feed_sequences: gaps %d duplicates %d restarts %d, want 3 1 0", gaps, dups, restarts)
	}
	var out bytes.Buffer
	if err := PrintTable(&out, cards); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "silent from 2026-11-25 13:00") || !strings.Contains(out.String(), "feed health "+FeedHealthVersion) {
		t.Errorf("the table has no feed-health lines:\n%s", out.String())
	}
	page, err := HTML(cards[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("<h2>Feed health</h2>")) || !bytes.Contains(page, []byte(gappy)) {
		t.Error("the page has no feed-health section")
	}
	if beta := cards[1].GetFeedHealth(); beta.GetScore() != 1 || beta.GetMissing() != 0 || beta.GetSilentHours() != 0 {
		t.Errorf("beta's section: %v", beta)
	}
}

type feedLineWant struct {
	received, gaps, duplicates, silent, shortfall uint64
	score                                         float64
}

// TestFeedChainsThroughClickHouse: chains count against the feed of their
// first message. Over four weeks each of alpha's two feeds carries ten
// requests a day, all fulfilled; on the day, eight of the ten requests of
// one feed go unanswered: that feed's unanswered rate is flagged against
// its own history, with the excess in its score, and so is the network's;
// the other feed is not.
func TestFeedChainsThroughClickHouse(t *testing.T) {
	conn := testDatabase(t)
	ctx := context.Background()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	const lossy, clean = "mllp:10.0.0.1", "mllp:10.0.0.2"
	var outcomes []row
	b, err := conn.PrepareBatch(ctx, `INSERT INTO outcome_steps (outcome_id, version, network, event_id, role, event_time, event_time_ms)`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, feed := range []string{lossy, clean} {
		evs, _ := busyFeed("alpha", feed, day.AddDate(0, 0, -28), day.AddDate(0, 0, 1), 20, 1, nil, nil)
		ids := insertFeedEvents(t, conn, evs)
		for i, e := range evs {
			if e.at.Hour() != 9 || e.at.Minute() >= 10 {
				continue // ten requests a day, at 09:00-09:09
			}
			n++
			class := "fulfilled"
			if feed == lossy && !e.at.Before(day) && e.at.Minute() < 8 {
				class = "unanswered"
			}
			outcomes = append(outcomes, row{id: id(n), version: 1, network: "alpha", kind: "patient_query", outcome: class, at: e.at, ttfMs: ttf(100)})
			if err := b.Append(id(n), uint64(1), "alpha", ids[i], "request", e.at, e.at.UnixMilli()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	insert(t, conn, outcomes)
	cards, err := Build(ctx, conn, Query{Granularity: Day, Network: "alpha", From: day, To: day.AddDate(0, 0, 1)}, day.AddDate(0, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(cards) != 1 {
		t.Fatalf("%d cards, want 1", len(cards))
	}
	fh := cards[0].GetFeedHealth()
	if !fh.GetUnansweredFlagged() || fh.GetUnanswered().GetCount() != 8 || fh.GetUnanswered().GetTotal() != 20 ||
		fh.GetUnansweredExpected().GetTotal() != 560 || fh.GetMissing() != 8 {
		t.Errorf("network: unanswered %v of expected %v, flagged %v, missing %d; want 8/20 against 0/560, flagged, 8 missing",
			fh.GetUnanswered(), fh.GetUnansweredExpected(), fh.GetUnansweredFlagged(), fh.GetMissing())
	}
	for _, l := range fh.GetFeeds() {
		switch l.GetFeed() {
		case lossy:
			if !l.GetUnansweredFlagged() || l.GetUnanswered().GetCount() != 8 || l.GetUnansweredExpected().GetTotal() != 280 ||
				!near(l.GetScore(), 180.0/188) {
				t.Errorf("lossy feed: unanswered %v expected %v flagged %v score %g", l.GetUnanswered(), l.GetUnansweredExpected(), l.GetUnansweredFlagged(), l.GetScore())
			}
		case clean:
			if l.GetUnansweredFlagged() || l.GetOrphansFlagged() || l.GetUnanswered().GetTotal() != 10 || l.GetScore() != 1 {
				t.Errorf("clean feed: unanswered %v flagged %v score %g", l.GetUnanswered(), l.GetUnansweredFlagged(), l.GetScore())
			}
		default:
			t.Errorf("feed %q: not sent", l.GetFeed())
		}
	}
}
