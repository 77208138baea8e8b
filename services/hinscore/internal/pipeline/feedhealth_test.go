package pipeline

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/hl7v2/mllp"
	"github.com/hinscore/hinscore/services/scorecard"
)

// feedMessage is an ADT notification of the sequence-number protocol:
// MSH-13 n (none when n is 0), control id and time its own.
func feedMessage(at time.Time, id string, n int64) string {
	seq := ""
	if n > 0 {
		seq = fmt.Sprint(n)
	}
	return "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|" + at.Format("20060102150405") + "||ADT^A01|" + id + "|P|2.5.1|" + seq + "\r" +
		"PID|1||MRN1^^^HOSP_A\r"
}

// sendAcked sends msgs over one MLLP connection, a window at a time, and
// reads an AA for each.
func sendAcked(t *testing.T, addr string, msgs []string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := mllp.NewReader(c, 1<<20)
	for lo := 0; lo < len(msgs); lo += 100 {
		var buf []byte
		chunk := msgs[lo:min(len(msgs), lo+100)]
		for _, m := range chunk {
			buf = mllp.AppendFrame(buf, []byte(m))
		}
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		for range chunk {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := r.ReadFrame(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestFeedHealthEndToEnd: four weeks of a feed numbering its messages
// (MSH-13), ten an hour from 09:00 to 18:00, then a day on which it skips
// three numbers and carries nothing from 13:00, sent over MLLP through the
// composed pipeline: ClickHouse holds every message with its feed and
// number, and the day's scorecard shows that feed's gap and silent hour;
// a query answered that day is the card's one outcome.
func TestFeedHealthEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := startForTest(ctx, t, testOptions(t, []string{"hin1"}))
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	var msgs []string
	n := int64(0)
	for d := day.AddDate(0, 0, -28); !d.After(day); d = d.AddDate(0, 0, 1) {
		for h := 9; h < 18; h++ {
			for i := range 10 {
				at := d.Add(time.Duration(h)*time.Hour + time.Duration(i)*time.Minute)
				if d.Equal(day) && h == 13 {
					continue
				}
				n++
				if d.Equal(day) && h == 10 && i == 5 {
					n += 3
				}
				msgs = append(msgs, feedMessage(at, fmt.Sprintf("C%d", len(msgs)), n))
			}
		}
	}
	msgs = append(msgs,
		"MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20261125090000||QBP^Q22^QBP_Q21|Q1|P|2.5.1\rQPD|IHE PDQ Query|TAG1|@PID.3.1^MRN42~@PID.3.4.1^HOSP_A\rRCP|I\r",
		"MSH|^~\\&|HIE|NETB|EHR|HOSP_A|20261125090030||RSP^K22^RSP_K21|R1|P|2.5.1\rMSA|AA|Q1\rQAK|TAG1|OK|IHE PDQ Query|1\rQPD|IHE PDQ Query|TAG1|@PID.3.1^MRN42~@PID.3.4.1^HOSP_A\rPID|1||MRN42^^^HOSP_A\r")
	sendAcked(t, p.MLLPAddrs()["hin1"], msgs)
	if _, err := p.WaitStored(ctx, Counts{Events: uint64(len(msgs)), Outcomes: 1}); err != nil {
		t.Fatal(err)
	}
	conn, _ := p.ClickHouse()
	cards, err := scorecard.Build(ctx, conn, scorecard.Query{Granularity: scorecard.Day, From: day, To: day.AddDate(0, 0, 1)}, day.AddDate(0, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(cards) != 1 || len(cards[0].GetFeedHealth().GetFeeds()) != 1 {
		t.Fatalf("cards %d, want one with one feed: %v", len(cards), cards)
	}
	l := cards[0].GetFeedHealth().GetFeeds()[0]
	if l.GetFeed() != "mllp:127.0.0.1" || l.GetReceived() != 82 || l.GetSequenced() != 80 || l.GetSequenceGaps() != 3 ||
		l.GetSilentHours() != 1 || l.GetSilentShortfall() != 10 || l.GetSequenceDuplicates() != 0 {
		t.Errorf("feed line %v; want mllp:127.0.0.1, 82 received, 80 numbered, 3 gaps, 1 silent hour short of 10", l)
	}
	if s := cards[0].GetFeedHealth().GetScore(); s >= 1 || s < 0.8 {
		t.Errorf("network score %g, want under 1", s)
	}
}
