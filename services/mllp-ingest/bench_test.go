package mllpingest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/domain/patient"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/hl7v2"
	"github.com/hinscore/hinscore/services/lib/hl7v2/mllp"
	"github.com/hinscore/hinscore/services/lib/hl7v2/toevent"
	"github.com/hinscore/hinscore/services/lib/service"
)

// benchMessage is a typical ~1 KB observed answer.
func benchMessage(id string) []byte {
	return []byte("MSH|^~\\&|HIE|NETB|EHR|HOSP_A|20260302095930-0500||RSP^K22^RSP_K21|" + id + "|P|2.5.1\r" +
		"MSA|AA|Q" + id + "\rQAK|T" + id + "|OK|IHE PDQ Query|1|1|0\r" +
		"QPD|IHE PDQ Query|T" + id + "|@PID.3.1^MRN42~@PID.3.4.1^HOSP_A\r" +
		"PID|1||MRN42^^^HOSP_A^MR||DOE^JANE^Q||19700101|F|||1 MAIN ST^^SPRINGFIELD^IL^62701||(217)555-0100\r" +
		"NTE|1||" + strings.Repeat("note text ", 60) + "\r")
}

// rawPublishRate is bustest.RawPublishRate on the harness's server.
func rawPublishRate(b *testing.B, h *harness, n, size int) float64 {
	b.Helper()
	return bustest.RawPublishRate(b, h.ns.URL(), n, size)
}

// BenchmarkIngest32 is issue 6's speed goal: MLLP ingest over 32
// connections, each message acknowledged after its PubAck, against the
// raw JetStream async publish rate measured in the same run on the same
// embedded server (file storage); goal: ingest >= 0.5 × that limit. It then
// paces the 32 connections at half the goal rate (limit/4), one message at
// a time per connection, and reports the p99 ACK latency (goal < 10 ms).
//
// Beside it, two limits of the ingest's own shape, measured in the same run
// with the same clients, the same 32 loopback connections and the same
// window: an MLLP echo that answers every frame at once with an ACK-sized
// reply (the transport alone), and the same echo answering only after it
// has published, for each frame, a payload the size of the ingest's one
// EVENTS message (the event with the frame's bytes) with a Msg-Id, and
// awaited its PubAck (transport and bus, no HL7 work).
// ceiling-ratio is that second limit over the raw publish rate: the best
// ratio any ingest of this shape reaches on this machine.
func BenchmarkIngest32(b *testing.B) {
	const conns = 32
	h := newHarnessStorage(b, false, func(c *Config) { c.MaxConns = 2 * conns })
	size := len(benchMessage("B00-000000"))
	n := max(b.N, 20000)
	// Each figure also gets the process's CPU time per message (server
	// and clients included): on a machine this small the rates are bounded
	// by it, cores / (CPU per message).
	perConn := b.N/conns + 1
	var limit float64
	limitCPU := cpuPerMessage(n, func() { limit = rawPublishRate(b, h, n, size) })
	echo, echoCPU := echoRate(b, h, conns, n, false)
	echo1, echo1CPU := echoRate(b, h, conns, n, true)

	clients := make([]*client, conns)
	for i := range clients {
		clients[i] = h.dial(b)
	}
	b.ResetTimer()
	rate, rateCPU := drive(b, clients, perConn, "B")
	b.StopTimer()
	p99 := pacedP99(b, clients, limit/4)
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(limit, "limit-js-publish-msgs/s")
	b.ReportMetric(rate/limit, "ratio(goal>=0.5)")
	b.ReportMetric(echo, "limit-mllp-echo-msgs/s")
	b.ReportMetric(echo1, "limit-mllp-1pub-msgs/s")
	b.ReportMetric(echo1/limit, "ceiling-ratio(1pub/js)")
	b.ReportMetric(rate/echo1, "ratio-to-1pub")
	b.ReportMetric(rateCPU, "cpu-us/msg")
	b.ReportMetric(limitCPU, "limit-js-cpu-us/msg")
	b.ReportMetric(echoCPU, "limit-echo-cpu-us/msg")
	b.ReportMetric(echo1CPU, "limit-1pub-cpu-us/msg")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ack-ms@limit/4(goal<10)")
}

// cpuPerMessage is service.CPUPerMessage.
func cpuPerMessage(n int, f func()) float64 { return service.CPUPerMessage(n, f) }

// drive sends per messages on each connection, pipelined (64 KiB writes),
// reads as many replies, and returns the messages per second and the
// process's CPU time per message. The frames are built before the clock
// starts, as the raw publish limit's payload is: what is timed is the
// server's work, not the clients' formatting.
func drive(b *testing.B, clients []*client, per int, tag string) (rate, cpuPerMsg float64) {
	frames := make([][]byte, len(clients))
	for ci := range clients {
		var buf []byte
		for i := range per {
			buf = mllp.AppendFrame(buf, benchMessage(fmt.Sprintf("%s%02d-%06d", tag, ci, i)))
		}
		frames[ci] = buf
	}
	cpu0, start := service.ProcessCPU(), time.Now()
	var wg sync.WaitGroup
	for ci, c := range clients {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for buf := frames[ci]; len(buf) > 0; {
				n := min(len(buf), 64<<10)
				if _, err := c.nc.Write(buf[:n]); err != nil {
					b.Error(err)
					return
				}
				buf = buf[n:]
			}
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
	n := float64(per * len(clients))
	return n / time.Since(start).Seconds(), float64(service.ProcessCPU()-cpu0) / float64(time.Microsecond) / n
}

// echoRate is drive's rate against an echo server (see BenchmarkIngest32)
// on the same embedded NATS server, with its own connection to it; with
// store, an event-with-raw-sized message is published for each frame (to a
// stream of its own, configured as EVENTS) before its reply.
func echoRate(b *testing.B, h *harness, conns, n int, store bool) (rate, cpuPerMsg float64) {
	b.Helper()
	e := &echoServer{b: b, reply: hl7v2.BuildAck(mustParse(b, benchMessage("B00-000000")), hl7v2.CodeAA, nil, testNow, "HIN0123456789abcdef")}
	if store {
		nc, err := nats.Connect(h.ns.URL())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		if e.js, err = jetstream.New(nc); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		cfg := bus.StreamConfigs(bus.DefaultStreamOptions())[1]
		if cfg.Name != bus.StreamEvents {
			b.Fatalf("stream %s, want EVENTS", cfg.Name)
		}
		cfg.Name, cfg.Subjects = "LIMIT"+cfg.Name, []string{"limit" + cfg.Subjects[0]}
		if _, err := e.js.CreateStream(ctx, cfg); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = e.js.DeleteStream(ctx, cfg.Name) }()
		_, ev, err := toevent.Mapper{Patients: patient.NewTokenizer([]byte("0123456789abcdef-test-key")), PatientKeyID: "k1"}.MapBytes("neta", benchMessage("B00-000000"), testNow)
		if err != nil {
			b.Fatal(err)
		}
		ev.RawSealed = testRawKeys.Seal(ev.EventId, benchMessage("B00-000000"))
		e.event, _ = proto.Marshal(ev)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var served sync.WaitGroup
	defer served.Wait()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			go func() { defer served.Done(); e.serve(nc) }()
		}
	}()
	clients := make([]*client, conns)
	for i := range clients {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		clients[i] = &client{t: b, nc: nc, r: mllp.NewReader(nc, 1<<20)}
	}
	return drive(b, clients, n/conns+1, "E")
}

func mustParse(b *testing.B, data []byte) *hl7v2.Message {
	m, err := hl7v2.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// echoServer answers MLLP frames with a fixed reply, in order, pipelined
// like a server connection (reader and publisher, writer, at most
// DefaultConfig().MaxInFlight frames in flight); with js, only once an
// event-with-raw-sized payload is in EVENTS.
type echoServer struct {
	b     *testing.B
	js    jetstream.JetStream // nil: answer at once
	reply []byte
	event []byte
	seq   atomic.Uint64
}

func (e *echoServer) await(f jetstream.PubAckFuture) *jetstream.PubAck {
	select { // as the server's await: no timer when the PubAck is in
	case ack := <-f.Ok():
		return ack
	default:
	}
	t := time.NewTimer(defaultPublishTimeout)
	defer t.Stop()
	select {
	case ack := <-f.Ok():
		return ack
	case err := <-f.Err():
		e.b.Error(err)
	case <-t.C:
		e.b.Error("echo: no PubAck")
	}
	return nil
}

func (e *echoServer) publish(subject string, data []byte, hdr nats.Header, id string) jetstream.PubAckFuture {
	f, err := e.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: data, Header: hdr}, jetstream.WithMsgID(id), jetstream.WithStallWait(defaultPublishTimeout))
	if err != nil {
		e.b.Error(err)
		return nil
	}
	return f
}

func (e *echoServer) serve(nc net.Conn) {
	defer nc.Close()
	type pending struct {
		id  string
		fut jetstream.PubAckFuture
	}
	window := make(chan struct{}, DefaultConfig().MaxInFlight)
	toWrite := make(chan pending, DefaultConfig().MaxInFlight)
	written := make(chan struct{})
	go func() {
		defer close(written)
		w := bufio.NewWriterSize(nc, 32<<10)
		for p := range toWrite {
			if p.fut != nil {
				e.await(p.fut)
			}
			_, _ = w.Write(mllp.AppendFrame(w.AvailableBuffer(), e.reply))
			if len(toWrite) == 0 {
				_ = w.Flush()
			}
			<-window
		}
		_ = w.Flush()
	}()
	r := mllp.NewReader(nc, 1<<20)
	for {
		if _, err := r.ReadFrame(); err != nil {
			break
		}
		window <- struct{}{}
		var p pending
		if e.js != nil {
			p.id = fmt.Sprint(e.seq.Add(1))
			p.fut = e.publish("limitevents.0.neta", e.event, nil, "event:"+p.id)
		}
		toWrite <- p
	}
	close(toWrite)
	<-written
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
