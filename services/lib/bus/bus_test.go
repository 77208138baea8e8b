package bus

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/bus/natsembed"
	"github.com/hinscore/hinscore/services/lib/domain/partition"
	"github.com/hinscore/hinscore/services/lib/service"
)

func TestValidNetwork(t *testing.T) {
	for _, ok := range []string{"default", "north-star_2", "A"} {
		if err := ValidNetwork(ok); err != nil {
			t.Errorf("ValidNetwork(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a.b", "a b", "a>", "*", "net/1", "x' OR 1=1", string(make([]byte, 65))} {
		if err := ValidNetwork(bad); !errors.Is(err, ErrBadNetwork) {
			t.Errorf("ValidNetwork(%q) = %v, want ErrBadNetwork", bad, err)
		}
	}
}

func TestSubjects(t *testing.T) {
	cases := map[string]string{
		RawSubject("north", "hl7v2"): "raw.north.hl7v2",
		EventSubject(3, "north"):     "events.3.north",
		EventPartitionFilter(3):      "events.3.>",
		OutcomeSubject("north"):      "outcomes.north",
		DLQSubject("mllp-ingest"):    "dlq.mllp-ingest",
		ScorecardSubject("north"):    "scorecards.north",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("subject %q, want %q", got, want)
		}
	}
	if NetworkOfSubject("events.3.north") != "north" {
		t.Error("NetworkOfSubject")
	}
}

func TestOutcomeMsgID(t *testing.T) {
	if OutcomeMsgID("x", 2) != "outcome:x:2" {
		t.Fatal("OutcomeMsgID")
	}
}

func TestStreamsOnEmbeddedServer(t *testing.T) {
	srv, err := natsembed.Start(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := Connect(srv.URL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := DefaultStreamOptions()
	if err := EnsureStreams(ctx, js, opts); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, js, opts); err != nil {
		t.Fatalf("EnsureStreams is not idempotent: %v", err)
	}
	if _, err := WaitStream(ctx, js, StreamDLQ); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := WaitStream(short, js, "NOPE"); err == nil {
		t.Fatal("WaitStream found a stream that does not exist")
	}
}

func TestStreamSetupFromEnv(t *testing.T) {
	for _, c := range []struct {
		env      map[string]string
		check    bool
		replicas int
		err      string
	}{
		{env: nil, replicas: 1},
		{env: map[string]string{EnvStreams: "ensure", EnvStreamReplicas: "3"}, replicas: 3},
		{env: map[string]string{EnvStreams: "check"}, check: true, replicas: 1},
		{env: map[string]string{EnvStreams: "create"}, err: "HINSCORE_STREAMS: \"create\": want ensure or check"},
		{env: map[string]string{EnvStreamReplicas: "0"}, err: "HINSCORE_STREAM_REPLICAS: 0: want 1 to 5"},
		{env: map[string]string{EnvStreamReplicas: "three"}, err: "HINSCORE_STREAM_REPLICAS: \"three\" is not an integer"},
	} {
		env := service.MapEnv(c.env)
		s := StreamSetupFromEnv(env)
		err := env.Err()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: error %v, want %q", c.env, err, c.err)
			}
			continue
		}
		if err != nil || s.Check != c.check || s.Options.Replicas != c.replicas {
			t.Errorf("%v: check=%v replicas=%d err=%v, want check=%v replicas=%d", c.env, s.Check, s.Options.Replicas, err, c.check, c.replicas)
		}
	}
}

// TestCheckStreams: "check" refuses to start where a stream a service uses
// is missing or does not capture its subjects, names it, and changes
// nothing; "ensure" through ConnectFromEnv creates them.
func TestCheckStreams(t *testing.T) {
	srv, err := natsembed.Start(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := func(mode string) *service.Env {
		return service.MapEnv(map[string]string{EnvNATSURL: srv.URL(), EnvStreams: mode})
	}
	_, _, err = ConnectFromEnv(ctx, env("check"), "linker")
	if err == nil || !strings.Contains(err.Error(), "stream EVENTS") || !strings.Contains(err.Error(), "stream OUTCOMES") {
		t.Fatalf("check on an empty server: %v, want EVENTS and OUTCOMES named", err)
	}
	js, closer, err := ConnectFromEnv(ctx, env("ensure"), "linker")
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Shutdown(ctx)
	for name := range serviceStreams {
		if err := CheckStreams(ctx, js, ServiceStreams(name)); err != nil {
			t.Errorf("%s after ensure: %v", name, err)
		}
	}
	if len(ServiceStreams("unknown")) != len(StreamConfigs(DefaultStreamOptions())) {
		t.Error("an unknown service is not checked against every stream")
	}
	// An administrator's stream with other limits and the wrong subjects.
	cfg := StreamConfigs(DefaultStreamOptions())[0]
	for _, c := range StreamConfigs(DefaultStreamOptions()) {
		if c.Name == StreamScorecards {
			cfg = c
		}
	}
	cfg.Subjects = []string{"cards.>"}
	cfg.MaxMsgs = 12345
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	err = CheckStreams(ctx, js, ServiceStreams("scorecard"))
	if err == nil || !strings.Contains(err.Error(), "SCORECARDS does not capture scorecards.>") {
		t.Fatalf("wrong subjects: %v", err)
	}
	if _, _, err := ConnectFromEnv(ctx, env("check"), "scorecard"); err == nil {
		t.Fatal("check passed with the wrong subjects")
	}
	st, err := js.Stream(ctx, StreamScorecards)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config; got.MaxMsgs != 12345 || !slices.Equal(got.Subjects, []string{"cards.>"}) {
		t.Fatalf("check changed the stream: %+v", got)
	}
}

// TestVariables: the names the commands and tests use are the ones the
// settings declare, and the partition count defaults to partition.Default.
func TestVariables(t *testing.T) {
	var names []string
	for _, s := range service.Describe(NATS{}, Partitioning{}) {
		names = append(names, s.Name)
	}
	if want := []string{EnvNATSURL, EnvStreams, EnvStreamReplicas, EnvPartitions}; !slices.Equal(names, want) {
		t.Errorf("declared %q, want %q", names, want)
	}
	var p Partitioning
	if err := service.Load(service.MapEnv(nil), &p); err != nil || p.EventPartitions() != partition.Default {
		t.Errorf("default count %d (%v), want %d", p.PartitionCount, err, partition.Default)
	}
	err := service.Load(service.MapEnv(map[string]string{EnvPartitions: "0"}), &p)
	if err == nil || !strings.Contains(err.Error(), "HINSCORE_PARTITIONS: partition count 0") {
		t.Errorf("count 0: %v", err)
	}
}

// embedded starts a NATS server for the test, and a context bounding it.
func embedded(t *testing.T) (*natsembed.Embedded, context.Context) {
	t.Helper()
	srv, err := natsembed.Start(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return srv, ctx
}

// partitioned is the configuration of a service that partitions EVENTS
// (an ingest, the linker): its NATS set-up records and checks the count.
type partitioned struct {
	NATS
	Partitioning
}

func recorded(t *testing.T, ctx context.Context, js jetstream.JetStream) string {
	t.Helper()
	st, err := js.Stream(ctx, StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().Config.Metadata[MetaPartitions]
}

// TestPartitionCountIsTiedToEvents: the first service that ensures the
// streams records its count on EVENTS; one that does not partition keeps
// it; a writer or reader of another count refuses to start, in both modes,
// with an error naming the variable; the same count passes.
func TestPartitionCountIsTiedToEvents(t *testing.T) {
	srv, ctx := embedded(t)
	open := func(name, mode string, count int) (jetstream.JetStream, error) {
		cfg := partitioned{NATS{URL: srv.URL(), Streams: mode, StreamReplicas: 1}, Partitioning{count}}
		var deps service.Deps
		c, err := cfg.NATS.Open(ctx, name, cfg, &deps)
		if err == nil {
			t.Cleanup(func() { _ = c.Shutdown(ctx) })
		}
		return deps.JetStream, err
	}
	js, err := open("mllp-ingest", "ensure", 8)
	if err != nil {
		t.Fatal(err)
	}
	if got := recorded(t, ctx, js); got != "8" {
		t.Fatalf("EVENTS records %q, want 8", got)
	}
	// A service without a count (the chwriter) updates the streams and
	// keeps the record.
	if _, _, err := (NATS{URL: srv.URL(), Streams: "ensure", StreamReplicas: 1}).Connect(ctx, "chwriter", 0); err != nil {
		t.Fatal(err)
	}
	if got := recorded(t, ctx, js); got != "8" {
		t.Fatalf("after the chwriter EVENTS records %q, want 8", got)
	}
	for _, mode := range []string{"ensure", "check"} {
		_, err := open("linker", mode, 4)
		if !errors.Is(err, ErrPartitionsDiffer) || !strings.Contains(err.Error(), "HINSCORE_PARTITIONS=4, EVENTS records 8") {
			t.Errorf("%s with 4 partitions: %v, want ErrPartitionsDiffer naming HINSCORE_PARTITIONS", mode, err)
		}
		if _, err := open("linker", mode, 8); err != nil {
			t.Errorf("%s with 8 partitions: %v", mode, err)
		}
	}
	if got := recorded(t, ctx, js); got != "8" {
		t.Fatalf("a refused service changed the record to %q", got)
	}
}

// TestPartitionCountRecordedOnAnUnrecordedStream: streams made before the
// count was recorded (or by a tool that does not know it) get it from the
// first partitioning service that ensures them; check mode has nothing to
// compare with and passes.
func TestPartitionCountRecordedOnAnUnrecordedStream(t *testing.T) {
	srv, ctx := embedded(t)
	js, closer, err := (NATS{URL: srv.URL(), Streams: "ensure", StreamReplicas: 1}).Connect(ctx, "api", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Shutdown(ctx)
	if got := recorded(t, ctx, js); got != "" {
		t.Fatalf("recorded %q without a count", got)
	}
	if _, c, err := (NATS{URL: srv.URL(), Streams: "check", StreamReplicas: 1}).Connect(ctx, "linker", 16); err != nil {
		t.Fatalf("check on an unrecorded stream: %v", err)
	} else {
		_ = c.Shutdown(ctx)
	}
	if _, c, err := (NATS{URL: srv.URL(), Streams: "ensure", StreamReplicas: 1}).Connect(ctx, "linker", 16); err != nil {
		t.Fatal(err)
	} else {
		_ = c.Shutdown(ctx)
	}
	if got := recorded(t, ctx, js); got != "16" {
		t.Fatalf("EVENTS records %q, want 16", got)
	}
}
