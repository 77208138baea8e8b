package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/harness/faults"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/linker"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
)

func testOptions(t *testing.T, networks []string) Options {
	t.Helper()
	env := service.MapEnv(nil)
	ingest, err := mllpingest.ConfigFromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	link, err := linker.ConfigFromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	writer, err := chwriter.ConfigFromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	_, d := chtest.EmptyDatabase(t)
	link.Idle = 2 * time.Second
	shared := DefaultShared()
	shared.PatientKey, shared.PatientKeyID = []byte("end-to-end test patient key"), "e2e"
	ingest.Listeners = nil
	for _, n := range networks {
		ingest.Listeners = append(ingest.Listeners, mllpingest.Listener{Network: n, Addr: "127.0.0.1:0"})
	}
	return Options{
		DataDir:    t.TempDir(),
		ClickHouse: d,
		AdminAddr:  "127.0.0.1:0",
		Streams:    bus.DefaultStreamOptions(),
		Shared:     shared,
		Ingest:     ingest,
		Linker:     link,
		Writer:     writer,
		Log:        zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	}
}

// TestEndToEndMatchesTruth runs simulated HL7 v2 traffic through MLLP,
// JetStream, the linker and the writer into ClickHouse, and checks from
// ClickHouse that every outcome class count equals the simulator's
// per-request truth exactly, and that events in equal events stored.
func TestEndToEndMatchesTruth(t *testing.T) {
	plan, err := simulator.Generate(simulator.Config{Requests: 3000, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := Start(ctx, testOptions(t, plan.Networks()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()

	stats, err := plan.Send(ctx, p.MLLPAddrs())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Failed != 0 || stats.Unexpected != 0 {
		t.Fatalf("simulator: %s", stats)
	}
	want := Counts{Events: uint64(plan.ValidMessages()), Outcomes: uint64(len(plan.Requests()))}
	if _, err := p.WaitStored(ctx, want); err != nil {
		t.Fatal(err)
	}
	assertMatchesTruth(t, ctx, p, plan, want)
}

// waitSettled waits until the pipeline says, by its own marks, that it has
// nothing left to store: the linker caught up with nothing pending, the
// writer's consumers with nothing unacknowledged (faults.PipelineSettled).
func waitSettled(ctx context.Context, t *testing.T, p *Pipeline) {
	t.Helper()
	if err := faults.WaitPipelineSettled(ctx, faults.ScrapeLinker(p.AdminAddr()), p.JetStream(), time.Minute); err != nil {
		t.Fatal(err)
	}
}

// assertMatchesTruth checks, from ClickHouse, that the stored counts equal
// want exactly and that every network's outcome class counts equal the
// simulator's per-request truth.
func assertMatchesTruth(t *testing.T, ctx context.Context, p *Pipeline, plan *simulator.Plan, want Counts) {
	t.Helper()
	// A straggling duplicate or orphan would be stored before the pipeline
	// settles: compare exactly only then.
	waitSettled(ctx, t, p)
	got, err := p.Stored(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("ClickHouse holds %d events and %d outcomes; the simulator sent %d valid messages and %d requests",
			got.Events, got.Outcomes, want.Events, want.Outcomes)
	}
	stream, err := p.JetStream().Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != want.Events {
		t.Fatalf("EVENTS stream holds %d messages, ClickHouse %d events", info.State.Msgs, got.Events)
	}

	measured, err := p.ClassCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	truth := plan.Truth()
	for network, classes := range truth {
		for class, n := range classes {
			if measured[network][class] != uint64(n) {
				t.Errorf("%s %s: ClickHouse %d, truth %d", network, class, measured[network][class], n)
			}
		}
		for class, n := range measured[network] {
			if _, ok := classes[class]; !ok && n != 0 {
				t.Errorf("%s %s: ClickHouse %d, truth has none", network, class, n)
			}
		}
	}
	for network := range measured {
		if _, ok := truth[network]; !ok {
			t.Errorf("ClickHouse has outcomes for network %q the simulator never used", network)
		}
	}
}

// TestRestartMidRunLosesAndDoublesNothing stops the whole pipeline while
// the linker and the writer are still working through the traffic, starts it
// again on the same JetStream store and ClickHouse database, and checks that
// the figures are exactly the simulator's truth: nothing lost, nothing
// counted twice.
func TestRestartMidRunLosesAndDoublesNothing(t *testing.T) {
	plan, err := simulator.Generate(simulator.Config{Requests: 3000, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts := testOptions(t, plan.Networks())
	p, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := plan.Send(ctx, p.MLLPAddrs())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Failed != 0 || stats.Unexpected != 0 {
		t.Fatalf("simulator: %s", stats)
	}
	before, err := p.Stored(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown mid-run: %v", err)
	}
	want := Counts{Events: uint64(plan.ValidMessages()), Outcomes: uint64(len(plan.Requests()))}
	t.Logf("stopped with %d of %d events and %d of %d outcomes in ClickHouse", before.Events, want.Events, before.Outcomes, want.Outcomes)
	// A stop after everything was stored would prove nothing about a restart.
	if before.Events+before.Outcomes >= want.Events+want.Outcomes {
		t.Fatalf("stopped after the whole run was stored (%+v): not mid-run", before)
	}
	p, err = Start(ctx, opts)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer func() {
		if err := p.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	if _, err := p.WaitStored(ctx, want); err != nil {
		t.Fatal(err)
	}
	assertMatchesTruth(t, ctx, p, plan, want)
}
