package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/harness/faults"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/hinscore/internal/truthcheck"
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
	// The idle rule moves a silent network's watermark to the wall clock,
	// far past the simulated traffic, which is in the past: a stall of the
	// feed longer than this while requests wait for their answers decides
	// them unanswered (the answer then counts as late). Two seconds was
	// seen to be too short on a loaded machine.
	link.Idle = testIdle
	shared := DefaultShared()
	shared.PatientKey, shared.PatientKeyID = testPatientKey, "e2e"
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
// per-request truth exactly, that events in equal events stored, and,
// with the check of `hinscore verify` (truthcheck) on the truth files the
// simulator writes, that every request's outcome agrees with its truth
// row field by field. The same check then runs on the stored rows with
// two faults put in (a class swapped, a latency off by one second), and
// must report exactly those.
func TestEndToEndMatchesTruth(t *testing.T) {
	_, _, plan, stored := simulateChecked(t, simulator.Config{Requests: 3000, Seed: 42})
	assertFaultsCaught(t, plan, stored)
}

// simulateChecked generates the plan of cfg, sends it through a new
// pipeline and checks what ClickHouse holds against the truth: the counts
// exactly (assertMatchesTruth), then every outcome field by field
// (assertFieldsMatchTruth), whose rows it returns. ctx ends with the test,
// after five minutes at the latest.
func simulateChecked(t *testing.T, cfg simulator.Config) (context.Context, *Pipeline, *simulator.Plan, []truthcheck.Outcome) {
	t.Helper()
	plan, err := simulator.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	p, want := runSimulated(ctx, t, plan)
	assertMatchesTruth(t, ctx, p, plan, want)
	return ctx, p, plan, assertFieldsMatchTruth(t, ctx, p, plan)
}

// runSimulated starts the pipeline for the plan's networks (shut down
// when the test ends), sends the plan's traffic over MLLP and waits until
// ClickHouse holds an event of every valid message and an outcome of
// every request, which it returns as the counts wanted.
func runSimulated(ctx context.Context, t *testing.T, plan *simulator.Plan) (*Pipeline, Counts) {
	t.Helper()
	p, err := Start(ctx, testOptions(t, plan.Networks()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	stats, err := plan.Send(ctx, p.MLLPAddrs())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Failed != 0 || stats.Unexpected != 0 {
		t.Fatalf("simulator: %s", stats)
	}
	// A crossing exchange (simulator.CrossNetwork) is an outcome of each
	// feed that carried it.
	want := Counts{Events: uint64(plan.ValidMessages()), Outcomes: uint64(len(plan.Requests()) + plan.CrossOutcomes())}
	if _, err := p.WaitStored(ctx, want); err != nil {
		t.Fatal(err)
	}
	return p, want
}

// testIdle is the linker's idle duration in these tests (see testOptions).
const testIdle = 5 * time.Second

// testPatientKey is testOptions' patient key.
var testPatientKey = []byte("end-to-end test patient key")

// assertFieldsMatchTruth writes the plan's truth files and compares
// every stored outcome with them as `hinscore verify` does, failing on any
// difference; it returns the stored rows.
func assertFieldsMatchTruth(t *testing.T, ctx context.Context, p *Pipeline, plan *simulator.Plan) []truthcheck.Outcome {
	t.Helper()
	dir := t.TempDir()
	if err := plan.WriteTruth(dir); err != nil {
		t.Fatal(err)
	}
	return checkTruthDir(ctx, t, p, dir)
}

func readTruth(t *testing.T, plan *simulator.Plan) *truthcheck.Truth {
	t.Helper()
	dir := t.TempDir()
	if err := plan.WriteTruth(dir); err != nil {
		t.Fatal(err)
	}
	truth, err := truthcheck.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return truth
}

// assertFaultsCaught runs the comparison on the stored rows with two
// faults a linker bug could make: one fulfilled outcome reported as
// refused_unjustified, another's time to fulfil one second longer. Both,
// and nothing else, must be reported.
func assertFaultsCaught(t *testing.T, plan *simulator.Plan, stored []truthcheck.Outcome) {
	t.Helper()
	altered := slices.Clone(stored)
	swapped, slowed := -1, -1
	for i, o := range altered {
		switch {
		case swapped < 0 && o.Class == "fulfilled":
			swapped = i
			altered[i].Class = "refused_unjustified"
		case slowed < 0 && o.TTFMs != nil:
			slowed = i
			ttf := *o.TTFMs + 1000
			altered[i].TTFMs = &ttf
		}
	}
	if swapped < 0 || slowed < 0 {
		t.Fatalf("no fulfilled outcome (%d) or no answered one (%d) to alter", swapped, slowed)
	}
	rep := truthcheck.Compare(readTruth(t, plan), altered, testPatientKey)
	var got []string
	for _, d := range rep.Differences {
		got = append(got, d.ID+" "+d.Field+" "+d.Stored+" truth "+d.Truth)
	}
	want := []string{
		altered[swapped].RequestID + " class refused_unjustified truth fulfilled",
		fmt.Sprintf("%s ttf %d truth %d", altered[slowed].RequestID, *altered[slowed].TTFMs, *stored[slowed].TTFMs),
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the altered rows give the differences\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var out strings.Builder
	_ = rep.PrintDifferences(&out)
	if !strings.Contains(out.String(), "refused_unjustified, truth fulfilled") {
		t.Errorf("the printed differences do not show the swapped class:\n%s", out.String())
	}
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
	// A crossing exchange (simulator.CrossNetwork) is an outcome of each
	// feed that carried it.
	want := Counts{Events: uint64(plan.ValidMessages()), Outcomes: uint64(len(plan.Requests()) + plan.CrossOutcomes())}
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
