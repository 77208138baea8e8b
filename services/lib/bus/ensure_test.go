package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
)

// TestEnsureUpdatesOnlyWhatDiffers: ensuring a stream, a key-value bucket
// and an object store that already match sends no update request (a
// subscriber on the API subjects counts them); a changed field is updated.
func TestEnsureUpdatesOnlyWhatDiffers(t *testing.T) {
	b := bustest.New(t, nil)
	nc, js := b.Conn, b.JS
	var updates atomic.Int64
	sub, err := nc.Subscribe("$JS.API.STREAM.UPDATE.>", func(*nats.Msg) { updates.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	stream := jetstream.StreamConfig{Name: "ENSURED", Subjects: []string{"ensured.>"}, Storage: jetstream.FileStorage,
		MaxAge: time.Hour, Metadata: map[string]string{"k": "v"}}
	kv := jetstream.KeyValueConfig{Bucket: "ensured_kv", TTL: time.Minute, Storage: jetstream.FileStorage}
	obs := jetstream.ObjectStoreConfig{Bucket: "ensured_obs", Description: "d", Storage: jetstream.FileStorage}
	ensureAll := func() {
		t.Helper()
		if _, err := bus.EnsureStream(ctx, js, stream); err != nil {
			t.Fatal(err)
		}
		if _, err := bus.EnsureKeyValue(ctx, js, kv); err != nil {
			t.Fatal(err)
		}
		if _, err := bus.EnsureObjectStore(ctx, js, obs); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	ensureAll() // creates
	ensureAll() // matches: reads only
	ensureAll()
	if n := updates.Load(); n != 0 {
		t.Fatalf("%d update requests for stores that already matched, want 0", n)
	}

	stream.MaxAge, kv.TTL, obs.Description = 2*time.Hour, 2*time.Minute, "changed"
	ensureAll()
	if n := updates.Load(); n != 3 {
		t.Fatalf("%d update requests after three changes, want 3", n)
	}
	s, err := js.Stream(ctx, stream.Name)
	if err != nil || s.CachedInfo().Config.MaxAge != 2*time.Hour {
		t.Fatalf("stream after the update: %v %v", s, err)
	}
	st, err := js.KeyValue(ctx, kv.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if status, err := st.Status(ctx); err != nil || status.TTL() != 2*time.Minute {
		t.Fatalf("bucket after the update: %v %v", status, err)
	}
}
