package scorecard

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/encoding/protojson"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/bus"
)

// closeWorld is one day of alpha (2026-11-22): 30 patient queries (60 s
// SLA) and one referral (72 h SLA), each with 30 s of grace. The day
// closes when event time reaches its end + 72 h + 30 s + CloseAfter.
func closeWorld() []obs {
	day := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	var rows []obs
	for j := range 30 {
		v := uint64(1000 + j)
		rows = append(rows, obs{network: "alpha", ident: "A1", kind: "patient_query", outcome: "fulfilled", at: day.Add(time.Duration(j) * time.Minute), sla: 60_000, ttf: &v})
	}
	v := uint64(time.Hour.Milliseconds())
	return append(rows, obs{network: "alpha", ident: "A1", kind: "referral", outcome: "fulfilled", at: day, sla: uint64((72 * time.Hour).Milliseconds()), ttf: &v})
}

// closeAt is when 2026-11-22 of closeWorld closes with a 10 m margin.
var closeAt = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).Add(72*time.Hour + 30*time.Second + 10*time.Minute)

// advance writes one more patient query of alpha at t, moving the event
// time there.
func advance(t *testing.T, conn driver.Conn, n int, at time.Time) {
	t.Helper()
	insert(t, conn, []row{{id(1000 + n), 1, "alpha", "patient_query", "fulfilled", "", at, ttf(500)}})
}

func readCard(t *testing.T, path string) *hinscorev1.Scorecard {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c hinscorev1.Scorecard
	if err := protojson.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &c
}

// TestPeriodClosesAfterTheLongestSLA runs the service as event time
// advances: 2026-11-22 stays provisional (not stored, not published)
// until event time reaches its end + the referral's 72 h SLA + grace +
// CloseAfter, 1 s short of it included, then closes, is stored and
// published once.
func TestPeriodClosesAfterTheLongestSLA(t *testing.T) {
	conn := testDatabase(t)
	insertObs(t, conn, closeWorld())
	out := t.TempDir()
	js := testJetStream(t)
	var logs bytes.Buffer
	cfg := DefaultServiceConfig()
	cfg.Out, cfg.Granularities, cfg.JetStream = out, []string{Day}, js
	s, err := NewService(cfg, conn, zerolog.New(&logs), prometheus.NewRegistry(), fixedClock{testNow})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stored := func() uint64 {
		t.Helper()
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM scorecards WHERE period = '2026-11-22'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	published := func() uint64 {
		t.Helper()
		st, err := js.Stream(ctx, bus.StreamScorecards)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	card := filepath.Join(out, "2026-11-22", "alpha.json")

	// Two days after the end: closed under a 10 m delay alone, but the
	// referral may still be unanswered.
	for i, at := range []time.Time{time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), closeAt.Add(-time.Second)} {
		advance(t, conn, i, at)
		if err := s.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if c := readCard(t, card); c.GetClosed() || stored() != 0 || published() != 0 {
			t.Fatalf("event time %s: closed %v, %d stored, %d published; want a provisional card", at, c.GetClosed(), stored(), published())
		}
	}
	if want := `"close_delay":259830000`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s (72 h + 30 s + 10 m in ms):\n%s", want, logs.String())
	}
	advance(t, conn, 2, closeAt)
	for range 2 {
		if err := s.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if c := readCard(t, card); !c.GetClosed() || stored() != 1 || published() != 1 {
			t.Fatalf("event time %s: closed %v, %d stored, %d published; want closed, once each", closeAt, c.GetClosed(), stored(), published())
		}
	}
}
