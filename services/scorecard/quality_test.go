package scorecard

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// TestDataQualityLine: the line "messages with defects" counts a network's
// messages of the period (the events view, by event time) and those with
// data-quality flags, by flag; a message with two flags counts once in the
// total share; other networks and periods are not mixed in.
func TestDataQualityLine(t *testing.T) {
	conn := testDatabase(t)
	ctx := context.Background()
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	insert(t, conn, []row{
		{id: id(1), version: 1, network: "alpha", kind: "patient_query", outcome: "fulfilled", at: day.Add(time.Hour), ttfMs: ttf(100)},
		{id: id(2), version: 1, network: "beta", kind: "patient_query", outcome: "fulfilled", at: day.Add(time.Hour), ttfMs: ttf(100)},
	})
	b, err := conn.PrepareBatch(ctx, `INSERT INTO exchange_events (event_id, network, event_time, event_time_ms, reason_codes)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range []struct {
		network string
		at      time.Time
		codes   []string
	}{
		{"alpha", day.Add(time.Hour), nil},
		{"alpha", day.Add(2 * time.Hour), []string{"HL70357|207"}},
		{"alpha", day.Add(3 * time.Hour), []string{"dq|time-no-point"}},
		{"alpha", day.Add(4 * time.Hour), []string{"dq|bad-timestamp", "dq|no-control-id"}},
		{"alpha", day.Add(5 * time.Hour), []string{"HL70357|207", "dq|bad-timestamp"}},
		{"alpha", day.Add(26 * time.Hour), []string{"dq|bad-timestamp"}}, // the next day
		{"beta", day.Add(time.Hour), []string{"dq|bad-entry-status"}},
	} {
		if err := b.Append(uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(i)}), e.network, e.at, e.at.UnixMilli(), e.codes); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	cards, err := Build(ctx, conn, Query{Granularity: Day, Network: "alpha", From: day, To: day.Add(24 * time.Hour)}, day.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(cards) != 1 {
		t.Fatalf("%d cards, want 1", len(cards))
	}
	dq := cards[0].GetDataQuality()
	got := []string{rateOf("defective", dq.GetDefective())}
	for _, f := range dq.GetFlags() {
		got = append(got, rateOf(f.GetFlag(), f.GetShare()))
	}
	want := "defective 3/5 bad-timestamp 2/5 no-control-id 1/5 time-no-point 1/5"
	if dq.GetMessages() != 5 || strings.Join(got, " ") != want {
		t.Errorf("messages %d, %s; want 5, %s", dq.GetMessages(), strings.Join(got, " "), want)
	}
	var out bytes.Buffer
	if err := PrintTable(&out, cards); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "messages with defects") || !strings.Contains(out.String(), "bad-timestamp 40.0") {
		t.Errorf("the table has no line of messages with defects:\n%s", out.String())
	}
	page, err := HTML(cards[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("<h2>Messages with defects</h2>")) || !bytes.Contains(page, []byte("<th>no-control-id</th>")) {
		t.Error("the page has no section of messages with defects")
	}
}

func rateOf(name string, r *hinscorev1.Rate) string {
	return fmt.Sprintf("%s %d/%d", name, r.GetCount(), r.GetTotal())
}
