package chwriter_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/domain/testenv"
)

// privateClickHouse starts a ClickHouse server of this test's own with
// scripts/clickhouse.sh (never the shared one, which others use), and stops
// it by its recorded PID when the test ends.
type privateClickHouse struct {
	t      *testing.T
	home   string
	script string
}

func startPrivateClickHouse(t *testing.T) (*privateClickHouse, chstore.DSN) {
	t.Helper()
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		testenv.Missing(t, "clickhouse-server is not installed (scripts/clickhouse.sh needs it): %v", err)
	}
	script, err := filepath.Abs("../../scripts/clickhouse.sh")
	if err != nil {
		t.Fatal(err)
	}
	p := &privateClickHouse{t: t, home: t.TempDir(), script: script}
	t.Cleanup(func() { p.run("stop") })
	dsn := strings.TrimSpace(p.run("start"))
	d, err := chstore.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("clickhouse.sh start printed %q: %v", dsn, err)
	}
	d.Database = "hinscore_outage"
	return p, d
}

func (p *privateClickHouse) run(arg string) string {
	cmd := exec.Command(p.script, arg)
	cmd.Env = append(os.Environ(), "HINSCORE_CH_HOME="+p.home)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		p.t.Fatalf("clickhouse.sh %s: %v\n%s", arg, err, stderr.String())
	}
	return string(out)
}

// restart starts the server again on the same config, so the same port and
// the same data directory; clickhouse.sh start would pick new ports. The
// PID goes where clickhouse.sh stop looks for it.
func (p *privateClickHouse) restart() {
	cmd := exec.Command("clickhouse-server", "--config-file="+filepath.Join(p.home, "etc", "config.xml"))
	cmd.Dir = p.home
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.home, "server.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		p.t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }() // reap it whoever stops it
}

// TestClickHouseServerOutage stops a real ClickHouse server for 60 s while
// traffic keeps arriving, then starts it again on the same data. The writer
// must not crash, must hold at most one batch per stream meanwhile (JetStream
// keeps the backlog), and afterwards every event and outcome must be in the
// views exactly once.
func TestClickHouseServerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("the outage lasts 60 s")
	}
	ch, d := startPrivateClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	conn, err := chstore.OpenDSN(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	opts := bus.DefaultStreamOptions()
	url, js := bustest.Start(t, &opts)
	h := &harness{t: t, ctx: ctx, js: js, conn: conn, dsn: d, url: url}

	cfg := chwriter.DefaultConfig()
	cfg.BatchRows, cfg.FlushInterval, cfg.AckWait, cfg.RetryMax = 500, 100*time.Millisecond, 10*time.Second, 2*time.Second
	cfg.RollupEvery = 0
	reg := prometheus.NewRegistry()
	w := h.startWriter(cfg, reg)

	wait := outageTraffic(t, h, reg)

	time.Sleep(5 * time.Second)
	before := h.count("SELECT count() FROM exchange_events")
	ch.run("stop")
	t.Logf("ClickHouse stopped after %d events were written", before)
	time.Sleep(30 * time.Second)
	if err := w.Ready(ctx); err == nil {
		t.Error("Ready = nil while ClickHouse is down")
	}
	info := h.consumerInfo(bus.StreamEvents, "chwriter_events")
	if info.NumAckPending > cfg.BatchRows || info.NumPending == 0 {
		t.Errorf("during the outage %d unacked (want at most one batch, %d) and %d left in the stream (want a backlog)",
			info.NumAckPending, cfg.BatchRows, info.NumPending)
	}
	time.Sleep(30 * time.Second)
	ch.restart()
	t.Log("ClickHouse started again on the same data")
	maxHeld := wait()
	checkAfterOutage(t, h, w, reg, cfg, before, maxHeld)
}

// The outage test's traffic for the whole run: outagePerTick events and a
// slice of outageOutcomes outcome versions every 100 ms, for about 75 s.
const outageTicks, outagePerTick, outageOutcomes = 750, 10, 1500

// outageTraffic publishes the outage test's traffic and samples the
// writer's held_messages gauge in reg meanwhile; wait waits for the
// traffic to end and returns the gauge's peak.
func outageTraffic(t *testing.T, h *harness, reg *prometheus.Registry) (wait func() float64) {
	t.Helper()
	const ticks, perTick = outageTicks, outagePerTick
	outcomes := allOutcomeMsgs(t, 0, outageOutcomes)
	var (
		wg      sync.WaitGroup
		maxHeld float64
		mu      sync.Mutex
	)
	done := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		per := (len(outcomes) + ticks - 1) / ticks
		for i := range ticks {
			<-tick.C
			msgs := eventMsgs(t, i*perTick, (i+1)*perTick)
			msgs = append(msgs, outcomes[min(i*per, len(outcomes)):min((i+1)*per, len(outcomes))]...)
			h.publish(msgs...)
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			held := metricMax(t, reg, "hinscore_chwriter_held_messages")
			mu.Lock()
			maxHeld = max(maxHeld, held)
			mu.Unlock()
		}
	}()
	return func() float64 {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return maxHeld
	}
}

// checkAfterOutage waits for the writer w to drain the backlog after the
// outage, then checks that every event and outcome is in the views exactly
// once, that nothing written before the outage was lost (before rows of
// exchange_events), that the writer held at most two batches (maxHeld) and
// retried, and that it is ready again.
func checkAfterOutage(t *testing.T, h *harness, w *chwriter.Writer, reg *prometheus.Registry, cfg chwriter.Config, before uint64, maxHeld float64) {
	t.Helper()
	const n = outageTicks * outagePerTick
	const m = outageOutcomes
	versions, _ := sumVersions(0, m)
	const drain = 90 * time.Second
	h.waitCount("SELECT count() FROM events", n, drain)
	h.waitCount("SELECT sum(version) FROM outcomes", versions, drain)
	h.waitAcked(bus.StreamEvents, "chwriter_events")
	h.waitAcked(bus.StreamOutcomes, "chwriter_outcomes")
	for _, c := range []struct {
		query string
		want  uint64
	}{
		{"SELECT count() FROM outcomes", m},
		{"SELECT uniqExact(outcome_id) FROM outcomes", m},
		{"SELECT count() FROM events", n},
		{"SELECT uniqExact(event_id) FROM events", n},
	} {
		if got := h.count(c.query); got != c.want {
			t.Errorf("%s = %d, want %d", c.query, got, c.want)
		}
	}
	if got := h.count("SELECT count() FROM exchange_events"); got < before {
		t.Errorf("exchange_events has %d rows after the restart, fewer than the %d written before: data lost", got, before)
	}
	if maxHeld == 0 || maxHeld > float64(2*cfg.BatchRows) {
		t.Errorf("held_messages peaked at %v, want 1-%d (the batch retried and the next, however long the outage)", maxHeld, 2*cfg.BatchRows)
	}
	if got := metricSum(t, reg, "hinscore_chwriter_insert_retries_total"); got < 5 {
		t.Errorf("insert_retries_total = %v, want the retries of a 60 s outage", got)
	}
	if err := w.Ready(h.ctx); err != nil {
		t.Errorf("Ready after the outage: %v", err)
	}
}

// metricMax is the largest value among the series of a gauge family.
func metricMax(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var top float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				top = max(top, m.GetGauge().GetValue())
			}
		}
	}
	return top
}
