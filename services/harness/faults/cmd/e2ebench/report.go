package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one measured number, its unit, and what it is compared to.
type figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Limit *limit  `json:"limit"`
	// Ratio is Value / Limit.Value when both are rates of the same kind.
	Ratio *float64 `json:"ratio,omitempty"`
}

type limit struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

type report struct {
	Date    string   `json:"date"`
	Machine machine  `json:"machine"`
	Figures []figure `json:"figures"`
	Steps   []step   `json:"e2e_steps"`
	// HeldBackBy is what limited the first step that fell behind.
	HeldBackBy string `json:"e2e_held_back_by,omitempty"`
}

type machine struct {
	CPUs   int    `json:"cpus"`
	Model  string `json:"cpu_model"`
	OS     string `json:"os"`
	Kernel string `json:"kernel"`
}

// Names of the limits scripts/bench.sh measures first.
const (
	limitPublish = "BenchmarkLimitJetStreamPublishAsync"
	// The answer-to-row latency goal (issue 10): p99 under 2 s at half the
	// sustained load.
	latencyGoal = 2.0
	// The throughput goal: half the raw publish rate.
	throughputGoal = 0.5
)

// benchLine is one `go test -bench` result line, with its metrics.
type benchLine struct {
	name    string
	metrics []limit // value and unit
}

// parseBench reads Benchmark lines ("BenchmarkX-2  N  v unit  v unit ...").
func parseBench(r io.Reader) []benchLine {
	var out []benchLine
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		bl := benchLine{name: name}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			bl.metrics = append(bl.metrics, limit{Name: name, Value: v, Unit: f[i+1]})
		}
		out = append(out, bl)
	}
	return out
}

// limitUnit reports whether a metric is a limit or goal a benchmark prints
// next to its figure.
func limitUnit(u string) bool {
	u = strings.ToLower(u)
	return strings.Contains(u, "limit") || strings.Contains(u, "goal") || strings.Contains(u, "target")
}

func buildReport(benchTxt string, e2e e2eResult) (report, error) {
	rep := report{Date: time.Now().UTC().Format(time.RFC3339), Machine: thisMachine(), Steps: e2e.Steps}
	var lines []benchLine
	if f, err := os.Open(benchTxt); err == nil {
		lines = parseBench(f)
		f.Close()
	} else if !os.IsNotExist(err) {
		return rep, fmt.Errorf("e2ebench: %w", err)
	}
	var publish *limit
	for _, bl := range lines {
		var lim *limit
		for _, m := range bl.metrics {
			if limitUnit(m.Unit) {
				lim = &limit{Name: bl.name + " " + m.Unit, Value: m.Value, Unit: m.Unit}
			}
		}
		for _, m := range bl.metrics {
			if limitUnit(m.Unit) || m.Unit == "ns/op" || m.Unit == "B/op" || m.Unit == "allocs/op" {
				continue
			}
			fig := figure{Name: bl.name, Value: m.Value, Unit: m.Unit, Limit: lim}
			if strings.HasPrefix(bl.name, "BenchmarkLimit") {
				fig.Limit = nil // a limit itself
				if bl.name == limitPublish && publish == nil {
					publish = &limit{Name: bl.name, Value: m.Value, Unit: m.Unit}
				}
			}
			rep.Figures = append(rep.Figures, fig)
		}
	}
	ratio := func(v float64, l *limit) *float64 {
		if l == nil || l.Value == 0 {
			return nil
		}
		r := v / l.Value
		return &r
	}
	s := e2e.Sustained
	rep.Figures = append(rep.Figures,
		figure{Name: "E2ESustainedEvents", Value: s.EventsPerSec, Unit: "events/s", Limit: publish, Ratio: ratio(s.EventsPerSec, publish)},
		figure{Name: "E2ESustainedFrames", Value: s.SentRate, Unit: "frames/s", Limit: publish, Ratio: ratio(s.SentRate, publish)},
	)
	if r := ratio(s.EventsPerSec, publish); r != nil {
		rep.Figures = append(rep.Figures, figure{Name: "E2ERatioToPublish", Value: *r, Unit: "ratio",
			Limit: &limit{Name: "goal: half the raw JetStream publish rate", Value: throughputGoal, Unit: "ratio"}})
	}
	goal := &limit{Name: "goal: p99 under 2 s at half the sustained load", Value: latencyGoal, Unit: "s"}
	h := e2e.HalfLoad
	rep.Figures = append(rep.Figures,
		figure{Name: fmt.Sprintf("E2EAnswerToRowP50@%.0fframes/s", h.TargetRate), Value: h.LatencyP50.Seconds(), Unit: "s", Limit: goal},
		figure{Name: fmt.Sprintf("E2EAnswerToRowP99@%.0fframes/s", h.TargetRate), Value: h.LatencyP99.Seconds(), Unit: "s", Limit: goal},
	)
	// The CPU figures come from the step that kept the cores busiest: at a
	// low rate the processes' fixed costs (timers, polls) are spread over
	// few events and overstate the cost of one.
	busiest := s
	for _, st := range e2e.Steps {
		if st.CPUBusy > busiest.CPUBusy {
			busiest = st
		}
	}
	for _, name := range slices.Sorted(maps.Keys(busiest.CPUPerEvent)) {
		rep.Figures = append(rep.Figures, figure{Name: fmt.Sprintf("E2ECPUPerEvent@%.0fframes/s/%s", busiest.TargetRate, name), Value: busiest.CPUPerEvent[name], Unit: "µs/event"})
	}
	rep.Figures = append(rep.Figures, figure{Name: fmt.Sprintf("E2ECoresBusy@%.0fframes/s", busiest.TargetRate), Value: busiest.CPUBusy, Unit: "ratio",
		Limit: &limit{Name: "all cores busy", Value: 1, Unit: "ratio"}})
	// What the measured CPU per event allows at most: the machine's cores
	// spent on nothing else. Compared with the throughput goal, it says
	// whether the goal is reachable on this machine at all.
	var perEvent float64
	for _, us := range busiest.CPUPerEvent {
		perEvent += us
	}
	if perEvent > 0 && publish != nil {
		bound := float64(runtime.NumCPU()) * 1e6 / perEvent
		rep.Figures = append(rep.Figures, figure{Name: fmt.Sprintf("E2ECPUBoundEvents@%.0fframes/s", busiest.TargetRate), Value: bound, Unit: "events/s",
			Limit: &limit{Name: "goal: half the raw JetStream publish rate", Value: throughputGoal * publish.Value, Unit: "events/s"}})
	}
	if b := e2e.Behind; b.TargetRate > 0 {
		// A stage is the pipeline's limit when its backlog grows past a
		// second of the traffic it is offered.
		second := &limit{Name: "a second of the step's traffic", Value: b.TargetRate, Unit: "messages"}
		for _, stage := range slices.Sorted(maps.Keys(b.BacklogPeak)) {
			rep.Figures = append(rep.Figures, figure{Name: fmt.Sprintf("E2EBacklogPeak@%.0fframes/s/%s", b.TargetRate, stage),
				Value: float64(b.BacklogPeak[stage]), Unit: "messages", Limit: second})
		}
		rep.HeldBackBy = fmt.Sprintf("at %.0f frames/s: %s", b.TargetRate, b.HeldBackBy)
	}
	for _, name := range slices.Sorted(maps.Keys(e2e.PeakRSS)) {
		rep.Figures = append(rep.Figures, figure{Name: "E2EPeakRSS/" + name, Value: float64(e2e.PeakRSS[name]) / (1 << 20), Unit: "MiB"})
	}
	return rep, nil
}

func (r report) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("e2ebench: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("e2ebench: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("e2ebench: %w", err)
	}
	return nil
}

func (r report) table(w io.Writer) {
	fmt.Fprintf(w, "\nhinscore benchmarks, %s, %d CPUs (%s)\n", r.Date, r.Machine.CPUs, r.Machine.Model)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\tunit\tcompared to\tlimit\tratio\t")
	for _, f := range r.Figures {
		lim, lv, ratio := "-", "", ""
		if f.Limit != nil {
			lim, lv = f.Limit.Name, fmt.Sprintf("%.4g %s", f.Limit.Value, f.Limit.Unit)
			if f.Ratio != nil {
				ratio = fmt.Sprintf("%.2f", *f.Ratio)
			} else if f.Limit.Unit == f.Unit && f.Limit.Value != 0 {
				ratio = fmt.Sprintf("%.2f", f.Value/f.Limit.Value)
			}
		}
		fmt.Fprintf(tw, "%s\t%.4g\t%s\t%s\t%s\t%s\t\n", f.Name, f.Value, f.Unit, lim, lv, ratio)
	}
	_ = tw.Flush()
	if r.HeldBackBy != "" {
		fmt.Fprintf(w, "end to end, held back %s\n", r.HeldBackBy)
	}
}

func thisMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.Model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
