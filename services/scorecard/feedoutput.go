package scorecard

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// printFeedHealth prints, for each card, the network's feed-health line
// and a line per feed connection, every figure with its counts.
func printFeedHealth(w io.Writer, cards []*hinscorev1.Scorecard) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "network\tperiod\tfeed\tscore\treceived\tmissing\tsequence gaps\tduplicates\trestarts\tsilent hours\tshortfall\torphans\tunanswered\t")
	for _, c := range cards {
		fh := c.GetFeedHealth()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.4f\t%d\t%d\t%d\t%d\t\t%d\t%d\t%s\t%s\t\n", c.GetNetwork(), c.GetPeriod(), "(all)",
			fh.GetScore(), fh.GetReceived(), fh.GetMissing(), fh.GetSequenceGaps(), fh.GetSequenceDuplicates(),
			fh.GetSilentHours(), fh.GetSilentShortfall(),
			againstExpected(fh.GetOrphans(), fh.GetOrphansExpected(), fh.GetOrphansFlagged()),
			againstExpected(fh.GetUnanswered(), fh.GetUnansweredExpected(), fh.GetUnansweredFlagged()))
		for _, l := range fh.GetFeeds() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.4f\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", c.GetNetwork(), c.GetPeriod(), feedName(l.GetFeed()),
				l.GetScore(), l.GetReceived(), l.GetSequenceGaps()+l.GetSilentShortfall(), l.GetSequenceGaps(),
				l.GetSequenceDuplicates(), l.GetRestarts(), l.GetSilentHours(), l.GetSilentShortfall(),
				againstExpected(l.GetOrphans(), l.GetOrphansExpected(), l.GetOrphansFlagged()),
				againstExpected(l.GetUnanswered(), l.GetUnansweredExpected(), l.GetUnansweredFlagged()))
			if hours := silentHours(l); hours != "" {
				fmt.Fprintf(tw, "\t\t\tsilent from %s\t\t\t\t\t\t\t\t\t\t\n", hours)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	p := DefaultFeedParams()
	_, err := fmt.Fprintf(w, "feed health %s: score = received / (received + missing); missing = sequence gaps (MSH-13, syslog sequenceId; a jump over %d is a restart) + the shortfall of silent hours (median of the same hour in %d earlier weeks >= %g and P(Poisson <= observed) < %g) + orphans and unanswered beyond their expected rate when flagged (binomial p < %g and %g above)\n",
		FeedHealthVersion, p.MaxGap, p.HistoryWeeks, p.MinExpected, p.SilenceP, p.RateP, p.RateMargin)
	return err
}

// againstExpected is "count/total (rate%, expected e%)" with a mark when
// flagged.
func againstExpected(r, expected *hinscorev1.Rate, flagged bool) string {
	s := fmt.Sprintf("%d/%d (%.2f%%, expected %.2f%%)", r.GetCount(), r.GetTotal(), 100*r.GetRate(), 100*expected.GetRate())
	if flagged {
		s += " FLAGGED"
	}
	return s
}

// feedName shows the feed of rows stored before feeds were recorded.
func feedName(feed string) string {
	if feed == "" {
		return "(unrecorded)"
	}
	return feed
}

// silentHours lists a feed's silent hours, "2026-11-25 13:00, ...".
func silentHours(l *hinscorev1.FeedLine) string {
	s := ""
	for i, ms := range l.GetSilentHourStartsMs() {
		if i > 0 {
			s += ", "
		}
		s += time.UnixMilli(ms).UTC().Format("2006-01-02 15:04")
	}
	return s
}

// observeFeedHealth sets the feed-health gauges from the latest card of
// each network at the finest granularity built (a day, unless the service
// builds no day cards): the figures an alert watches while the day goes
// on. Feeds no longer on a latest card leave the gauges.
func (m *metrics) observeFeedHealth(cards []*hinscorev1.Scorecard) {
	rank := map[string]int{Day: 0, Week: 1, Month: 2}
	latest := map[string]*hinscorev1.Scorecard{}
	for _, c := range cards {
		l := latest[c.GetNetwork()]
		if l == nil || rank[c.GetGranularity()] < rank[l.GetGranularity()] ||
			c.GetGranularity() == l.GetGranularity() && c.GetPeriodStartMs() > l.GetPeriodStartMs() {
			latest[c.GetNetwork()] = c
		}
	}
	m.feedScore.Reset()
	m.feedLine.Reset()
	m.feedGaps.Reset()
	m.feedSilent.Reset()
	m.exchangeScore.Reset()
	m.lacksRefusals.Reset()
	for network, c := range latest {
		if fc := c.GetCompleteness(); fc != nil {
			// Only networks whose exchanges another network's feed also
			// carries have the figure.
			m.exchangeScore.WithLabelValues(network).Set(fc.GetScore())
			lacks := 0.0
			if fc.GetLacksOwnRefusals() {
				lacks = 1
			}
			m.lacksRefusals.WithLabelValues(network).Set(lacks)
		}
		fh := c.GetFeedHealth()
		m.feedScore.WithLabelValues(network).Set(fh.GetScore())
		for _, l := range fh.GetFeeds() {
			m.feedLine.WithLabelValues(network, l.GetFeed()).Set(l.GetScore())
			m.feedGaps.WithLabelValues(network, l.GetFeed()).Set(float64(l.GetSequenceGaps()))
			m.feedSilent.WithLabelValues(network, l.GetFeed()).Set(float64(l.GetSilentHours()))
		}
	}
}
