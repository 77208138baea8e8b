// Package bustest starts the real NATS JetStream a test needs: an embedded
// server in the test's temporary directory, stopped when the test ends,
// with a connection the test owns and, when asked, hinscore's streams.
package bustest

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/natsembed"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
)

// Bus is an embedded server a test started: its JetStream store's
// directory (a test that restarts the server on the same port there keeps
// its streams), the connection the test owns and its JetStream client.
type Bus struct {
	Server *natsembed.Embedded
	Dir    string
	Conn   *nats.Conn
	JS     jetstream.JetStream
}

// New starts an embedded server, stopped when the test ends, and connects
// to it; the connection reconnects at once and for ever, so a test may
// restart the server. hinscore's streams are created with opts, or none
// when opts is nil.
func New(t testing.TB, opts *bus.StreamOptions) *Bus {
	t.Helper()
	b := &Bus{Dir: t.TempDir()}
	var err error
	if b.Server, err = natsembed.Start(b.Dir, "127.0.0.1", -1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Server.Shutdown)
	if b.Conn, err = nats.Connect(b.Server.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Conn.Close)
	if b.JS, err = jetstream.New(b.Conn); err != nil {
		t.Fatal(err)
	}
	if opts != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := bus.EnsureStreams(ctx, b.JS, *opts); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// Start is New for a test that needs only the server's URL and the client.
func Start(t testing.TB, opts *bus.StreamOptions) (string, jetstream.JetStream) {
	t.Helper()
	b := New(t, opts)
	return b.Server.URL(), b.JS
}

// Connect opens a connection to url as service name does (bus.Connect:
// its inbox prefix, its reconnects), closed when the test ends: for a
// test that looks at one service's own traffic.
func Connect(t testing.TB, url, name string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := bus.Connect(url, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// Streams is Start with the default stream options.
func Streams(t testing.TB) jetstream.JetStream {
	t.Helper()
	opts := bus.DefaultStreamOptions()
	_, js := Start(t, &opts)
	return js
}

// Restart starts an embedded server again on the port and store of old
// (stopped by the test before), stopped when the test ends, and waits at
// most 10 s until ready (the component under test's readiness, which
// needs the server) answers.
func Restart(t testing.TB, old *natsembed.Embedded, dir string, ready func(context.Context) error) *natsembed.Embedded {
	t.Helper()
	u, err := url.Parse(old.URL())
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	ns, err := natsembed.Start(dir, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return ns
		}
		if time.Now().After(deadline) {
			t.Fatalf("bus not back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CheckPartitionCount runs the standalone composition of a service that
// partitions EVENTS (serve, as its main runs it, with env and NATS_URL,
// HINSCORE_PARTITIONS and an admin address of its own) against EVENTS
// recorded with 4 partitions: with 8 it must refuse to start with an error
// naming HINSCORE_PARTITIONS, with 4 it must run until stopped.
func CheckPartitionCount(t *testing.T, env map[string]string, serve func(ctx context.Context, env *service.Env) error) {
	t.Helper()
	opts := bus.DefaultStreamOptions()
	opts.Partitions = 4
	url, _ := Start(t, &opts)
	with := func(partitions string) *service.Env {
		m := maps.Clone(env)
		m[bus.EnvNATSURL], m[bus.EnvPartitions], m[service.EnvAdminAddr] = url, partitions, "127.0.0.1:0"
		return service.MapEnv(m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := serve(ctx, with("8"))
	if !errors.Is(err, bus.ErrPartitionsDiffer) || !strings.Contains(err.Error(), "HINSCORE_PARTITIONS=8") {
		t.Fatalf("8 partitions against EVENTS of 4: %v, want a refusal naming HINSCORE_PARTITIONS", err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	defer rcancel()
	if err := serve(rctx, with("4")); err != nil {
		t.Fatalf("4 partitions: %v", err)
	}
}

// Messages returns every message stream holds, in order.
func Messages(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// RawPublishRate measures the physical limit an ingest is held to: async
// JetStream publishes with a Msg-Id of n messages of size bytes, file
// storage, to a stream of its own on the server at url, from a connection
// of its own; in messages per second.
func RawPublishRate(b testing.TB, url string, n, size int) float64 {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LIMIT", Subjects: []string{"limit.>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = js.DeleteStream(ctx, "LIMIT") }()
	payload := make([]byte, size)
	start := time.Now()
	for i := range n {
		if _, err := js.PublishAsync("limit.x", payload, jetstream.WithMsgID("m"+strconv.Itoa(i)), jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("limit publishes not acknowledged")
	}
	return float64(n) / time.Since(start).Seconds()
}
