package scorecard

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/service/servicetest"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/service"
)

func TestServiceConfigFromEnv(t *testing.T) {
	tests := []struct {
		file    string
		want    ServiceConfig
		wantErr []string // every variable the error must name
	}{
		{file: "empty.env", want: DefaultServiceConfig()},
		{file: "tuned.env", want: ServiceConfig{Every: 5 * time.Minute, Out: "/var/lib/hinscore/scorecards", Granularities: []string{Month, Week}, CloseAfter: time.Hour}},
		{file: "bad.env", wantErr: []string{EnvEvery, EnvPeriods}},
		{file: "invalid.env", wantErr: []string{EnvEvery, EnvPeriods, EnvCloseAfter}},
		{file: "empty-periods.env", wantErr: []string{EnvEvery, EnvPeriods}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ServiceConfigFromEnv(servicetest.ConfigFile(t, tt.file))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ServiceConfigFromEnv = %+v, want an error", got)
				}
				for _, name := range tt.wantErr {
					if !strings.Contains(err.Error(), name) {
						t.Errorf("error %q does not name %s", err, name)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Every != tt.want.Every || got.Out != tt.want.Out || !slices.Equal(got.Granularities, tt.want.Granularities) {
				t.Errorf("ServiceConfigFromEnv = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// fixedClock always says the same instant, so generated_at_ms is stable.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// lazyConn returns a connection to an address where nothing listens; the
// driver dials only when used, so it serves tests that never reach the
// server and tests of what happens when it is unreachable.
func lazyConn(t *testing.T) clickhouse.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{"127.0.0.1:1"}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestNewServiceRejectsBadArguments(t *testing.T) {
	good := ServiceConfig{Every: time.Minute, Out: t.TempDir(), Granularities: []string{Day}}
	conn := lazyConn(t)
	tests := []struct {
		name  string
		cfg   ServiceConfig
		conn  clickhouse.Conn
		reg   prometheus.Registerer
		clock service.Clock
		want  string
	}{
		{"zero interval", ServiceConfig{Out: good.Out, Granularities: good.Granularities}, conn, prometheus.NewRegistry(), service.SystemClock{}, "Every"},
		{"no out", ServiceConfig{Every: time.Minute, Granularities: good.Granularities}, conn, prometheus.NewRegistry(), service.SystemClock{}, "Out"},
		{"year", ServiceConfig{Every: time.Minute, Out: good.Out, Granularities: []string{"year"}}, conn, prometheus.NewRegistry(), service.SystemClock{}, "Granularities"},
		{"no conn", good, nil, prometheus.NewRegistry(), service.SystemClock{}, "conn"},
		{"no registry", good, conn, nil, service.SystemClock{}, "reg"},
		{"no clock", good, conn, prometheus.NewRegistry(), nil, "clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewService(tt.cfg, service.Deps{ClickHouse: tt.conn, Log: zerolog.Nop(), Metrics: tt.reg, Clock: tt.clock})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewService error %v, want one naming %s", err, tt.want)
			}
		})
	}
}

// listFiles returns every file under dir, relative and sorted.
// listFiles lists the files under dir except the CSV and HTML companions
// of the cards (checked by checkCompanions): the .json cards, and any
// leftover temporary file.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".csv") || strings.HasSuffix(path, ".html") {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// checkCompanions checks that every card has its CSV and HTML, and every
// period directory its offenders list.
func checkCompanions(t *testing.T, dir string) {
	t.Helper()
	cards := listFiles(t, dir)
	if len(cards) == 0 {
		t.Fatal("no cards")
	}
	for _, c := range cards {
		base := strings.TrimSuffix(filepath.Join(dir, c), ".json")
		for _, p := range []string{base + ".csv", base + ".html", filepath.Join(filepath.Dir(base), "offenders.csv"), filepath.Join(filepath.Dir(base), "offenders.html")} {
			if st, err := os.Stat(p); err != nil || st.Size() == 0 {
				t.Errorf("%s: missing or empty (%v)", p, err)
			}
		}
	}
}

// fixtureFiles are the cards of fixture() by day, ISO week and month.
var fixtureFiles = []string{
	"2026-11-22/alpha.json", "2026-11-22/beta.json",
	"2026-11/alpha.json", "2026-11/beta.json",
	"2026-12-28/gamma.json", "2026-12/gamma.json",
	"2026-W47/alpha.json", "2026-W47/beta.json", "2026-W53/gamma.json",
	"2027-01-01/gamma.json", "2027-01-03/gamma.json", "2027-01-04/gamma.json", "2027-01/gamma.json",
	"2027-W01/gamma.json",
}

func TestRunOnce(t *testing.T) {
	conn := testDatabase(t)
	insert(t, conn, fixture())
	out := t.TempDir()
	var logs bytes.Buffer
	js := testJetStream(t)
	s, err := NewService(ServiceConfig{Every: time.Hour, Out: out, Granularities: []string{Day, Week, Month}},
		service.Deps{ClickHouse: conn, JetStream: js, Log: zerolog.New(&logs), Metrics: prometheus.NewRegistry(), Clock: fixedClock{testNow}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
	// The second run rewrites every file in place and leaves no temporary
	// file behind.
	for run := 1; run <= 2; run++ {
		if err := s.RunOnce(ctx); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		checkCompanions(t, out)
		if got := listFiles(t, out); !slices.Equal(got, fixtureFiles) {
			t.Fatalf("run %d wrote %q\nwant %q", run, got, fixtureFiles)
		}
	}

	got, err := os.ReadFile(filepath.Join(out, "2026-11-22", "alpha.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "alpha-2026-11-22-closed.json", got)

	// The latest event is 2027-01-04 00:00:00 and every outcome has a
	// 60 s SLA and 30 s of grace: the 9 cards of periods that ended by
	// 2027-01-03 23:58:30 are closed (not 2027-01-03 nor 2026-W53, which
	// end at 2027-01-04), stored once and published once, although two runs
	// saw them.
	const closedCards = 9
	var stored uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM scorecards").Scan(&stored); err != nil || stored != closedCards {
		t.Errorf("scorecards table: %d rows (%v), want %d", stored, err, closedCards)
	}
	stream, err := js.Stream(ctx, bus.StreamScorecards)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil || info.State.Msgs != closedCards {
		t.Errorf("stream SCORECARDS: %+v (%v), want %d messages", info, err, closedCards)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, bus.ScorecardSubject("alpha"))
	if err != nil {
		t.Fatal(err)
	}
	var published hinscorev1.Scorecard
	if err := proto.Unmarshal(msg.Data, &published); err != nil || published.GetCopy() != CopyOperator || !published.GetClosed() || len(published.GetPeers()) != 0 {
		t.Errorf("published card: copy %q closed %v peers %d (%v)", published.GetCopy(), published.GetClosed(), len(published.GetPeers()), err)
	}
	if n := testutil.ToFloat64(s.m.closed); n != closedCards {
		t.Errorf("cards_closed_total = %v, want %d", n, closedCards)
	}
	for file, want := range map[string]uint64{"2026-W53/gamma.json": 3, "2027-01/gamma.json": 3, "2026-W47/alpha.json": 41} {
		b, err := os.ReadFile(filepath.Join(out, file))
		if err != nil {
			t.Fatal(err)
		}
		var c hinscorev1.Scorecard
		if err := protojson.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if c.Requests != want || c.Period != filepath.Dir(file) {
			t.Errorf("%s: period %s with %d requests, want %d", file, c.Period, c.Requests, want)
		}
	}

	if n := testutil.ToFloat64(s.m.runs.WithLabelValues(resultSuccess)); n != 2 {
		t.Errorf("runs_total{result=success} = %v, want 2", n)
	}
	if n := testutil.ToFloat64(s.m.cards); n != float64(2*len(fixtureFiles)) {
		t.Errorf("cards_written_total = %v, want %d", n, 2*len(fixtureFiles))
	}
	if ts := testutil.ToFloat64(s.m.lastSuccess); ts != float64(testNow.Unix()) {
		t.Errorf("last_success_timestamp_seconds = %v, want %d", ts, testNow.Unix())
	}
	first, _, _ := strings.Cut(logs.String(), "\n")
	for _, want := range []string{`"level":"info"`, `"cards":14`, `"cards_day":6`, `"cards_week":4`, `"cards_month":4`, `"networks":3`, `"duration":`} {
		if !strings.Contains(first, want) {
			t.Errorf("log line %s lacks %s", first, want)
		}
	}
}

// testJetStream starts an embedded NATS server with the hinscore streams.
func testJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	js := bareJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx, js, bus.DefaultStreamOptions()); err != nil {
		t.Fatal(err)
	}
	return js
}

// bareJetStream starts an embedded NATS server without any stream.
func bareJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := bustest.Start(t, nil)
	return js
}

func TestRunOnceFailureIsCounted(t *testing.T) {
	out := t.TempDir()
	s, err := NewService(ServiceConfig{Every: time.Hour, Out: out, Granularities: []string{Day}},
		service.Deps{ClickHouse: lazyConn(t), Log: zerolog.Nop(), Metrics: prometheus.NewRegistry(), Clock: fixedClock{testNow}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.RunOnce(ctx); err == nil {
		t.Fatal("RunOnce without a server succeeded")
	}
	if err := s.Ready(ctx); err == nil {
		t.Error("Ready without a server succeeded")
	}
	if n := testutil.ToFloat64(s.m.runs.WithLabelValues(resultFailure)); n != 1 {
		t.Errorf("runs_total{result=failure} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(s.m.lastSuccess); n != 0 {
		t.Errorf("last_success_timestamp_seconds = %v after a failure only", n)
	}
	if files := listFiles(t, out); len(files) != 0 {
		t.Errorf("a failed run wrote %q", files)
	}
}

func TestServiceRunsOnInterval(t *testing.T) {
	conn := testDatabase(t)
	insert(t, conn, fixture())
	out := t.TempDir()
	s, err := NewService(ServiceConfig{Every: 50 * time.Millisecond, Out: out, Granularities: []string{Day}},
		service.Deps{ClickHouse: conn, Log: zerolog.Nop(), Metrics: prometheus.NewRegistry(), Clock: fixedClock{testNow}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	runs := func() float64 { return testutil.ToFloat64(s.m.runs.WithLabelValues(resultSuccess)) }
	deadline := time.Now().Add(15 * time.Second)
	for runs() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%v runs in 15s with a 50ms interval", runs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Shutdown(sctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	after := runs()
	if failed := testutil.ToFloat64(s.m.runs.WithLabelValues(resultFailure)); failed != 0 {
		t.Errorf("%v failed runs", failed)
	}
	time.Sleep(150 * time.Millisecond)
	if runs() != after {
		t.Errorf("runs went on after Shutdown: %v, then %v", after, runs())
	}
	if err := s.Start(ctx); err == nil {
		t.Error("Start after Shutdown succeeded")
	}
	if got := listFiles(t, out); len(got) != 6 {
		t.Errorf("files %q, want the 6 day cards", got)
	}
}

func TestShutdownBeforeStart(t *testing.T) {
	s, err := NewService(DefaultServiceConfig(), service.Deps{ClickHouse: lazyConn(t), Log: zerolog.Nop(), Metrics: prometheus.NewRegistry(), Clock: service.SystemClock{}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown before Start: %v", err)
		}
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("Start after Shutdown succeeded")
	}
}

// TestShutdownAbandonsAStuckRun points the service at a server that accepts
// connections and never answers: the first run hangs in the handshake, and
// Shutdown must give up on it when its context ends. The driver does not
// watch the context during its handshake, so the run itself ends when the
// server hangs up; it must then fail, write nothing and end the loop.
func TestShutdownAbandonsAStuckRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	hangUp := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	accepted := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		hangUp()
	})
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{ln.Addr().String()}, DialTimeout: 20 * time.Second, ReadTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	out := t.TempDir()
	s, err := NewService(ServiceConfig{Every: time.Hour, Out: out, Granularities: []string{Day}},
		service.Deps{ClickHouse: conn, Log: zerolog.Nop(), Metrics: prometheus.NewRegistry(), Clock: service.SystemClock{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the run never connected")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err = s.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown of a stuck run = %v, want the deadline", err)
	}
	if waited := time.Since(begin); waited > 5*time.Second {
		t.Errorf("Shutdown took %s with a 100ms deadline", waited)
	}
	hangUp()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the abandoned run did not end once the server hung up")
	}
	if n := testutil.ToFloat64(s.m.runs.WithLabelValues(resultFailure)); n != 1 {
		t.Errorf("runs_total{result=failure} = %v, want the abandoned run", n)
	}
	if files := listFiles(t, out); len(files) != 0 {
		t.Errorf("the abandoned run wrote %q", files)
	}
}
