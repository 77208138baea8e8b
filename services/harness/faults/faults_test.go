package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/harness/simulator"
)

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
	// baseline is the outcome set of the run without faults.
	baseline map[string]string
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
		s.traffic = Traffic{Requests: 4000, Seed: 11, Rate: 900}
		s.fhirPairs = 60
	} else {
		env := os.Getenv("HINSCORE_TEST_CLICKHOUSE_DSN")
		if env == "" {
			if os.Getenv("CI") != "" {
				t.Fatal("HINSCORE_TEST_CLICKHOUSE_DSN is not set (CI is set): the fault suite needs ClickHouse")
			}
			t.Skip("HINSCORE_TEST_CLICKHOUSE_DSN is not set")
		}
		if s.dsn, err = ParseDSN(env); err != nil {
			t.Fatal(err)
		}
		s.traffic = Traffic{Requests: 1500, Seed: 11, Rate: 600}
		s.fhirPairs = 20
	}
	if testing.Verbose() {
		s.traffic.Progress = os.Stderr
	}
	return s
}

// fhirNetwork carries the FHIR load: a network of its own, because its
// event times are the wall clock's while the plan's are compressed
// yesterday's, and the linker keeps one watermark per network.
const fhirNetwork = "faults-fhir"

// scenario runs the suite's traffic through a fresh cluster with the
// fault injected, and checks from ClickHouse that events in = events
// stored, every class count equals the truth and the outcome set equals
// the no-fault run's. check, when set, runs on the cluster before it stops.
func (s *suite) scenario(t *testing.T, env []string, fault func(c *Cluster) Fault, check func(ctx context.Context, c *Cluster, r *Run)) Snapshot {
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
	c, err := StartCluster(ctx, Options{Bin: s.bin, Dir: t.TempDir(), DSN: dsn.String(),
		Networks: run.Plan.Networks(), FHIRNetworks: []string{fhirNetwork}, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	run.FHIR = FHIRLoad{URL: c.FHIRURL(), Network: fhirNetwork, Pairs: s.fhirPairs}
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
	if fault != nil {
		f = fault(c)
	}
	began := time.Now()
	st, err := run.Drive(ctx, c.MLLPAddrs(), f)
	if err != nil {
		t.Fatalf("%v (%s)", err, st)
	}
	snap, err := WaitStored(ctx, dsn, run, 3*time.Minute, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s; FHIR: %d Task pairs, %d posts retried; stored %d events and %d outcomes %s after the start; restarts %v",
		st, run.FHIR.Pairs, run.FHIRRetried(), snap.Events, snap.Outcomes, time.Since(began).Round(time.Millisecond), c.Restarts())
	for _, d := range snap.CheckTruth(run) {
		t.Error(d)
	}
	if s.baseline != nil {
		for _, d := range DiffOutcomes(s.baseline, snap.OutcomeSet) {
			t.Error(d)
		}
	}
	if check != nil {
		check(ctx, c, run)
	}
	return snap
}

// killInTurn kills each service with SIGKILL at evenly spaced points of the
// traffic and starts it again at once; fhir-ingest once a post of the FHIR
// load has found it down.
func killInTurn(names ...string) func(c *Cluster) Fault {
	return func(c *Cluster) Fault {
		return func(ctx context.Context, r *Run) error {
			for i, name := range names {
				if err := r.AfterShare(ctx, float64(i+1)/float64(len(names)+1)); err != nil {
					return err
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
}

func TestFaults(t *testing.T) {
	s := newSuite(t)
	t.Run("no-fault", func(t *testing.T) {
		s.baseline = s.scenario(t, nil, nil, nil).OutcomeSet
	})
	if s.baseline == nil || t.Failed() {
		t.Fatal("the run without faults failed; the fault scenarios compare with it")
	}
	if s.full {
		for _, svc := range []string{Ingest, FHIR, Linker, Writer} {
			t.Run("kill-"+svc, func(t *testing.T) { s.scenario(t, nil, killInTurn(svc), nil) })
		}
	} else {
		t.Run("kill-each-in-turn", func(t *testing.T) { s.scenario(t, nil, killInTurn(Ingest, FHIR, Linker, Writer), nil) })
	}
	t.Run("nats-restart", func(t *testing.T) { s.scenario(t, nil, restartNATS, nil) })
	if s.full {
		t.Run("clickhouse-outage", func(t *testing.T) { s.scenario(t, nil, s.clickhouseOutage, nil) })
	}
	t.Run("malformed-flood", s.malformedFlood)
	t.Run("idle-connections", s.idleConnections)
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
	s.scenario(t, env, func(c *Cluster) Fault {
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
	}, func(ctx context.Context, c *Cluster, r *Run) {
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
	})
}

// idleConnections fills an MLLP listener's connection slots with idle
// connections: one more is closed at once.
func (s *suite) idleConnections(t *testing.T) {
	const maxConns = 24
	networks := 3
	var full bool
	s.scenario(t, []string{fmt.Sprintf("HINSCORE_MLLP_MAX_CONNS=%d", maxConns)}, func(c *Cluster) Fault {
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
	}, func(ctx context.Context, c *Cluster, r *Run) {
		if !full {
			t.Errorf("a connection over HINSCORE_MLLP_MAX_CONNS=%d was not closed at once", maxConns)
		}
	})
}
