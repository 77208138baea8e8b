package bus

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

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

func TestPartitionIsStableAndSpread(t *testing.T) {
	if Partition("k", 1) != 0 || Partition("k", 0) != 0 {
		t.Fatal("one partition must be 0")
	}
	counts := make([]int, 4)
	for i := 0; i < 4000; i++ {
		p := Partition("net|FAC|"+time.Duration(i).String(), 4)
		if p != Partition("net|FAC|"+time.Duration(i).String(), 4) {
			t.Fatal("Partition not deterministic")
		}
		counts[p]++
	}
	for p, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("partition %d got %d of 4000 keys", p, n)
		}
	}
}

func TestDeterministicIDs(t *testing.T) {
	a := EventID("north", []byte("MSH|1"))
	if a != EventID("north", []byte("MSH|1")) {
		t.Fatal("EventID not deterministic")
	}
	if a == EventID("south", []byte("MSH|1")) || a == EventID("north", []byte("MSH|2")) {
		t.Fatal("EventID collides across networks or bytes")
	}
	// The ids of stored rows and Msg-Ids must never change: EventID is the
	// version-5 UUID of network, a zero byte and the bytes.
	for _, tc := range []struct{ network, raw string }{
		{"north", "MSH|1"}, {"", ""}, {"n", strings.Repeat("MSH|^~\\&|A|B\r", 300)}, {"net-b_2", "\x00\xff"},
	} {
		if got, want := EventID(tc.network, []byte(tc.raw)), uuid.NewSHA1(eventNamespace, []byte(tc.network+"\x00"+tc.raw)); got != want {
			t.Errorf("EventID(%q, %d bytes) = %s, want %s", tc.network, len(tc.raw), got, want)
		}
	}
	if got := EventID("north", []byte("MSH|1")).String(); got != "1e0d3234-119b-5533-b721-0de36d083f5e" {
		t.Errorf("EventID changed: %s", got)
	}
	if OutcomeID("n", "k") != OutcomeID("n", "k") || OutcomeID("n", "k") == OutcomeID("n", "k2") {
		t.Fatal("OutcomeID")
	}
	if OutcomeMsgID("x", 2) != "outcome:x:2" {
		t.Fatal("OutcomeMsgID")
	}
}

func TestStreamsAndDLQOnEmbeddedServer(t *testing.T) {
	srv, err := StartEmbedded(t.TempDir(), "127.0.0.1", -1)
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
	d := DeadLetter{Stage: "mllp-ingest", Network: "north", Format: "hl7v2", Reason: "MSH-10 empty", Data: []byte("MSH|bad")}
	for i := 0; i < 2; i++ { // a retried rejection is stored once
		if err := PublishDLQ(ctx, js, d); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := js.Stream(ctx, StreamDLQ)
	msg, err := s.GetLastMsgForSubject(ctx, DLQSubject("mllp-ingest"))
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "MSH|bad" || msg.Header.Get(HeaderReason) != "MSH-10 empty" || msg.Header.Get(HeaderNetwork) != "north" {
		t.Fatalf("DLQ message = %q %v", msg.Data, msg.Header)
	}
	info, _ := s.Info(ctx)
	if info.State.Msgs != 1 {
		t.Fatalf("DLQ holds %d messages, want 1 (deduplicated)", info.State.Msgs)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := WaitStream(short, js, "NOPE"); err == nil {
		t.Fatal("WaitStream found a stream that does not exist")
	}
}

func TestDLQWithoutBytesIsNeverMerged(t *testing.T) {
	srv, err := StartEmbedded(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := Connect(srv.URL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := EnsureStreams(ctx, js, DefaultStreamOptions()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := PublishDLQ(ctx, js, DeadLetter{Stage: "mllp-ingest", Reason: "frame too large"}); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := js.Stream(ctx, StreamDLQ)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 2 {
		t.Fatalf("DLQ holds %d records of two oversized frames, want 2", info.State.Msgs)
	}
}

func TestSplitAddr(t *testing.T) {
	for in, want := range map[string]struct {
		host string
		port int
	}{"": {"127.0.0.1", -1}, "127.0.0.1:0": {"127.0.0.1", -1}, "0.0.0.0:4222": {"0.0.0.0", 4222}, ":4222": {"127.0.0.1", 4222}} {
		h, p, err := SplitAddr(in)
		if err != nil || h != want.host || p != want.port {
			t.Errorf("SplitAddr(%q) = %q, %d, %v", in, h, p, err)
		}
	}
	for _, bad := range []string{"localhost", "127.0.0.1:http", "127.0.0.1:70000"} {
		if _, _, err := SplitAddr(bad); err == nil {
			t.Errorf("SplitAddr(%q) accepted", bad)
		}
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
	srv, err := StartEmbedded(t.TempDir(), "127.0.0.1", -1)
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
