package mllpingest

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/hl7v2/mllp"
)

// benchMessage is a typical ~1 KB observed answer.
func benchMessage(id string) []byte {
	return []byte("MSH|^~\\&|HIE|NETB|EHR|HOSP_A|20260302095930-0500||RSP^K22^RSP_K21|" + id + "|P|2.5.1\r" +
		"MSA|AA|Q" + id + "\rQAK|T" + id + "|OK|IHE PDQ Query|1|1|0\r" +
		"QPD|IHE PDQ Query|T" + id + "|@PID.3.1^MRN42~@PID.3.4.1^HOSP_A\r" +
		"PID|1||MRN42^^^HOSP_A^MR||DOE^JANE^Q||19700101|F|||1 MAIN ST^^SPRINGFIELD^IL^62701||(217)555-0100\r" +
		"NTE|1||" + strings.Repeat("note text ", 60) + "\r")
}

// rawPublishRate measures the physical limit the ingest is held to: async
// JetStream publishes with a Msg-Id of n messages of size bytes, file
// storage, on the same embedded server, from a connection of its own.
func rawPublishRate(b *testing.B, h *harness, n, size int) float64 {
	b.Helper()
	nc, err := nats.Connect(h.ns.URL())
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
		if _, err := js.PublishAsync("limit.x", payload, jetstream.WithMsgID(fmt.Sprint("m", i)), jetstream.WithStallWait(time.Minute)); err != nil {
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

// BenchmarkIngest32 is issue 6's speed goal: MLLP ingest over 32
// connections, each message acknowledged after both PubAcks, against the
// raw JetStream async publish rate measured in the same run on the same
// embedded server (file storage); goal: ingest >= 0.5 × that limit. It then
// paces the 32 connections at half the goal rate (limit/4), one message at
// a time per connection, and reports the p99 ACK latency (goal < 10 ms).
func BenchmarkIngest32(b *testing.B) {
	const conns = 32
	h := newHarnessStorage(b, false, func(c *Config) { c.MaxConns = 2 * conns })
	size := len(benchMessage("B00-000000"))
	limit := rawPublishRate(b, h, max(b.N, 20000), size)

	clients := make([]*client, conns)
	for i := range clients {
		clients[i] = h.dial(b)
	}
	per := b.N/conns + 1
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for ci, c := range clients {
		wg.Add(2)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := range per {
				buf = mllp.AppendFrame(buf, benchMessage(fmt.Sprintf("B%02d-%06d", ci, i)))
				if len(buf) > 64<<10 {
					_, _ = c.nc.Write(buf)
					buf = buf[:0]
				}
			}
			_, _ = c.nc.Write(buf)
		}()
		go func() {
			defer wg.Done()
			_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Minute))
			for range per {
				if _, err := c.r.ReadFrame(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(per*conns) / time.Since(start).Seconds()
	b.StopTimer()
	p99 := pacedP99(b, clients, limit/4)
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(limit, "limit-js-publish-msgs/s")
	b.ReportMetric(rate/limit, "ratio(goal>=0.5)")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ack-ms@limit/4(goal<10)")
}

// pacedP99 sends at rate messages/s in total, each connection waiting for
// its ACK before its next message, for about two seconds.
func pacedP99(b *testing.B, clients []*client, rate float64) time.Duration {
	interval := time.Duration(float64(len(clients)) / rate * float64(time.Second))
	const dur = 2 * time.Second
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for ci, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			next := time.Now()
			end := next.Add(dur)
			for i := 0; time.Now().Before(end); i++ {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(interval)
				t0 := time.Now()
				if _, err := c.nc.Write(mllp.AppendFrame(nil, benchMessage(fmt.Sprintf("L%02d-%06d", ci, i)))); err != nil {
					b.Error(err)
					return
				}
				if _, err := c.r.ReadFrame(); err != nil {
					if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
						b.Error(err)
					}
					return
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[len(lat)*99/100]
}
