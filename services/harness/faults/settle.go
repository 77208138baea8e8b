package faults

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LinkerMarks is what the linkers' metrics say about how far they are,
// summed over every replica observed.
type LinkerMarks struct {
	owned     int     // owned_partitions
	caughtUp  int     // partitions whose caught_up is 1
	pending   float64 // pending_chains over every partition
	published float64 // outcomes_total over every series
}

// Observe folds one sample of a linker's metrics in (others are ignored).
func (m *LinkerMarks) Observe(name string, v float64) {
	switch name {
	case "hinscore_linker_owned_partitions":
		m.owned += int(v)
	case "hinscore_linker_caught_up":
		if v == 1 {
			m.caughtUp++
		}
	case "hinscore_linker_pending_chains":
		m.pending += v
	case "hinscore_linker_outcomes_total":
		m.published += v
	}
}

// Done says every partition the linkers own has read EVENTS to the end
// and decided every chain: its watermark, moved by the idle rule once the
// traffic stopped, has passed every deadline.
func (m LinkerMarks) Done() bool { return m.owned > 0 && m.caughtUp == m.owned && m.pending == 0 }

func (m LinkerMarks) String() string {
	return fmt.Sprintf("linker: %d of %d partitions caught up, %g chains pending, %g outcomes published", m.caughtUp, m.owned, m.pending, m.published)
}

// MarksSource reads the linkers' marks.
type MarksSource func(ctx context.Context) (LinkerMarks, error)

// ScrapeLinker reads the marks from a linker's admin endpoint (its
// process's /metrics).
func ScrapeLinker(adminAddr string) MarksSource {
	return func(ctx context.Context) (LinkerMarks, error) { return readLinkerMarks(ctx, adminAddr) }
}

// readLinkerMarks scrapes the linker's admin endpoint.
func readLinkerMarks(ctx context.Context, adminAddr string) (LinkerMarks, error) {
	var m LinkerMarks
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/metrics", nil)
	if err != nil {
		return m, err
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return m, fmt.Errorf("faults: linker metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("faults: linker metrics: %s", resp.Status)
	}
	err = eachSample(resp.Body, m.Observe)
	return m, err
}

// eachSample calls f with the name and value of every sample of a
// Prometheus text exposition.
func eachSample(r io.Reader, f func(name string, v float64)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// name{labels} value [timestamp], or name value [timestamp]
		name, rest := line, ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			name, rest = line[:i], line[strings.LastIndexByte(line, '}')+1:]
		} else if i := strings.IndexByte(line, ' '); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return fmt.Errorf("faults: metrics line %q has no value", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return fmt.Errorf("faults: metrics line %q: %w", line, err)
		}
		f(name, v)
	}
	return sc.Err()
}

// writerLag is the writer's consumers' backlog on EVENTS and OUTCOMES as
// the NATS server counts it (undelivered plus delivered and not yet
// acknowledged, that is not yet in ClickHouse: the writer acks after the
// INSERT), and the streams' last sequences.
func writerLag(ctx context.Context, js jetstream.JetStream) (lag uint64, last map[string]uint64, err error) {
	last = map[string]uint64{}
	for _, name := range backlogStreams {
		st, err := js.Stream(ctx, name)
		if err != nil {
			return 0, nil, fmt.Errorf("faults: stream %s: %w", name, err)
		}
		last[name] = st.CachedInfo().State.LastSeq
		l := st.ListConsumers(ctx)
		seen := false
		for info := range l.Info() {
			if stageOf(name, info.Name) == name+"/"+Writer {
				seen = true
				lag += info.NumPending + uint64(info.NumAckPending)
			}
		}
		if l.Err() != nil {
			return 0, nil, fmt.Errorf("faults: consumers of %s: %w", name, l.Err())
		}
		if !seen {
			return 0, nil, fmt.Errorf("faults: %s has no consumer of the writer", name)
		}
	}
	return lag, last, nil
}

// WaitSettled waits until the pipeline is done with the run, judged by its
// own marks rather than by a pause: ClickHouse holds at least the run's
// events and outcomes, and PipelineSettled. Then it reads the snapshot,
// which nothing will change.
func (c *Cluster) WaitSettled(ctx context.Context, d DSN, r *Run, timeout time.Duration) (Snapshot, error) {
	js, done, err := connectJS(c.NATSURL())
	if err != nil {
		return Snapshot{}, fmt.Errorf("faults.WaitSettled: %w", err)
	}
	defer done()
	wantEvents, wantOutcomes := uint64(r.Events()), uint64(r.Outcomes())
	var state string
	err = waitFor(ctx, timeout, "the pipeline settled", func() bool {
		events, outcomes, err := Counts(ctx, d)
		if err != nil {
			state = err.Error()
			return false
		}
		state = fmt.Sprintf("%d of %d events, %d of %d outcomes stored", events, wantEvents, outcomes, wantOutcomes)
		if events < wantEvents || outcomes < wantOutcomes {
			return false
		}
		ok, marks := PipelineSettled(ctx, ScrapeLinker(c.admin[Linker]), js)
		state += "; " + marks
		return ok
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("%w: %s", err, state)
	}
	return ReadSnapshot(ctx, d)
}

func connectJS(url string) (jetstream.JetStream, func(), error) {
	nc, err := nats.Connect(url, nats.Name("faults-settle"))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}

// PipelineSettled is one look at the marks by which the pipeline says it
// has nothing left to do: the linkers (marks) own their partitions, each caught up with EVENTS and with no chain pending
// (the idle rule has moved every network's watermark past every
// deadline); the NATS server counts nothing undelivered or unacknowledged
// for the writer's consumers of EVENTS and OUTCOMES (the writer acks after
// the INSERT; its own consumer_pending gauge is only as fresh as its last
// delivery); and the linker's outcomes_total and the streams' last
// sequences did not move while the writer was looked at (an outcome still
// being published would move them). state says where the pipeline stands.
func PipelineSettled(ctx context.Context, marks MarksSource, js jetstream.JetStream) (ok bool, state string) {
	before, err := marks(ctx)
	if err != nil || !before.Done() {
		return false, fmt.Sprintf("%s %v", before, err)
	}
	lag, last, err := writerLag(ctx, js)
	if err != nil || lag > 0 {
		return false, fmt.Sprintf("%s; writer lag %d %v", before, lag, err)
	}
	after, err := marks(ctx)
	if err != nil || !after.Done() || after.published != before.published {
		return false, fmt.Sprintf("%s, then %s %v", before, after, err)
	}
	_, again, err := writerLag(ctx, js)
	if err != nil || again["EVENTS"] != last["EVENTS"] || again["OUTCOMES"] != last["OUTCOMES"] {
		return false, fmt.Sprintf("streams moved: %v then %v %v", last, again, err)
	}
	return true, fmt.Sprintf("%s; writer lag 0", after)
}

// WaitPipelineSettled waits until PipelineSettled holds: for tests that
// run the services in their own process (hinscore's pipeline: ScrapeLinker
// of its admin address; harness/cluster: its linkers' registries). Call it
// once the expected rows are stored; after it, an exact comparison sees
// everything the pipeline will store.
func WaitPipelineSettled(ctx context.Context, marks MarksSource, js jetstream.JetStream, timeout time.Duration) error {
	var state string
	err := waitFor(ctx, timeout, "the pipeline settled", func() bool {
		var ok bool
		ok, state = PipelineSettled(ctx, marks, js)
		return ok
	})
	if err != nil {
		return fmt.Errorf("%w: %s", err, state)
	}
	return nil
}
