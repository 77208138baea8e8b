package bus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/natsembed"
	"github.com/nats-io/nats.go/jetstream"
)

// The physical limits every pipeline figure is compared with: raw JetStream
// publish and consume rates on an embedded server like the pipeline's.

func benchStream(b *testing.B) (jetstream.JetStream, jetstream.Stream, func()) {
	b.Helper()
	srv, err := natsembed.Start(b.TempDir(), "127.0.0.1", -1)
	if err != nil {
		b.Fatal(err)
	}
	nc, err := Connect(srv.URL(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	s, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		b.Fatal(err)
	}
	return js, s, func() { nc.Close(); srv.Shutdown() }
}

var payload300 = make([]byte, 300)

func publishN(b *testing.B, js jetstream.JetStream, n int) {
	b.Helper()
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync("bench.x", payload300, jetstream.WithMsgID(fmt.Sprint("m", i))); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("publish acks did not complete")
	}
}

// BenchmarkLimitJetStreamPublishAsync: 300-byte messages with a Msg-Id, file store.
func BenchmarkLimitJetStreamPublishAsync(b *testing.B) {
	js, _, stop := benchStream(b)
	defer stop()
	b.ResetTimer()
	start := time.Now()
	publishN(b, js, b.N)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkLimitJetStreamConsume: durable pull consumer, Fetch(1000) + Ack.
func BenchmarkLimitJetStreamConsume(b *testing.B) {
	js, s, stop := benchStream(b)
	defer stop()
	publishN(b, js, b.N)
	ctx := context.Background()
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 20000})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	got := 0
	for got < b.N {
		batch, err := c.Fetch(min(1000, b.N-got), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		for m := range batch.Messages() {
			if err := m.Ack(); err != nil {
				b.Fatal(err)
			}
			got++
		}
		if err := batch.Error(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(got)/time.Since(start).Seconds(), "msgs/s")
}
