package mllpingest

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
	"github.com/hinscore/hinscore/services/lib/hl7v2"
	"github.com/hinscore/hinscore/services/lib/hl7v2/mllp"
)

// twoNetworks gives the harness a second network, netb, whose traffic
// must go on while neta's feed attacks.
func twoNetworks(mod func(*Config)) func(*Config) {
	return func(c *Config) {
		c.Listeners = []Listener{{Network: "neta", Addr: "127.0.0.1:0"}, {Network: "netb", Addr: "127.0.0.1:0"}}
		if mod != nil {
			mod(c)
		}
	}
}

// dialRaw connects to network's listener from the local address from
// ("": any), holding no buffers of its own: the flood's memory is the
// server's.
func (h *harness) dialRaw(t testing.TB, network, from string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	nc, err := d.Dial("tcp", h.srv.Addrs()[network])
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { nc.Close() })
	return nc, nil
}

// dialFrom is dialRaw with a client's reader.
func (h *harness) dialFrom(t testing.TB, network, from string) (*client, error) {
	nc, err := h.dialRaw(t, network, from)
	if err != nil {
		return nil, err
	}
	return &client{t: t, nc: nc, r: mllp.NewReader(nc, 1<<20)}, nil
}

// meanwhile sends n queries on netb from another host, one at a time,
// until done or n are answered, and returns how many were answered AA;
// every reply must come within a second.
func meanwhile(t *testing.T, h *harness, n int, done <-chan struct{}) <-chan int {
	answered := make(chan int, 1)
	go func() {
		c, err := h.dialFrom(t, "netb", "127.0.0.2")
		if err != nil {
			t.Errorf("netb: %v", err)
			answered <- 0
			return
		}
		aa := 0
		for i := 0; i < n; i++ {
			if _, err := c.nc.Write(mllp.AppendFrame(nil, []byte(qbp(fmt.Sprintf("B%d", i))))); err != nil {
				t.Errorf("netb send: %v", err)
				break
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(time.Second))
			f, err := c.r.ReadFrame()
			if err != nil {
				t.Errorf("netb message %d not answered within a second: %v", i, err)
				break
			}
			if m, err := hl7v2.Parse(f); err == nil && m.Get("MSA-1") == "AA" {
				aa++
			}
			select {
			case <-done:
			case <-time.After(10 * time.Millisecond):
			}
		}
		answered <- aa
	}()
	return answered
}

// storedBy counts the events EVENTS holds of each network.
func storedBy(t *testing.T, h *harness) map[string]int {
	out := map[string]int{}
	for _, m := range streamMsgs(t, h.js, bus.StreamEvents) {
		out[decodeEvent(t, m).Network]++
	}
	return out
}

// batchFlood is one frame of maxFrame bytes: a batch header and trailer
// around "MSH\r" as often as it fits, a message each.
func batchFlood(maxFrame int) (string, int) {
	head, tail := "BHS|^~\\&|EVIL|NETA|HIE|HIE|20260302095900\r", "BTS\r"
	n := (maxFrame - len(head) - len(tail)) / 4
	return head + strings.Repeat("MSH\r", n) + tail, n
}

// TestBatchFloodRefusedWhole: a 1 MiB frame of "MSH\r" repeated (about
// 262,000 one-segment messages) is refused whole before it is split: one
// AR naming HINSCORE_MLLP_MAX_BATCH, one dead letter with the frame's
// bytes; memory stays bounded and the other network's queries are
// answered and stored throughout.
func TestBatchFloodRefusedWhole(t *testing.T) {
	h := newHarness(t, twoNetworks(nil))
	frame, n := batchFlood(h.srv.cfg.MaxFrameBytes)
	mem := ingesttest.StartMemoryPeak()
	done := make(chan struct{})
	answered := meanwhile(t, h, 50, done)
	attacker, err := h.dialFrom(t, "neta", "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	attacker.send(frame)
	_ = attacker.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	reply, err := attacker.r.ReadFrame()
	close(done)
	mem.Check(t, fmt.Sprintf("one frame of %d messages", n), 32<<20)
	if err != nil {
		t.Fatalf("no reply to the batch within 30 s: %v", err)
	}
	t.Logf("batch of %d messages refused in %s", n, time.Since(start).Round(time.Millisecond))
	r, err := hl7v2.Parse(reply)
	if err != nil || r.Get("MSA-1") != "AR" || !strings.Contains(r.Get("ERR-8"), "HINSCORE_MLLP_MAX_BATCH") ||
		!strings.Contains(r.Get("ERR-8"), fmt.Sprint(n)) {
		t.Errorf("reply to the flood is not one AR naming the limit: %v %.300q", err, reply)
	}
	if got := <-answered; got != 50 {
		t.Errorf("netb: %d of 50 queries answered AA during the flood", got)
	}
	dlq := streamMsgs(t, h.js, bus.StreamDLQ)
	if len(dlq) != 1 || !strings.HasPrefix(dlq[0].Header.Get(bus.HeaderReason), reasonBatchTooLarge+":") || string(dlq[0].Data) != frame {
		t.Errorf("DLQ holds %d dead letters, want the frame once", len(dlq))
	}
	if got := storedBy(t, h); got["netb"] != 50 || got["neta"] != 0 {
		t.Errorf("EVENTS holds %v, want netb's 50 only", got)
	}
}

// TestBatchLargerThanWindow: a batch of more messages than the in-flight
// window holds is stored and answered whole, each message holding a place
// in the window in turn.
func TestBatchLargerThanWindow(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxInFlight = 4; c.MaxBatch = 40 })
	c := h.dial(t)
	var b strings.Builder
	b.WriteString("BHS|^~\\&|EHR|HOSP_A|HIE|NETB\r")
	for i := 0; i < 40; i++ {
		b.WriteString(qbp(fmt.Sprintf("W%d", i)))
	}
	b.WriteString("BTS|40\r")
	c.send(b.String())
	_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	reply, err := c.r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	f, err := hl7v2.SplitBatches(reply)
	if err != nil || len(f.Messages()) != 40 {
		t.Fatalf("reply: %v, %d acks", err, len(f.Messages()))
	}
	for i, a := range f.Messages() {
		if m, err := hl7v2.Parse(a); err != nil || m.Get("MSA-1") != "AA" || m.Get("MSA-2") != fmt.Sprintf("W%d", i) {
			t.Errorf("ack %d: %q", i, a)
		}
	}
	wantHolds(t, h.js, bus.StreamEvents, 40)
	// One over the limit is refused whole.
	c.send("BHS|^~\\&|EHR|HOSP_A|HIE|NETB\r" + strings.Repeat(qbp("X"), 41) + "BTS|41\r")
	if r := c.recv(); r.Get("MSA-1") != "AR" || !strings.Contains(r.Get("ERR-8"), "41 messages, over 40") {
		t.Errorf("batch over the limit: %q", r.Bytes())
	}
	wantHolds(t, h.js, bus.StreamEvents, 40)
}

// closedWithin reports whether the server closed c within d.
func closedWithin(nc net.Conn, d time.Duration) bool {
	_ = nc.SetReadDeadline(time.Now().Add(d))
	var buf [64]byte
	for {
		_, err := nc.Read(buf[:])
		var ne net.Error
		switch {
		case err == nil:
			continue
		case errors.As(err, &ne) && ne.Timeout():
			return false
		}
		return true
	}
}

// TestConnFloodFromOneHost: one host opening 400 connections to one
// listener gets MaxConnsPerRemote of them; the rest are closed at once
// and counted by the limit's name; another host of the same network and
// the other network are served meanwhile.
func TestConnFloodFromOneHost(t *testing.T) {
	h := newHarness(t, twoNetworks(nil))
	perRemote := h.srv.cfg.MaxConnsPerRemote
	mem := ingesttest.StartMemoryPeak()
	done := make(chan struct{})
	answered := meanwhile(t, h, 50, done)
	var flood []net.Conn
	for i := 0; i < 400; i++ {
		c, err := h.dialRaw(t, "neta", "127.0.0.1")
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		flood = append(flood, c)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	closed := 0
	for _, c := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if closedWithin(c, 2*time.Second) {
				mu.Lock()
				closed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	other, err := h.dialFrom(t, "neta", "127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	other.send(qbp("N1"))
	if r := other.recv(); r.Get("MSA-1") != "AA" {
		t.Errorf("another host of neta: %q", r.Bytes())
	}
	close(done)
	mem.Check(t, "400 connections from one host", 16<<20)
	if closed != 400-perRemote {
		t.Errorf("%d of 400 connections closed, want %d (all over %d)", closed, 400-perRemote, perRemote)
	}
	if got := counterValue(t, h.srv.m.rejected.WithLabelValues("neta", ingest.RefusedRemote)); got != float64(400-perRemote) {
		t.Errorf("refusals counted %v, want %d", got, 400-perRemote)
	}
	if got := <-answered; got != 50 {
		t.Errorf("netb: %d of 50 queries answered AA during the flood", got)
	}
	// Its connections closed, the host has its share back.
	for _, c := range flood {
		c.Close()
	}
	back := false
	for deadline := time.Now().Add(5 * time.Second); !back && time.Now().Before(deadline); {
		var held []net.Conn
		for range perRemote {
			c, err := h.dialRaw(t, "neta", "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		back = !closedWithin(held[perRemote-1], 200*time.Millisecond)
		for _, c := range held {
			c.Close()
		}
	}
	if !back {
		t.Error("the host did not get its connections back once it closed its own")
	}
	if got := storedBy(t, h); got["netb"] != 50 || got["neta"] != 1 {
		t.Errorf("EVENTS holds %v, want netb's 50 and neta's 1", got)
	}
}

// TestConnFloodOnOneListener: hosts enough to pass MaxConnsPerListener
// fill one listener; the connections over it are closed at once and the
// other network is still served.
func TestConnFloodOnOneListener(t *testing.T) {
	h := newHarness(t, twoNetworks(func(c *Config) { c.MaxConns = 20; c.MaxConnsPerListener = 10; c.MaxConnsPerRemote = 5 }))
	var held []net.Conn
	for i := 0; i < 15; i++ {
		c, err := h.dialRaw(t, "neta", fmt.Sprintf("127.0.1.%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	closed := 0
	for _, c := range held {
		if closedWithin(c, 300*time.Millisecond) {
			closed++
		}
	}
	if closed != 5 {
		t.Errorf("%d of 15 closed, want the 5 over MaxConnsPerListener", closed)
	}
	if got := counterValue(t, h.srv.m.rejected.WithLabelValues("neta", ingest.RefusedListener)); got != 5 {
		t.Errorf("refusals counted %v, want 5", got)
	}
	b, err := h.dialFrom(t, "netb", "")
	if err != nil {
		t.Fatal(err)
	}
	b.send(qbp("B1"))
	if r := b.recv(); r.Get("MSA-1") != "AA" {
		t.Errorf("netb: %q", r.Bytes())
	}
}

// TestTricklingConnectionsClosed: connections that send a CR now and then
// but never a frame are closed once the idle timeout has passed since
// they opened, however often they send; the other network is served
// meanwhile.
func TestTricklingConnectionsClosed(t *testing.T) {
	const idle = 600 * time.Millisecond
	h := newHarness(t, twoNetworks(func(c *Config) { c.IdleTimeout = idle }))
	mem := ingesttest.StartMemoryPeak()
	done := make(chan struct{})
	answered := meanwhile(t, h, 50, done)
	const n = 20
	var wg sync.WaitGroup
	lasted := make([]time.Duration, n)
	for i := range n {
		c, err := h.dialRaw(t, "neta", "")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			for time.Since(start) < 10*time.Second {
				if _, err := c.Write([]byte("\r")); err != nil {
					break
				}
				if closedWithin(c, 100*time.Millisecond) {
					break
				}
			}
			lasted[i] = time.Since(start)
		}()
	}
	wg.Wait()
	close(done)
	mem.Check(t, fmt.Sprintf("%d trickling connections", n), 16<<20)
	for i, d := range lasted {
		if d < idle-100*time.Millisecond || d > idle+time.Second {
			t.Errorf("trickling connection %d lasted %s, want the idle timeout %s", i, d.Round(time.Millisecond), idle)
		}
	}
	if got := <-answered; got != 50 {
		t.Errorf("netb: %d of 50 queries answered AA meanwhile", got)
	}
	if got := storedBy(t, h); got["netb"] != 50 {
		t.Errorf("EVENTS holds %v, want netb's 50", got)
	}
}

// batchOf is one batch frame (BHS ... BTS) of n messages, the i-th
// message msg(i).
func batchOf(n int, msg func(i int) string) string {
	var b strings.Builder
	b.WriteString("BHS|^~\\&|EHR|HOSP_A|HIE|NETB\r")
	for i := range n {
		b.WriteString(msg(i))
	}
	b.WriteString("BTS|" + fmt.Sprint(n) + "\r")
	return b.String()
}

// sendBatch sends a batch on c and returns the messages of its one reply
// batch, sampling measure meanwhile; peak is the largest sample.
func sendBatch(t *testing.T, c *client, batch string, n int, measure func() int) (replies [][]byte, peak int) {
	t.Helper()
	done := make(chan struct{})
	most := make(chan int, 1)
	go func() {
		peak := 0
		for {
			select {
			case <-done:
				most <- peak
				return
			default:
			}
			peak = max(peak, measure())
			runtime.Gosched()
		}
	}()
	c.send(batch)
	_ = c.nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	reply, err := c.r.ReadFrame()
	close(done)
	peak = <-most
	if err != nil {
		t.Fatal(err)
	}
	f, err := hl7v2.SplitBatches(reply)
	if err != nil || len(f.Messages()) != n {
		t.Fatalf("reply: %v", err)
	}
	return f.Messages(), peak
}

// TestBatchMessagesHoldTheWindow: the messages of a batch are published
// at most MaxInFlight at a time, as single messages are: the PubAcks the
// server awaits never pass the window.
func TestBatchMessagesHoldTheWindow(t *testing.T) {
	const window, n = 8, 2000
	h := newHarness(t, func(c *Config) { c.MaxInFlight = window })
	batch := batchOf(n, func(i int) string { return qbp(fmt.Sprintf("H%d", i)) })
	_, peak := sendBatch(t, h.dial(t), batch, n, h.js.PublishAsyncPending)
	t.Logf("batch of %d messages: at most %d publishes pending (window %d)", n, peak, window)
	if peak > window {
		t.Errorf("%d publishes pending at once, over the window of %d", peak, window)
	}
	wantHolds(t, h.js, bus.StreamEvents, n)
}

// TestRejectedBatchOnThePool: a batch of 9,000 messages each refused
// (a bad segment name), with a window as large, stores its dead letters through
// the server's pool of DeadLetterWorkers, not a goroutine each.
func TestRejectedBatchOnThePool(t *testing.T) {
	const n = 9000
	h := newHarness(t, func(c *Config) { c.MaxInFlight = n + 1 })
	batch := batchOf(n, func(i int) string {
		return fmt.Sprintf("MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||ADT^A08|R%d|P|2.5\rE!N|A08\r", i)
	})
	c := h.dial(t)
	c.r = mllp.NewReader(c.nc, 8<<20) // 9,000 ACKs in one reply
	base := runtime.NumGoroutine()
	replies, peak := sendBatch(t, c, batch, n, runtime.NumGoroutine)
	if m, err := hl7v2.Parse(replies[n-1]); err != nil || m.Get("MSA-1") != "AE" {
		t.Errorf("last ack: %q", replies[n-1])
	}
	grew := peak - base
	t.Logf("batch of %d refused messages: at most %d goroutines above the %d before", n, grew, base)
	if bound := 8 * ingest.DeadLetterWorkers; grew > bound { // each publish also waits on NATS and on the shutdown with goroutines of its own
		t.Errorf("%d more goroutines at once, over %d: dead letters not on the pool", grew, bound)
	}
	wantHolds(t, h.js, bus.StreamDLQ, n)
}
