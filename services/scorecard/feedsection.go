package scorecard

import (
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// maxSilentStarts bounds the silent hours a feed line lists by start.
const maxSilentStarts = 24

// hourGrace: an hour is judged once this long after its end, so that the
// messages of its last minutes, on their way through the linker and the
// writer, are not missed.
const hourGrace = 15 * time.Minute

// section is the feed-health section of card c. The network's score
// counts as missing its feeds' sequence gaps, the shortfall of the
// network's own silent hours (all its feeds together, so that a feed moved
// to a new peer is not missed twice) and, when flagged, the orphans and
// unanswered requests beyond their expected rates.
func (fw *feedWorld) section(c *hinscorev1.Scorecard, now time.Time, p FeedParams) *hinscorev1.FeedHealth {
	network := c.GetNetwork()
	start, end := time.UnixMilli(c.GetPeriodStartMs()).UTC(), time.UnixMilli(c.GetPeriodEndMs()).UTC()
	hours := hoursOf(start, end, now.Add(-hourGrace))
	fh := &hinscorev1.FeedHealth{Version: FeedHealthVersion}
	basis, excess := fw.networkChains(fh, network, start, end, p)
	for _, feed := range fw.feedsOf(network) {
		k := feedKey{network, feed}
		line := fw.feedLine(k, c.GetPeriodStartMs(), hours, p)
		if line == nil {
			continue
		}
		feedExcess := fw.feedChains(line, k, start, end, basis, p)
		line.Score = feedScore(line.GetReceived(), line.GetSequenceGaps()+line.GetSilentShortfall()+feedExcess)
		fh.Feeds = append(fh.Feeds, line)
		fh.Received += line.GetReceived()
		fh.SequenceGaps += line.GetSequenceGaps()
		fh.SequenceDuplicates += line.GetSequenceDuplicates()
	}
	total := fw.silence(feedKey{network, allFeeds}, hours, p)
	fh.SilentHours, fh.SilentShortfall = total.hours, total.shortfall
	fh.Missing = fh.GetSequenceGaps() + fh.GetSilentShortfall() + excess
	fh.Score = feedScore(fh.GetReceived(), fh.GetMissing())
	return fh
}

// feedLine is one feed's line (its chains aside), nil when the feed carried nothing in the
// period and none of its hours could be compared.
func (fw *feedWorld) feedLine(k feedKey, periodStart int64, hours []time.Time, p FeedParams) *hinscorev1.FeedLine {
	s := fw.seq[k][periodStart]
	if s == nil {
		s = &seqFigures{}
	}
	sil := fw.silence(k, hours, p)
	if s.received == 0 && sil.compared == 0 {
		return nil
	}
	return &hinscorev1.FeedLine{
		Feed: k.feed, Received: s.received, Sequenced: s.sequenced, Sources: s.sources,
		SequenceGaps: s.gaps, SequenceDuplicates: s.duplicates, Restarts: s.restarts,
		SilentHours: sil.hours, SilentShortfall: sil.shortfall, HoursCompared: sil.compared,
		Score: feedScore(s.received, s.gaps+sil.shortfall), SilentHourStartsMs: sil.starts,
	}
}

// silenceFigures are a feed's silent hours in a period.
type silenceFigures struct {
	hours, shortfall uint64
	compared         uint32
	starts           []int64
}

// silence judges each hour against the same hour of the week in the weeks
// before, counting only weeks since the feed's first message in the range
// read (a week before it existed is no evidence of a pattern). A week's
// count for the hour is the least of that hour and the hours on either
// side of it: an hour is judged busy only inside a busy stretch, so that a
// pattern moved by an hour (daylight saving time in the senders' zone, a
// shift starting earlier) makes no silent hour at its edges.
func (fw *feedWorld) silence(k feedKey, hours []time.Time, p FeedParams) silenceFigures {
	var out silenceFigures
	counts, first := fw.hours[k], fw.first[k]
	if counts == nil {
		return out
	}
	for _, h := range hours {
		var history []uint64
		for w := 1; w <= p.HistoryWeeks; w++ {
			if hh := h.Add(-time.Duration(w) * week).Unix(); hh >= first {
				history = append(history, min(counts[hh-3600], counts[hh], counts[hh+3600]))
			}
		}
		v := judgeHour(counts[h.Unix()], history, p)
		if v.compared {
			out.compared++
		}
		if v.silent {
			out.hours++
			out.shortfall += v.shortfall
			if len(out.starts) < maxSilentStarts {
				out.starts = append(out.starts, h.UnixMilli())
			}
		}
	}
	return out
}

// chainLines are the orphan and unanswered figures of a network or a feed.
type chainLines struct {
	orphans, orphansExpected, unanswered, unansweredExpected *hinscorev1.Rate
	orphansFlagged, unansweredFlagged                        bool
	// excess: the orphans and unanswered beyond their expected rates, of
	// those flagged.
	excess uint64
}

// judgeChains compares own chains with the rates of basis; nothing is
// flagged when basis has fewer than MinSample chains.
func judgeChains(own, basis chainCounts, p FeedParams) chainLines {
	l := chainLines{
		orphans: NewRate(own.orphans, own.requests+own.orphans), orphansExpected: NewRate(basis.orphans, basis.requests+basis.orphans),
		unanswered: NewRate(own.unanswered, own.requests), unansweredExpected: NewRate(basis.unanswered, basis.requests),
	}
	if basis.requests+basis.orphans < MinSample {
		return l
	}
	o := judgeRate(own.orphans, own.requests+own.orphans, l.orphansExpected.GetRate(), p)
	u := judgeRate(own.unanswered, own.requests, l.unansweredExpected.GetRate(), p)
	l.orphansFlagged, l.unansweredFlagged, l.excess = o.flagged, u.flagged, o.excess+u.excess
	return l
}

// networkChains fills the orphan and unanswered lines of fh and returns
// the network's basis and the count beyond the expected rates of those
// flagged. The expected rate is the network's own over the HistoryWeeks
// before the period when that has MinSample chains, else its peers'
// (every other network) in the period.
func (fw *feedWorld) networkChains(fh *hinscorev1.FeedHealth, network string, start, end time.Time, p FeedParams) (chainCounts, uint64) {
	total := feedKey{network, allFeeds}
	basis := fw.chainsBetween(total, start.Add(-time.Duration(p.HistoryWeeks)*week), start)
	if basis.requests+basis.orphans < MinSample {
		basis = chainCounts{}
		for k := range fw.days {
			if k.network != network && k.feed == allFeeds {
				basis.add(fw.chainsBetween(k, start, end))
			}
		}
	}
	l := judgeChains(fw.chainsBetween(total, start, end), basis, p)
	fh.Orphans, fh.OrphansExpected, fh.OrphansFlagged = l.orphans, l.orphansExpected, l.orphansFlagged
	fh.Unanswered, fh.UnansweredExpected, fh.UnansweredFlagged = l.unanswered, l.unansweredExpected, l.unansweredFlagged
	return basis, l.excess
}

// feedChains fills a feed line's orphan and unanswered figures, against
// the feed's own history when it has MinSample chains, else the network's
// basis, and returns the count beyond them of those flagged.
func (fw *feedWorld) feedChains(line *hinscorev1.FeedLine, k feedKey, start, end time.Time, network chainCounts, p FeedParams) uint64 {
	basis := fw.chainsBetween(k, start.Add(-time.Duration(p.HistoryWeeks)*week), start)
	if basis.requests+basis.orphans < MinSample {
		basis = network
	}
	l := judgeChains(fw.chainsBetween(k, start, end), basis, p)
	line.Orphans, line.OrphansExpected, line.OrphansFlagged = l.orphans, l.orphansExpected, l.orphansFlagged
	line.Unanswered, line.UnansweredExpected, line.UnansweredFlagged = l.unanswered, l.unansweredExpected, l.unansweredFlagged
	return l.excess
}

// chainsBetween sums a feed's (or with allFeeds, a network's) daily chain
// counts over [from, to).
func (fw *feedWorld) chainsBetween(k feedKey, from, to time.Time) chainCounts {
	var c chainCounts
	for d := midnight(from); d.Before(to); d = d.AddDate(0, 0, 1) {
		if !d.Before(from) {
			c.add(fw.days[k][d.Unix()])
		}
	}
	return c
}
