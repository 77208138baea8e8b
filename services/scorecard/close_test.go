package scorecard

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/encoding/protojson"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/lib/service"
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

// streamMsgs returns the number of messages on SCORECARDS.
func streamMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), bus.StreamScorecards)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
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
	cfg.Out, cfg.Granularities = out, []string{Day}
	s, err := NewService(cfg, service.Deps{ClickHouse: conn, JetStream: js, Log: zerolog.New(&logs), Metrics: prometheus.NewRegistry(), Clock: fixedClock{testNow}})
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
	published := func() uint64 { return streamMsgs(t, js) }
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

// flakyJS refuses every publish after the first ok ones (ok < 0: none is
// refused).
type flakyJS struct {
	jetstream.JetStream
	mu sync.Mutex
	ok int
	n  int
}

func (f *flakyJS) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	f.mu.Lock()
	f.n++
	refuse := f.ok >= 0 && f.n > f.ok
	f.mu.Unlock()
	if refuse {
		return nil, errors.New("flaky: publish refused")
	}
	return f.JetStream.PublishMsg(ctx, msg, opts...)
}

func (f *flakyJS) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ok = -1
}

// TestServiceDeliversEachClosedCardOnce: the one-shot command stores the
// fixture's 4 closed day cards without publishing them; the service then
// stores the 5 other closed cards (weeks, months) and its third publish
// fails; the next run publishes what is missing and stores nothing again;
// a restarted service (a new process: what it knows comes from the table
// and the stream) neither stores nor publishes anything. In the end each
// of the 9 closed cards is in the table once and on the stream once.
func TestServiceDeliversEachClosedCardOnce(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvCloseAfter, "0s")
	conn, d := chtest.Database(t)
	insert(t, conn, fixture())
	ctx := context.Background()
	const closedCards = 9 // see TestRunOnce
	var stdout, stderr bytes.Buffer
	if err := RunCLI(ctx, []string{"--clickhouse", dsnString(d), "--out", t.TempDir()}, &stdout, &stderr); err != nil {
		t.Fatalf("RunCLI: %v\n%s", err, stderr.String())
	}
	js := testJetStream(t)
	check := func(step string, rows, msgs uint64) {
		t.Helper()
		var n, distinct uint64
		if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(granularity, network, period) FROM scorecards").Scan(&n, &distinct); err != nil {
			t.Fatal(err)
		}
		if got := streamMsgs(t, js); n != rows || distinct != rows || got != msgs {
			t.Errorf("%s: %d rows (%d periods), %d messages; want %d rows, %d messages", step, n, distinct, got, rows, msgs)
		}
	}
	check("after the command", 4, 0)

	flaky := &flakyJS{JetStream: js, ok: 2}
	// The restarted service's clock is an hour later, so that JetStream's
	// deduplication (same Msg-Id within 2 min) cannot hide a publish again.
	newService := func(js jetstream.JetStream, now time.Time) *Service {
		s, err := NewService(ServiceConfig{Every: time.Hour, Out: t.TempDir(), Granularities: []string{Day, Week, Month}},
			service.Deps{ClickHouse: conn, JetStream: js, Log: zerolog.Nop(), Metrics: prometheus.NewRegistry(), Clock: fixedClock{now}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := newService(flaky, testNow)
	if err := s.RunOnce(ctx); err == nil {
		t.Fatal("a run whose publish failed succeeded")
	}
	check("after a failed publish", closedCards, 2)
	flaky.heal()
	if err := s.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the next run", closedCards, closedCards)
	if err := newService(js, testNow.Add(time.Hour)).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	check("after a restart", closedCards, closedCards)

	published, err := loadPublished(ctx, js)
	if err != nil || len(published) != closedCards {
		t.Errorf("published periods %v (%v), want %d", published, err, closedCards)
	}
}

// TestServiceWithoutTheStreamYet: with no SCORECARDS stream (the bus not
// set up yet) a run still writes its files and stores its closed cards,
// and fails on the publish; once the stream exists the next run publishes
// every closed card.
func TestServiceWithoutTheStreamYet(t *testing.T) {
	conn := testDatabase(t)
	insert(t, conn, fixture())
	js := bareJetStream(t)
	out := t.TempDir()
	s, err := NewService(ServiceConfig{Every: time.Hour, Out: out, Granularities: []string{Day, Week, Month}},
		service.Deps{ClickHouse: conn, JetStream: js, Log: zerolog.Nop(), Metrics: prometheus.NewRegistry(), Clock: fixedClock{testNow}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.RunOnce(ctx); err == nil {
		t.Fatal("a run with nowhere to publish succeeded")
	}
	if got := listFiles(t, out); len(got) != len(fixtureFiles) {
		t.Errorf("files %q, want the %d cards", got, len(fixtureFiles))
	}
	if err := bus.EnsureStreams(ctx, js, bus.DefaultStreamOptions()); err != nil {
		t.Fatal(err)
	}
	if err := s.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var rows uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM scorecards").Scan(&rows); err != nil || rows != 9 || streamMsgs(t, js) != 9 {
		t.Errorf("%d rows (%v), %d messages; want 9 of each", rows, err, streamMsgs(t, js))
	}
}
