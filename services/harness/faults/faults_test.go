package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/domain/testenv"
)

// envClickHouse names the short suite's ClickHouse server.
const envClickHouse = "HINSCORE_TEST_CLICKHOUSE_DSN"

// The suite runs in two sizes. The short one (default, part of `make
// test`) drives 1500 requests per scenario and combines the kills into one
// run; the full one (HINSCORE_FAULTS=full, `make faults`) drives 4000 per
// scenario, kills each service in its own run, and adds a 60 s ClickHouse
// outage on a private server.
type suite struct {
	repo    string
	bin     string
	dsn     DSN
	ch      *ClickHouseServer // the private server of the full suite
	full    bool
	traffic Traffic
	// fhirPairs is the FHIR load of every scenario (Task pairs of
	// fhirNetwork), beside the plan's HL7.
	fhirPairs int
	// start is the plans' first request time, fixed for the suite.
	start time.Time
	// baseline is every outcome row of the run without faults.
	baseline map[string]OutcomeRow
}

func newSuite(t *testing.T) *suite {
	t.Helper()
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{repo: repo, full: os.Getenv("HINSCORE_FAULTS") == "full"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	s.bin = os.Getenv("HINSCORE_FAULTS_BIN")
	if s.bin == "" || !HaveBinaries(s.bin) {
		s.bin = t.TempDir()
		t.Logf("building the services into %s", s.bin)
		if err := BuildBinaries(ctx, repo, s.bin); err != nil {
			t.Fatal(err)
		}
	}
	if s.full {
		// A server of our own: the outage scenario stops it.
		s.ch, err = StartClickHouse(ctx, repo, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.ch.Stop(context.Background()); err != nil {
				t.Errorf("stop the private ClickHouse: %v", err)
			}
		})
		s.dsn = s.ch.DSN()
		s.traffic = Traffic{Requests: 4000, Seed: 11, Rate: 900, XCAJourneys: 500}
		s.fhirPairs = 60
	} else {
		env := testenv.Getenv(t, envClickHouse, "the short fault suite needs a ClickHouse server: scripts/clickhouse.sh start")
		if s.dsn, err = ParseDSN(env); err != nil {
			t.Fatal(err)
		}
		s.traffic = Traffic{Requests: 1500, Seed: 11, Rate: 600, XCAJourneys: 200}
		s.fhirPairs = 20
	}
	s.traffic.Start = DefaultStart(time.Now())
	if testing.Verbose() {
		s.traffic.Progress = os.Stderr
	}
	return s
}

// fhirNetwork carries the FHIR load: a network of its own, because its
// event times are the wall clock's while the plan's are compressed
// yesterday's, and the linker keeps one watermark per network.
const fhirNetwork = "faults-fhir"

// spec is one scenario: env added to every service's, the fault
// injected while the traffic flows, a check run on the cluster before it
// stops, and whether the writer reaches ClickHouse through a Gate.
type spec struct {
	env []string
	// serviceEnv is added to one service's environment.
	serviceEnv map[string][]string
	fault      func(c *Cluster) Fault
	check      func(ctx context.Context, c *Cluster, r *Run)
	gate       bool
}

// scenario runs the suite's traffic through a fresh cluster with the
// fault injected, waits until the pipeline has settled by its own marks,
// and checks from ClickHouse that events in = events stored, every class
// count equals the truth and every outcome row equals the no-fault run's.
func (s *suite) scenario(t *testing.T, sp spec) Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	run, err := NewRun(s.traffic)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	dsn := s.dsn.WithDatabase(fmt.Sprintf("hinscore_%s_%04x", name, rand.Uint32()&0xffff))
	t.Cleanup(func() { _ = DropDatabase(context.Background(), dsn) })
	atna, soap := XCANetworks(run.XCA)
	c, err := StartCluster(ctx, Options{Bin: s.bin, Dir: t.TempDir(), DSN: dsn.String(),
		Networks: run.Plan.Networks(), FHIRNetworks: append([]string{fhirNetwork}, soap...), ATNANetworks: atna,
		Env: sp.env, ServiceEnv: sp.serviceEnv, ClickHouseGate: sp.gate})
	if err != nil {
		t.Fatal(err)
	}
	run.FHIR = FHIRLoad{URL: c.FHIRURL(), Network: fhirNetwork, Pairs: s.fhirPairs, Start: run.Plan.Start(), Span: run.Span()}
	if run.XCATargets, err = c.XCATargets(run.XCA); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() {
			for _, svc := range Services() {
				t.Logf("%s log:\n%s", svc, c.Logs(svc))
			}
		}
	}()
	var f Fault
	if sp.fault != nil {
		f = sp.fault(c)
	}
	began := time.Now()
	st, err := run.Drive(ctx, c.MLLPAddrs(), f)
	if err != nil {
		t.Fatalf("%v (%s)", err, st)
	}
	snap, err := c.WaitSettled(ctx, dsn, run, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s; FHIR: %d Task pairs, %d posts retried; cross-community: %d transactions, %s; settled with %d events and %d outcomes stored %s after the start; restarts %v",
		st, run.FHIR.Pairs, run.FHIRRetried(), run.XCATransactions(), run.XCAStats(), snap.Events, snap.Outcomes, time.Since(began).Round(time.Millisecond), c.Restarts())
	for _, d := range snap.CheckTruth(run) {
		t.Error(d)
	}
	if s.baseline != nil {
		diffs := DiffRows(s.baseline, snap.Rows)
		for _, d := range diffs {
			t.Error(d)
		}
		t.Logf("%d outcome rows compared with the no-fault run's %d, every column but %v: %d differences", len(snap.Rows), len(s.baseline), NotCompared, len(diffs))
	}
	if sp.check != nil {
		sp.check(ctx, c, run)
	}
	// The settled marks promised that nothing more would come.
	if events, outcomes, err := Counts(ctx, dsn); err != nil {
		t.Error(err)
	} else if events != snap.Events || outcomes != snap.Outcomes {
		t.Errorf("rows stored after the pipeline settled: %d events and %d outcomes, then %d and %d", snap.Events, snap.Outcomes, events, outcomes)
	}
	return snap
}

// killInTurn kills each service with SIGKILL at evenly spaced points of the
// traffic and starts it again at once; fhir-ingest once a post of the FHIR
// load has found it down. Before atna-ingest is killed, EVENTS'
// de-duplication window (Nats-Msg-Id) shrinks to dedupWindow, and
// atna-ingest starts again with HINSCORE_STREAMS=check so that it leaves
// the window as it is: every record a gateway writes again from its replay
// window reaches EVENTS a second time, and only the linker's duplicate
// rule (an event id already in its chain) and the writer's views (by event
// and outcome id) keep the counts and rows exact, as they must for a
// replay later than JetStream's window (an outage of minutes). Just before
// each kill it counts the events and outcomes ClickHouse holds (and the
// audit networks' events), so that the check can tell the kill landed
// mid-run.
type killInTurn struct {
	names []string
	// shares, when set, are the points (shares of the plan's frames
	// acknowledged; for atna-ingest, of the cross-community messages
	// delivered too) of the kills; else they are evenly spaced.
	shares []float64
	// stored[i] is what ClickHouse held when names[i] was killed.
	stored []storedAt
}

// storedAt is what ClickHouse held at a kill: events, outcomes, and the
// events of the audit networks (atna-ingest's).
type storedAt struct{ events, outcomes, audits uint64 }

// dedupWindow is EVENTS' de-duplication window once atna-ingest is killed,
// the least NATS allows: shorter than atna-ingest takes to start again, so
// every record written again after the kill is past it.
const dedupWindow = 100 * time.Millisecond

func (k *killInTurn) fault(c *Cluster) Fault {
	return func(ctx context.Context, r *Run) error {
		dsn, err := ParseDSN(c.opts.DSN)
		if err != nil {
			return err
		}
		for i, name := range k.names {
			share := float64(i+1) / float64(len(k.names)+1)
			if k.shares != nil {
				share = k.shares[i]
			}
			if err := r.AfterShare(ctx, share); err != nil {
				return err
			}
			// The feeds never run ahead of the plan, but may lag behind it.
			if name == ATNA {
				if err := r.AfterXCAShare(ctx, share); err != nil {
					return err
				}
			}
			var at storedAt
			if at.events, at.outcomes, err = Counts(ctx, dsn); err != nil {
				return err
			}
			atna, _ := XCANetworks(r.XCA)
			if at.audits, err = CountEvents(ctx, dsn, atna); err != nil {
				return err
			}
			k.stored = append(k.stored, at)
			if name == ATNA {
				if err := SetDuplicateWindow(ctx, c.NATSURL(), "EVENTS", dedupWindow); err != nil {
					return err
				}
			}
			if name != FHIR {
				if err := c.Restart(ctx, name, true); err != nil {
					return err
				}
				continue
			}
			// Down until a FHIR post has found it gone (a restart is
			// quicker than the gap between two posts).
			c.Kill(FHIR)
			before := r.FHIRRetried()
			if err := waitFor(ctx, 10*time.Second, "a FHIR post retried while fhir-ingest is down", func() bool { return r.FHIRRetried() > before }); err != nil {
				return err
			}
			if err := c.Start(ctx, FHIR); err != nil {
				return err
			}
		}
		return nil
	}
}

// check fails the test unless every kill landed while the run was still
// being stored: fewer events in ClickHouse than the run's total (and, for
// atna-ingest, fewer of the audit feeds' events than theirs, and records
// written again past EVENTS' de-duplication window).
func (k *killInTurn) check(ctx context.Context, t *testing.T, c *Cluster, r *Run) {
	if len(k.stored) != len(k.names) {
		t.Fatalf("%d kills made, %d planned", len(k.stored), len(k.names))
	}
	atna, _ := XCANetworks(r.XCA)
	audits := uint64(XCAEvents(r.XCA, atna...))
	for i, name := range k.names {
		at := k.stored[i]
		t.Logf("%s killed with %d of %d events (%d of %d of the audit feeds) and %d of %d outcomes stored",
			name, at.events, r.Events(), at.audits, audits, at.outcomes, r.Outcomes())
		if at.events >= uint64(r.Events()) {
			t.Errorf("%s was killed after the run was stored (%d of %d events): not mid-run", name, at.events, r.Events())
		}
		if name == ATNA && at.audits >= audits {
			t.Errorf("%s was killed after the audit feeds were stored (%d of %d events): not mid-run", name, at.audits, audits)
		}
	}
	if slices.Contains(k.names, ATNA) {
		msgs, err := StreamMessages(ctx, c.NATSURL(), "EVENTS")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("EVENTS holds %d messages for %d distinct events; %d audit records written again", msgs, r.Events(), r.XCAStats().Resent)
		if msgs <= uint64(r.Events()) || r.XCAStats().Resent == 0 {
			t.Errorf("no record went past EVENTS' de-duplication window (%d messages, %d events, %d records written again): the linker's and the writer's de-duplication were not tested",
				msgs, r.Events(), r.XCAStats().Resent)
		}
	}
}

// kill runs one killInTurn scenario.
func (s *suite) kill(names ...string) func(t *testing.T) {
	return func(t *testing.T) {
		k := &killInTurn{names: names}
		s.scenario(t, spec{fault: k.fault, serviceEnv: map[string][]string{ATNA: {"HINSCORE_STREAMS=check"}},
			check: func(ctx context.Context, c *Cluster, r *Run) { k.check(ctx, t, c, r) }})
	}
}

func TestFaults(t *testing.T) {
	s := newSuite(t)
	t.Run("no-fault", func(t *testing.T) {
		s.baseline = s.scenario(t, spec{}).Rows
	})
	if s.baseline == nil || t.Failed() {
		t.Fatal("the run without faults failed; the fault scenarios compare with it")
	}
	if s.full {
		for _, svc := range []string{Ingest, FHIR, ATNA, Linker, Writer} {
			t.Run("kill-"+svc, s.kill(svc))
		}
	} else {
		t.Run("kill-each-in-turn", s.kill(Ingest, FHIR, ATNA, Linker, Writer))
	}
	t.Run("nats-restart", func(t *testing.T) { s.scenario(t, spec{fault: restartNATS}) })
	if s.full {
		t.Run("clickhouse-outage", func(t *testing.T) { s.scenario(t, spec{fault: s.clickhouseOutage}) })
	} else {
		t.Run("clickhouse-outage", func(t *testing.T) { s.scenario(t, spec{fault: gateOutage, gate: true}) })
	}
	t.Run("malformed-flood", s.malformedFlood)
	t.Run("idle-connections", s.idleConnections)
}

// shortOutage is how long the short suite keeps ClickHouse from the
// writer: longer than the writer's retry backoff (HINSCORE_CHWRITER_RETRY_MAX
// 2 s) and its ack wait (5 s), so that inserts fail, are retried and
// batches come back, and longer than the traffic itself.
const shortOutage = 10 * time.Second

// gateOutage closes the writer's gate to ClickHouse at 30% of the traffic
// for shortOutage: every connection cut, new ones refused.
func gateOutage(c *Cluster) Fault {
	return func(ctx context.Context, r *Run) error {
		if err := r.AfterShare(ctx, 0.3); err != nil {
			return err
		}
		return c.ClickHouseGate().Outage(ctx, shortOutage)
	}
}

// restartNATS restarts the NATS server at 40% of the traffic.
func restartNATS(c *Cluster) Fault {
	return func(ctx context.Context, r *Run) error {
		if err := r.AfterShare(ctx, 0.4); err != nil {
			return err
		}
		return c.Restart(ctx, NATS, false)
	}
}

// clickhouseOutage stops the suite's private ClickHouse at 30% of the
// traffic for 60 s.
func (s *suite) clickhouseOutage(c *Cluster) Fault {
	return func(ctx context.Context, r *Run) error {
		if err := r.AfterShare(ctx, 0.3); err != nil {
			return err
		}
		if err := s.ch.Stop(ctx); err != nil {
			return err
		}
		select {
		case <-time.After(60 * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		return s.ch.Restart(ctx)
	}
}

// hostile are the malformed flood's attacks on the ingests' limits and
// what they met: one batch frame of 1 MiB of one-segment messages, one
// host opening hostConns connections to one listener, connections that
// trickle a CR and never a frame, one NDJSON body of badLines bad lines.
type hostile struct {
	batchReply   []byte
	hostClosed   int
	trickled     time.Duration
	ndjsonStatus int
	ndjsonReply  string
}

const (
	hostConns = 100
	// perRemote is HINSCORE_MLLP_MAX_CONNS_PER_REMOTE's default.
	perRemote   = 32
	trickleIdle = 5 * time.Second
	badLines    = 5000
)

// attack runs the hostile attacks beside the flood.
func (h *hostile) attack(ctx context.Context, c *Cluster, r *Run) error {
	nets := r.Plan.Networks()
	var wg sync.WaitGroup
	var errs [4]error
	wg.Go(func() { h.batchReply, errs[0] = BatchFlood(ctx, c.MLLPAddrs()[nets[0]], 1<<20) })
	wg.Go(func() {
		h.hostClosed, errs[1] = HostFlood(ctx, c.MLLPAddrs()[nets[1%len(nets)]], hostConns, 3*time.Second)
	})
	wg.Go(func() { h.trickled, errs[2] = Trickle(ctx, c.MLLPAddrs()[nets[2%len(nets)]], 10, 4*trickleIdle) })
	wg.Go(func() {
		h.ndjsonStatus, h.ndjsonReply, errs[3] = NDJSONBadLines(ctx, c.FHIRURL(), fhirNetwork, badLines)
	})
	wg.Wait()
	return errors.Join(errs[:]...)
}

// check reports what the limits let through.
func (h *hostile) check(t *testing.T) {
	if !strings.Contains(string(h.batchReply), "MSA|AR") || !strings.Contains(string(h.batchReply), "HINSCORE_MLLP_MAX_BATCH") {
		t.Errorf("batch flood: reply %.300q, want one AR naming HINSCORE_MLLP_MAX_BATCH", h.batchReply)
	}
	if h.hostClosed < hostConns-perRemote {
		t.Errorf("%d connections from one host: %d closed at once, want at least %d", hostConns, h.hostClosed, hostConns-perRemote)
	}
	if h.trickled > trickleIdle+2*time.Second {
		t.Errorf("a trickling connection lasted %s, over the idle timeout %s", h.trickled, trickleIdle)
	}
	if h.ndjsonStatus != 200 || !strings.Contains(h.ndjsonReply, fmt.Sprintf("%d refused", badLines)) ||
		!strings.Contains(h.ndjsonReply, fmt.Sprintf("%d more line(s) not listed", badLines-100)) {
		t.Errorf("NDJSON of %d bad lines: %d %.300s", badLines, h.ndjsonStatus, h.ndjsonReply)
	}
}

// malformedFlood floods an MLLP listener and the FHIR endpoint with
// malformed messages at 20% of the traffic: every one is rejected and
// dead-lettered once. Meanwhile the hostile attacks aim at the limits.
func (s *suite) malformedFlood(t *testing.T) {
	flood, fhirFlood := 2000, 1000
	if s.full {
		flood, fhirFlood = 20000, 10000
	}
	const linesPer = 10
	var res FloodResult
	var fres FHIRFloodResult
	var h hostile
	env := []string{fmt.Sprintf("HINSCORE_MLLP_IDLE_TIMEOUT=%s", trickleIdle)}
	s.scenario(t, spec{env: env, fault: func(c *Cluster) Fault {
		return func(ctx context.Context, r *Run) error {
			if err := r.AfterShare(ctx, 0.2); err != nil {
				return err
			}
			var wg sync.WaitGroup
			var ferr, herr error
			wg.Go(func() { fres, ferr = FHIRFlood(ctx, c.FHIRURL(), fhirNetwork, fhirFlood, linesPer) })
			wg.Go(func() { herr = h.attack(ctx, c, r) })
			var err error
			res, err = Flood(ctx, c.MLLPAddrs()[r.Plan.Networks()[0]], flood)
			wg.Wait()
			return errors.Join(err, ferr, herr)
		}
	}, check: func(ctx context.Context, c *Cluster, r *Run) {
		h.check(t)
		if res.Sent != flood || res.Rejected != flood || res.Accepted != 0 {
			t.Errorf("flood of %d: %+v, want every one rejected", flood, res)
		}
		t.Logf("FHIR flood: %s", fres)
		if fres.Sent != fhirFlood || fres.Rejected != fhirFlood || fres.Accepted != 0 {
			t.Errorf("FHIR flood of %d: %s; want every one a 4xx with an OperationOutcome", fhirFlood, fres)
		}
		if fres.NDJSON != fhirFlood/100 || fres.NDJSONOther != 0 || fres.LinesRefused != fres.BadLines {
			t.Errorf("FHIR flood's NDJSON: %s; want %d posts answered 200 with every line refused", fres, fhirFlood/100)
		}
		// Every body and line differs: one dead letter each.
		if got, err := DLQCount(ctx, c.NATSURL(), "dlq.fhir-ingest"); err != nil {
			t.Fatal(err)
		} else if got != uint64(fres.DeadLetters+badLines) {
			t.Errorf("DLQ holds %d dead letters of the FHIR ingest, want %d (%d resources, %d NDJSON lines, %d lines of one body)", got, fres.DeadLetters+badLines, fres.Sent, fres.BadLines, badLines)
		}
		// Dead letters are stored once per network and bytes.
		distinct := map[string]bool{}
		for _, n := range r.Plan.Networks() {
			for _, m := range r.Plan.Messages(n) {
				if m.Kind == simulator.KindMalformed {
					distinct[n+"\x00"+string(m.Raw)] = true
				}
			}
		}
		got, err := DLQCount(ctx, c.NATSURL(), "dlq.mllp-ingest")
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64(flood + len(distinct) + 1); got != want {
			t.Errorf("DLQ holds %d dead letters of the ingest, want %d (flood %d + the plan's %d + the batch flood's 1)", got, want, flood, len(distinct))
		}
	}})
}

// idleConnections fills an MLLP listener's connection slots with idle
// connections: one more is closed at once.
func (s *suite) idleConnections(t *testing.T) {
	const maxConns = 24
	networks := 3
	var full bool
	s.scenario(t, spec{env: []string{fmt.Sprintf("HINSCORE_MLLP_MAX_CONNS=%d", maxConns)}, fault: func(c *Cluster) Fault {
		return func(ctx context.Context, r *Run) error {
			if err := r.AfterShare(ctx, 0.1); err != nil {
				return err
			}
			addr := c.MLLPAddrs()[r.Plan.Networks()[0]]
			// Every slot the simulator's connections leave.
			ic, err := OpenIdleConns(ctx, addr, maxConns-networks)
			if err != nil {
				return err
			}
			defer ic.Close()
			if full, err = ClosedAtOnce(ctx, addr, 3*time.Second); err != nil {
				return err
			}
			return r.AfterShare(ctx, 0.9)
		}
	}, check: func(ctx context.Context, c *Cluster, r *Run) {
		if !full {
			t.Errorf("a connection over HINSCORE_MLLP_MAX_CONNS=%d was not closed at once", maxConns)
		}
	}})
}
