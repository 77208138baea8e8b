package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hinscore/hinscore/services/harness/faults"
	"github.com/hinscore/hinscore/services/harness/simulator"
)

// step is one steady-rate run.
type step struct {
	TargetRate   float64          `json:"target_frames_per_s"`
	SentRate     float64          `json:"sent_frames_per_s"`
	Events       int              `json:"events"`
	EventsPerSec float64          `json:"events_per_s"`
	StoreLag     time.Duration    `json:"store_lag_ns"`
	Behind       bool             `json:"behind"`
	LatencyP50   time.Duration    `json:"latency_p50_ns"`
	LatencyP99   time.Duration    `json:"latency_p99_ns"`
	Samples      int              `json:"latency_samples"`
	PeakRSS      map[string]int64 `json:"peak_rss_bytes"`
	// CPUPerEvent is each process's CPU (user + system) per stored event,
	// in microseconds, from the first frame sent to the last event stored:
	// the services, NATS, ClickHouse and this process (the simulator).
	CPUPerEvent map[string]float64 `json:"cpu_us_per_event"`
	// CPUBusy is the CPU all of them used over the machine's capacity
	// (cores × wall time) in that span: near 1, the cores were the limit.
	CPUBusy float64 `json:"cpu_busy"`
	// BacklogPeak is the largest backlog (undelivered + unacknowledged
	// messages) each consuming stage had in the step.
	BacklogPeak map[string]uint64 `json:"backlog_peak"`
	// HeldBackBy names what limited the step: a stage whose backlog
	// reached a second of the step's traffic, or the sending itself (the
	// ingest's ACKs did not come back at the target rate).
	HeldBackBy string `json:"held_back_by,omitempty"`
}

// e2eResult is what measure found.
type e2eResult struct {
	Steps     []step
	Sustained step // the fastest step that kept up
	HalfLoad  step // latency at half the sustained rate
	Behind    step // the first step that fell behind (none: zero)
	PeakRSS   map[string]int64
}

// pollEvery is how often the outcome rows of sampled answers are looked
// for: the latency figures are known to within it.
const pollEvery = 100 * time.Millisecond

func measure(ctx context.Context, cfg config) (e2eResult, error) {
	var res e2eResult
	res.PeakRSS = map[string]int64{}
	base, err := faults.ParseDSN(cfg.dsn)
	if err != nil {
		return res, err
	}
	rate := cfg.startRate
	for i := range cfg.maxSteps {
		st, err := runStep(ctx, cfg, base, rate)
		if err != nil {
			return res, fmt.Errorf("step %d (%.0f frames/s): %w", i+1, rate, err)
		}
		res.Steps = append(res.Steps, st)
		for k, v := range st.PeakRSS {
			res.PeakRSS[k] = max(res.PeakRSS[k], v)
		}
		fmt.Fprintf(os.Stderr, "e2ebench: step %d: target %.0f frames/s, sent %.0f, stored %.0f events/s, store lag %s, answer→row p50 %s p99 %s, behind=%v\n",
			i+1, rate, st.SentRate, st.EventsPerSec, st.StoreLag.Round(time.Millisecond), st.LatencyP50.Round(time.Millisecond), st.LatencyP99.Round(time.Millisecond), st.Behind)
		fmt.Fprintf(os.Stderr, "e2ebench: step %d: cores %.0f%% busy, CPU µs/event %s, peak backlog %s\n", i+1, 100*st.CPUBusy, formatMap(st.CPUPerEvent, "%.1f"), formatMap(st.BacklogPeak, "%d"))
		if st.Behind {
			fmt.Fprintf(os.Stderr, "e2ebench: step %d held back by %s\n", i+1, st.HeldBackBy)
			res.Behind = st
			break
		}
		res.Sustained = st
		rate *= 2
	}
	if res.Sustained.TargetRate == 0 {
		return res, fmt.Errorf("even %.0f frames/s fell behind: lower --start-rate", cfg.startRate)
	}
	half, err := runStep(ctx, cfg, base, res.Sustained.TargetRate/2)
	if err != nil {
		return res, fmt.Errorf("half-load step: %w", err)
	}
	res.HalfLoad = half
	fmt.Fprintf(os.Stderr, "e2ebench: half load %.0f frames/s: answer→row p50 %s p99 %s\n",
		half.TargetRate, half.LatencyP50.Round(time.Millisecond), half.LatencyP99.Round(time.Millisecond))
	return res, nil
}

// runStep sends cfg.stepTime of traffic at rate frames/s through a fresh
// cluster and measures it.
func runStep(ctx context.Context, cfg config, base faults.DSN, rate float64) (step, error) {
	st := step{TargetRate: rate}
	// A request makes about 2.1 frames (its answer, notifications, copies).
	requests := max(200, int(rate*cfg.stepTime.Seconds()/2.1))
	lat := newLatencies()
	run, err := faults.NewRun(faults.Traffic{
		Requests: requests, Seed: 3, Rate: rate, Span: 24 * time.Hour, Window: 128,
		Progress: os.Stderr, Acked: lat.acked,
	})
	if err != nil {
		return st, err
	}
	dir, err := os.MkdirTemp("", "hinscore-e2ebench-")
	if err != nil {
		return st, err
	}
	defer os.RemoveAll(dir)
	dsn := base.WithDatabase(fmt.Sprintf("hinscore_e2ebench_%04x", rand.Uint32()&0xffff))
	defer func() { _ = faults.DropDatabase(context.WithoutCancel(ctx), dsn) }()
	c, err := faults.StartCluster(ctx, faults.Options{Bin: cfg.bin, Dir: dir, DSN: dsn.String(), Networks: run.Plan.Networks()})
	if err != nil {
		return st, err
	}
	defer func() { _ = c.Stop(context.WithoutCancel(ctx)) }()

	pctx, stopPoll := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { lat.poll(pctx, dsn) })
	backlog, err := faults.WatchBacklog(ctx, c.NATSURL(), 250*time.Millisecond)
	if err != nil {
		stopPoll()
		wg.Wait()
		return st, err
	}
	cpu0 := cpuTimes(c, cfg.clickhousePID)
	began := time.Now()
	stats, err := run.Drive(ctx, c.MLLPAddrs(), nil)
	if err != nil {
		stopPoll()
		wg.Wait()
		backlog.Stop()
		return st, err
	}
	sendEnd := time.Now()
	st.SentRate = float64(stats.Sent) / stats.Duration.Seconds()
	st.Events = run.Plan.ValidMessages()
	want := uint64(st.Events)
	var storedAt time.Time
	for storedAt.IsZero() {
		ev, _, err := faults.Counts(ctx, dsn)
		if err == nil && ev >= want {
			storedAt = time.Now()
			break
		}
		if time.Since(sendEnd) > 3*time.Minute {
			stopPoll()
			wg.Wait()
			backlog.Stop()
			return st, fmt.Errorf("only %d of %d events stored 3 minutes after the sending", ev, want)
		}
		time.Sleep(pollEvery)
	}
	cpu1 := cpuTimes(c, cfg.clickhousePID)
	peaks, _ := backlog.Stop()
	// Let the last sampled outcomes arrive (unanswered tails do not matter).
	time.Sleep(2 * time.Second)
	stopPoll()
	wg.Wait()
	st.StoreLag = storedAt.Sub(sendEnd)
	st.EventsPerSec = float64(st.Events) / storedAt.Sub(began).Seconds()
	st.Behind = st.SentRate < 0.9*rate || st.StoreLag > cfg.maxLag
	st.CPUPerEvent, st.CPUBusy = cpuShares(cpu0, cpu1, st.Events, storedAt.Sub(began))
	st.BacklogPeak = peaks
	st.HeldBackBy = heldBackBy(st, rate)
	st.LatencyP50, st.LatencyP99, st.Samples = lat.quantiles()
	st.PeakRSS = c.PeakRSS()
	return st, nil
}

// latencies records when sampled answers were acknowledged by the ingest
// and when their outcome row (response_id = the answer's MSH-10) first
// appeared in exchange_outcomes.
type latencies struct {
	mu      sync.Mutex
	acked   func(string, simulator.Message, bool, time.Time)
	pending map[string]time.Time // network/id → ack time
	got     []time.Duration
}

// sampleEvery keeps the polled id list short: one answer in sampleEvery.
const sampleEvery = 20

func newLatencies() *latencies {
	l := &latencies{pending: map[string]time.Time{}}
	n := 0
	l.acked = func(network string, m simulator.Message, accepted bool, at time.Time) {
		if m.Kind != simulator.KindAnswer || m.Duplicate || !accepted {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if n++; n%sampleEvery == 0 {
			l.pending[network+"/"+m.ControlID] = at
		}
	}
	return l
}

func (l *latencies) poll(ctx context.Context, dsn faults.DSN) {
	conn, err := faults.Connect(ctx, dsn, "default")
	if err != nil {
		return
	}
	defer conn.Close()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		var ids []string
		for k := range l.pending {
			_, id, _ := strings.Cut(k, "/")
			ids = append(ids, "'"+strings.ReplaceAll(id, "'", "")+"'")
		}
		l.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		rows, err := conn.Query(ctx, "SELECT network, response_id FROM "+dsn.Database+".exchange_outcomes WHERE response_id IN ("+strings.Join(ids, ",")+")")
		if err != nil {
			continue // the table may not exist yet
		}
		now := time.Now()
		l.mu.Lock()
		for rows.Next() {
			var network, id string
			if rows.Scan(&network, &id) != nil {
				continue
			}
			if at, ok := l.pending[network+"/"+id]; ok {
				l.got = append(l.got, now.Sub(at))
				delete(l.pending, network+"/"+id)
			}
		}
		l.mu.Unlock()
		rows.Close()
	}
}

func (l *latencies) quantiles() (p50, p99 time.Duration, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.got) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(l.got)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return q(0.5), q(0.99), len(s)
}

// self is this process (the simulator and the latency poller) in the CPU
// figures.
const self = "e2ebench (simulator)"

// cpuTimes reads the CPU used so far by each service, ClickHouse (when its
// PID is known) and this process.
func cpuTimes(c *faults.Cluster, clickhousePID int) map[string]time.Duration {
	out := c.CPUTimes()
	if clickhousePID > 0 {
		if d, err := faults.ProcessCPU(clickhousePID); err == nil {
			out["clickhouse"] = d
		}
	}
	if d, err := faults.ProcessCPU(os.Getpid()); err == nil {
		out[self] = d
	}
	return out
}

// cpuShares turns two readings into microseconds per event per process,
// and the share of the machine's cores all of them kept busy.
func cpuShares(before, after map[string]time.Duration, events int, wall time.Duration) (map[string]float64, float64) {
	per := map[string]float64{}
	var total time.Duration
	for name, t1 := range after {
		t0, ok := before[name]
		if !ok || t1 < t0 || events == 0 {
			continue // restarted or not running at the start
		}
		per[name] = float64((t1 - t0).Microseconds()) / float64(events)
		total += t1 - t0
	}
	busy := 0.0
	if wall > 0 {
		busy = total.Seconds() / (wall.Seconds() * float64(runtime.NumCPU()))
	}
	return per, busy
}

// heldBackBy says what limited a step that fell behind: the stage with the
// largest backlog when that backlog reached a second of the step's
// traffic, else the sending (ACKs not back at the target rate), else the
// storing lag without any stage backlog (ClickHouse's inserts).
func heldBackBy(st step, rate float64) string {
	if !st.Behind {
		return ""
	}
	var worst string
	var most uint64
	for _, stage := range slices.Sorted(maps.Keys(st.BacklogPeak)) {
		if n := st.BacklogPeak[stage]; n > most {
			worst, most = stage, n
		}
	}
	switch {
	case float64(most) >= rate:
		return fmt.Sprintf("%s (backlog up to %d messages)", worst, most)
	case st.SentRate < 0.9*rate:
		return fmt.Sprintf("sending: the ingest's ACKs came back at %.0f of %.0f frames/s, no consuming stage fell behind (largest backlog %s %d)", st.SentRate, rate, worst, most)
	default:
		return fmt.Sprintf("storing: events reached ClickHouse %s after the sending ended, no stage backlog reached a second of traffic", st.StoreLag.Round(time.Millisecond))
	}
}

// formatMap prints a map's entries sorted by key.
func formatMap[V any](m map[string]V, verb string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+fmt.Sprintf(verb, m[k]))
	}
	return strings.Join(parts, " ")
}
