package chwriter_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
)

// Environment of the child process of TestCrashBetweenInsertAndAck.
const (
	envCrashChild = "CHWRITER_TEST_CRASH_CHILD"
	envCrashNATS  = "CHWRITER_TEST_CRASH_NATS"
	envCrashDSN   = "CHWRITER_TEST_CRASH_DSN"
	crashExitCode = 3
)

func crashConfig() chwriter.Config {
	c := testConfig()
	c.AckWait = 2 * time.Second
	c.RollupEvery = 0
	return c
}

// TestCrashBetweenInsertAndAck runs a writer in a child process that exits
// (os.Exit: no deferred code, no flush, no ack: what a kill does) right
// after its first outcomes batch is in ClickHouse and before it is acked.
// A new writer then gets the same messages again from JetStream and writes
// them a second time: the views and the rollups must still count each
// outcome once.
func TestCrashBetweenInsertAndAck(t *testing.T) {
	if os.Getenv(envCrashChild) == "1" {
		crashChild(t)
		return
	}
	h := newHarness(t)
	const n, m = 400, 300
	h.publish(eventMsgs(t, 0, n)...)
	h.publish(allOutcomeMsgs(t, 0, m)...)

	cmd := exec.CommandContext(h.ctx, os.Args[0], "-test.run", "^TestCrashBetweenInsertAndAck$", "-test.count", "1")
	cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashNATS+"="+h.url, envCrashDSN+"="+h.dsn.String())
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != crashExitCode {
		t.Fatalf("child writer: %v, want exit code %d after its first insert\n%s", err, crashExitCode, out)
	}
	written := h.count("SELECT count() FROM exchange_outcomes")
	if written == 0 {
		t.Fatal("the child exited before writing anything: the test did not test the window")
	}
	if info := h.consumerInfo(bus.StreamOutcomes, "chwriter_outcomes"); info.NumAckPending == 0 {
		t.Fatalf("nothing unacked after the crash: %+v", info)
	}
	t.Logf("child wrote %d outcome rows and died before acking them", written)

	reg := prometheus.NewRegistry()
	h.startWriter(crashConfig(), reg)
	h.checkTruth(n, m, false)
	h.waitAcked(bus.StreamOutcomes, "chwriter_outcomes")
	h.waitAcked(bus.StreamEvents, "chwriter_events")
	versions, _ := sumVersions(0, m)
	// The rows of the crashed batch were inserted twice: more rows were sent
	// than there are versions (merges may already have collapsed some on
	// disk, so the metric, not the table, proves the second write).
	if sent := metricSum(t, reg, "hinscore_chwriter_rows_inserted_total"); uint64(sent) < versions-written+uint64(n) {
		t.Errorf("the second writer inserted %v rows, want at least %d", sent, versions-written+uint64(n))
	}
	if err := chstore.RebuildRollups(h.ctx, h.conn, time.Now(), time.UnixMilli(base)); err != nil {
		t.Fatal(err)
	}
	if got := h.count("SELECT countMerge(requests) FROM outcomes_daily"); got != m {
		t.Errorf("outcomes_daily counts %d outcomes, want %d", got, m)
	}
	if got := h.count("SELECT uniqExactMerge(messages) FROM events_daily"); got != n {
		t.Errorf("events_daily counts %d messages, want %d", got, n)
	}
}

// crashChild is the writer that dies between insert and ack.
func crashChild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := chstore.ParseDSN(os.Getenv(envCrashDSN))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := chstore.Connect(ctx, d, d.Database)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(os.Getenv(envCrashNATS))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	w, err := chwriter.New(crashConfig(), service.Deps{JetStream: js, ClickHouse: conn, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	chwriter.SetAfterInsert(w, func(label string) {
		if label == "outcomes" {
			os.Exit(crashExitCode)
		}
	})
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
	t.Fatal("the child wrote no outcomes batch within 60s")
}
