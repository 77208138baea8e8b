package mllpingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/service/servicetest"

	"github.com/hinscore/hinscore/services/lib/bus/natsembed"
	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/hinscore/hinscore/services/lib/domain/ids"
	"github.com/hinscore/hinscore/services/lib/domain/partition"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/hl7v2"
	"github.com/hinscore/hinscore/services/lib/hl7v2/mllp"
	"github.com/hinscore/hinscore/services/lib/service"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var testNow = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type harness struct {
	t      *testing.T
	ns     *natsembed.Embedded
	busDir string // the embedded server's JetStream store
	nc     *nats.Conn
	js     jetstream.JetStream
	srv    *Server
}

func newHarness(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	return newHarnessStorage(t, true, mod)
}

// newHarnessStorage is newHarness with file streams when memory is false.
func newHarnessStorage(t testing.TB, memory bool, mod func(*Config)) *harness {
	t.Helper()
	opts := bus.DefaultStreamOptions()
	opts.MemoryStorage = memory
	b := bustest.New(t, &opts)
	ns, dir, nc, js := b.Server, b.Dir, b.Conn, b.JS
	cfg := DefaultConfig()
	cfg.Listeners = []Listener{{Network: "neta", Addr: "127.0.0.1:0"}}
	cfg.PatientKey = []byte("0123456789abcdef-test-key")
	cfg.PatientKeyID = "k1"
	cfg.RawKeys = testRawKeys
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg, service.Deps{JetStream: js, Log: zerolog.Nop(), Metrics: prometheus.NewRegistry(), Clock: fixedClock{testNow}})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Start(t, srv)
	h := &harness{ns: ns, busDir: dir, nc: nc, js: js, srv: srv}
	if tt, ok := t.(*testing.T); ok {
		h.t = tt
	}
	return h
}

// restartBus starts the embedded server again on its address and store
// (after h.ns.Shutdown) and waits until the listener's JetStream answers.
func (h *harness) restartBus(t testing.TB) {
	t.Helper()
	h.ns = bustest.Restart(t, h.ns, h.busDir, h.srv.Ready)
}

type client struct {
	t  testing.TB
	nc net.Conn
	r  *mllp.Reader
}

func (h *harness) dial(t testing.TB) *client {
	t.Helper()
	nc, err := net.Dial("tcp", h.srv.Addrs()["neta"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, r: mllp.NewReader(nc, 1<<20)}
}

func (c *client) send(msgs ...string) {
	c.t.Helper()
	var buf []byte
	for _, m := range msgs {
		buf = mllp.AppendFrame(buf, []byte(m))
	}
	if _, err := c.nc.Write(buf); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) recv() *hl7v2.Message {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	f, err := c.r.ReadFrame()
	if err != nil {
		c.t.Fatalf("reading reply: %v", err)
	}
	m, err := hl7v2.Parse(bytes.Clone(f))
	if err != nil {
		c.t.Fatalf("reply does not parse: %v\n%q", err, f)
	}
	return m
}

func qbp(id string) string {
	return "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900-0500||QBP^Q22^QBP_Q21|" + id + "|P|2.5.1\r" +
		"QPD|IHE PDQ Query|TAG" + id + "|@PID.3.1^MRN42~@PID.3.4.1^HOSP_A\r" +
		"RCP|I\r"
}

func ack(id, code, of string) string {
	return "MSH|^~\\&|HIE|NETB|EHR|HOSP_A|20260302095930||ACK^A01^ACK|" + id + "|P|2.5.1\r" +
		"MSA|" + code + "|" + of + "\r"
}

func streamMsgs(t testing.TB, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	return bustest.Messages(t, js, name)
}

// wantHolds reports a stream that does not hold n messages.
func wantHolds(t testing.TB, js jetstream.JetStream, stream string, n int) {
	t.Helper()
	if got := len(streamMsgs(t, js, stream)); got != n {
		t.Errorf("%s holds %d, want %d", stream, got, n)
	}
}

// testRawKeys seal the messages' bytes in the harness's events.
var testRawKeys = seal.MustParseRawKeys("t1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")

// opened is the message an event carries: sealed, never in the clear.
func opened(t testing.TB, ev *hinscorev1.ExchangeEvent) string {
	t.Helper()
	if len(ev.Raw) != 0 {
		t.Errorf("event %s carries its message in the clear", ev.MessageId)
	}
	plain, err := testRawKeys.Open(ev.EventId, ev.RawSealed)
	if err != nil {
		t.Errorf("event %s: sealed bytes (%d) do not open: %v", ev.MessageId, len(ev.RawSealed), err)
	}
	if len(plain) > 8 && bytes.Contains(ev.RawSealed, plain[:8]) {
		t.Errorf("event %s: the sealed bytes show the message", ev.MessageId)
	}
	return string(plain)
}

func decodeEvent(t testing.TB, m *jetstream.RawStreamMsg) *hinscorev1.ExchangeEvent {
	t.Helper()
	ev := &hinscorev1.ExchangeEvent{}
	if err := proto.Unmarshal(m.Data, ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestStoresThenReplies(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t)
	tests := []struct {
		name, msg, wantType, wantQAK string
		role                         hinscorev1.Role
	}{
		{"query gets RSP^K22", qbp("Q1"), "RSP^K22^RSP_K21", "NF", hinscorev1.Role_ROLE_REQUEST},
		{"ack gets ACK", ack("A1", "AR", "Q1"), "ACK^A01^ACK", "", hinscorev1.Role_ROLE_RESPONSE},
		{"observed RSP gets ACK", "MSH|^~\\&|HIE|NETB|EHR|HOSP_A|20260302095931||RSP^K22^RSP_K21|R1|P|2.5.1\rMSA|AA|Q1\rQAK|TAGQ1|OK|IHE PDQ Query|1|1|0\rQPD|IHE PDQ Query|TAGQ1|@PID.3.1^MRN42~@PID.3.4.1^HOSP_A\rPID|1||MRN42^^^HOSP_A\r",
			"ACK^K22^ACK", "", hinscorev1.Role_ROLE_RESPONSE},
	}
	for i, tt := range tests {
		c.send(tt.msg)
		reply := c.recv()
		req, _ := hl7v2.Parse([]byte(tt.msg))
		if got := reply.Get("MSH-9"); got != tt.wantType {
			t.Errorf("%s: reply type %q, want %q", tt.name, got, tt.wantType)
		}
		if reply.Get("MSA-1") != "AA" || reply.Get("MSA-2") != req.Get("MSH-10") {
			t.Errorf("%s: MSA %q|%q", tt.name, reply.Get("MSA-1"), reply.Get("MSA-2"))
		}
		if reply.Get("QAK-2") != tt.wantQAK {
			t.Errorf("%s: QAK-2 %q, want %q", tt.name, reply.Get("QAK-2"), tt.wantQAK)
		}
		// One message per accepted message: the event with its original
		// bytes, nothing in RAW.
		events := streamMsgs(t, h.js, bus.StreamEvents)
		if len(events) != i+1 {
			t.Fatalf("%s: EVENTS %d messages, want %d", tt.name, len(events), i+1)
		}
		wantHolds(t, h.js, bus.StreamRaw, 0)
		evMsg := events[i]
		ev := decodeEvent(t, evMsg)
		if raw := opened(t, ev); raw != tt.msg || ev.Network != "neta" || ev.Format != hinscorev1.Format_FORMAT_HL7V2 || len(evMsg.Header) != 1 {
			t.Errorf("%s: raw %q network %q format %q headers %v (want only the Msg-Id)", tt.name, raw, ev.Network, ev.Format, evMsg.Header)
		}
		wantID := ids.Event("neta", []byte(tt.msg)).String()
		if ev.EventId != wantID || evMsg.Header.Get(jetstream.MsgIDHeader) != "event:"+wantID {
			t.Errorf("%s: ids %s %v", tt.name, ev.EventId, evMsg.Header)
		}
		if ev.RawSeq != 0 || ev.RawSubject != "" || ev.Role != tt.role || ev.IngestTimeMs != testNow.UnixMilli() {
			t.Errorf("%s: event %v", tt.name, ev)
		}
		// What a consumer does first: the raw is where the message is.
		bus.LocateRaw(ev, evMsg.Subject, evMsg.Sequence)
		if ev.RawSubject != evMsg.Subject || ev.RawSeq != evMsg.Sequence || ev.Raw != nil || ev.RawSealed != nil {
			t.Errorf("%s: located raw %s/%d %q", tt.name, ev.RawSubject, ev.RawSeq, ev.RawSealed)
		}
		if want := bus.EventSubject(partition.Of(ev.CorrelationKey, int(partition.Default)), "neta"); evMsg.Subject != want || ev.Partition != partition.Of(ev.CorrelationKey, int(partition.Default)) {
			t.Errorf("%s: subject %s, want %s", tt.name, evMsg.Subject, want)
		}
		if ev.CorrelationKey != "neta|HOSP_A|Q1" {
			t.Errorf("%s: correlation key %q", tt.name, ev.CorrelationKey)
		}
	}
}

func TestDuplicateStoredOnce(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t)
	c.send(qbp("D1"), qbp("D1"))
	for range 2 {
		if r := c.recv(); r.Get("MSA-1") != "AA" {
			t.Fatalf("reply %s", r.Get("MSA-1"))
		}
	}
	wantHolds(t, h.js, bus.StreamEvents, 1)
	wantHolds(t, h.js, bus.StreamRaw, 0)
}

// TestRejects: each bad message gets AE/AR with an ERR that names the
// segment and field (ERR-2) where the parser knows them, and says what is
// wrong (ERR-8); its bytes go to the DLQ and the connection is kept.
func TestRejects(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t)
	tests := []struct {
		name, msg, code, errCode, errLoc, errText, reason string
	}{
		{"bad encoding characters", "MSH|^~|A|B|C|D|20260302095900||ADT^A01|C11|P|2.5\r", "AE", "102", "MSH^1^2", "MSH-2", "parse"},
		{"bad segment", "MSH|^~\\&|A|B|C|D|20260302095900||ADT^A01|C9|P|2.5\rP!D|1\r", "AE", "100", "", "segment 2", "parse"},
		{"not HL7", "hello there", "AR", "100", "", "want MSH", "parse"},
		{"junk before MSH", "PID|1||X\rMSH|^~\\&|A\r", "AR", "100", "", "want MSH", "parse"},
		{"empty frame", "", "AR", "101", "", "no segments", "parse"},
	}
	for i, tt := range tests {
		c.send(tt.msg)
		r := c.recv()
		if r.Get("MSA-1") != tt.code || r.Get("ERR-3.1") != tt.errCode || r.Get("ERR-4") != "E" || !strings.Contains(r.Get("ERR-8"), tt.errText) {
			t.Errorf("%s: reply MSA-1 %q ERR-3 %q ERR-8 %q, want %s %s %q", tt.name, r.Get("MSA-1"), r.Get("ERR-3.1"), r.Get("ERR-8"), tt.code, tt.errCode, tt.errText)
		}
		if tt.errLoc != "" && string(r.Raw("ERR-2")) != tt.errLoc {
			t.Errorf("%s: ERR-2 %q, want %q", tt.name, r.Raw("ERR-2"), tt.errLoc)
		}
		dlq := streamMsgs(t, h.js, bus.StreamDLQ)
		if len(dlq) != i+1 {
			t.Fatalf("%s: DLQ holds %d, want %d", tt.name, len(dlq), i+1)
		}
		d := dlq[i]
		if !strings.HasPrefix(d.Header.Get(bus.HeaderReason), tt.reason+":") || d.Subject != "dlq.mllp-ingest" || d.Header.Get(bus.HeaderNetwork) != "neta" {
			t.Errorf("%s: DLQ %s %v", tt.name, d.Subject, d.Header)
		}
		if string(d.Data) != tt.msg {
			t.Errorf("%s: DLQ data %q, want %q", tt.name, d.Data, tt.msg)
		}
	}
	// The connection survives every reject.
	c.send(qbp("OK1"))
	if r := c.recv(); r.Get("MSA-1") != "AA" {
		t.Errorf("after rejects: %s", r.Get("MSA-1"))
	}
	wantHolds(t, h.js, bus.StreamEvents, 1)
}

// TestRecordsDefectiveMessages: a message with a defect that leaves it
// identifiable is stored and acknowledged, its defect a data-quality flag
// in its reason codes, never a dead letter: an MSH-7 unreadable, empty or
// with its fraction but no decimal point, an empty MSH-10 (a message id
// derived from the event id), an empty MSH-9.
func TestRecordsDefectiveMessages(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t)
	tests := []struct {
		name, msg, id, flag string
		timeMs              int64
	}{
		{"bad MSH-7", strings.Replace(qbp("M1"), "20260302095900-0500", "yesterday", 1), "M1", "dq|bad-timestamp", testNow.UnixMilli()},
		{"empty MSH-7", strings.Replace(qbp("M2"), "20260302095900-0500", "", 1), "M2", "dq|no-timestamp", testNow.UnixMilli()},
		{"no decimal point", strings.Replace(qbp("M3"), "20260302095900-0500", "2026030209590012-0500", 1), "M3", "dq|time-no-point",
			time.Date(2026, 3, 2, 14, 59, 0, 12e7, time.UTC).UnixMilli()},
		{"empty control id", ack("", "AA", "X"), "", "dq|no-control-id", time.Date(2026, 3, 2, 9, 59, 30, 0, time.UTC).UnixMilli()},
		{"empty message type", "MSH|^~\\&|A|B|C|D|20260302095900|||C10|P|2.5\r", "C10", "dq|no-message-type", time.Date(2026, 3, 2, 9, 59, 0, 0, time.UTC).UnixMilli()},
	}
	for i, tt := range tests {
		c.send(tt.msg)
		if r := c.recv(); r.Get("MSA-1") != "AA" || r.Get("MSA-2") != tt.id {
			t.Errorf("%s: reply %q, want AA", tt.name, r.Bytes())
		}
		events := streamMsgs(t, h.js, bus.StreamEvents)
		if len(events) != i+1 {
			t.Fatalf("%s: EVENTS holds %d, want %d", tt.name, len(events), i+1)
		}
		ev := decodeEvent(t, events[i])
		if !slices.Equal(ev.ReasonCodes, []string{tt.flag}) || ev.EventTimeMs != tt.timeMs || ev.MessageId == "" || opened(t, ev) != tt.msg {
			t.Errorf("%s: event id %q time %d reasons %q, want %q at %d", tt.name, ev.MessageId, ev.EventTimeMs, ev.ReasonCodes, tt.flag, tt.timeMs)
		}
	}
	wantHolds(t, h.js, bus.StreamDLQ, 0)
	// Each flag is counted once it is stored; the count follows the reply.
	for _, tt := range tests {
		flag := strings.TrimPrefix(tt.flag, "dq|")
		deadline := time.Now().Add(5 * time.Second)
		for counterValue(t, h.srv.m.dqFlags.WithLabelValues("neta", flag)) != 1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := counterValue(t, h.srv.m.dqFlags.WithLabelValues("neta", flag)); got != 1 {
			t.Errorf("hinscore_mllp_dq_flags_total{flag=%q} = %v, want 1", flag, got)
		}
	}
}

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestBadFramingClosesConnection: an oversized frame, a long run of bytes
// outside frames and an end block without its CR close the connection
// once the frames before them are answered: the oversized frame with AR
// and an ERR naming the limit, the others without a reply (there is no
// message to answer). What was read of the fault, at most 64 KiB, goes to
// the DLQ with the reason; nothing after it is read or stored; other
// connections are served throughout.
func TestBadFramingClosesConnection(t *testing.T) {
	big := func(n int) string {
		return "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||ADT^A08|BIG|P|2.5\rNTE|1||" + strings.Repeat("x", n) + "\r"
	}
	flood := strings.Repeat("GET / HTTP/1.1\r\n", maxKept/16+10)
	badEnd := ack("BE1", "AA", "X")
	tests := []struct {
		name      string
		maxFrame  int
		fault     string // sent after a good frame, then a frame that must not be read
		wantReply bool   // AR 104 naming the limit
		reason    string
		wantDLQ   string
		outside   int // bytes counted outside frames
	}{
		{"oversized", 2048, string(mllp.AppendFrame(nil, []byte(big(3000)))), true, "too_large", big(3000)[:2048], 0},
		{"oversized past what is kept", 100 << 10, string(mllp.AppendFrame(nil, []byte(big(150<<10)))), true, "too_large", big(150 << 10)[:maxKept], 0},
		{"run of junk", 0, flood, false, "junk", flood[:maxKept], maxKept - strings.Count(flood[:maxKept], "\r") - strings.Count(flood[:maxKept], "\n")},
		{"end block without CR", 0, "\x0b" + badEnd + "\x1cX", false, "bad_frame", badEnd, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				if tt.maxFrame > 0 {
					c.MaxFrameBytes = tt.maxFrame
				}
			})
			other := h.dial(t)
			c := h.dial(t)
			stream := append(mllp.AppendFrame(nil, []byte(qbp("G1"))), tt.fault...)
			stream = mllp.AppendFrame(stream, []byte(qbp("AFTER")))
			go func() { _, _ = c.nc.Write(stream) }() // may outgrow the socket buffers
			if r := c.recv(); r.Get("MSA-1") != "AA" || r.Get("MSA-2") != "G1" {
				t.Fatalf("frame before the fault: MSA %s|%s", r.Get("MSA-1"), r.Get("MSA-2"))
			}
			if tt.wantReply {
				r := c.recv()
				limit := fmt.Sprint(h.srv.cfg.MaxFrameBytes)
				if r.Get("MSA-1") != "AR" || r.Get("MSA-2") != "BIG" || r.Get("ERR-3.1") != "104" || !strings.Contains(r.Get("ERR-8"), limit) {
					t.Errorf("reply %q, want AR|BIG with ERR 104 naming %s bytes", r.Bytes(), limit)
				}
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if f, err := c.r.ReadFrame(); !errors.Is(err, io.EOF) {
				t.Errorf("after the fault: %q, %v; want EOF", f, err)
			}
			dlq := streamMsgs(t, h.js, bus.StreamDLQ)
			if len(dlq) != 1 || !strings.HasPrefix(dlq[0].Header.Get(bus.HeaderReason), tt.reason+":") {
				t.Fatalf("DLQ holds %d, want one %s", len(dlq), tt.reason)
			}
			if got := string(dlq[0].Data); got != tt.wantDLQ {
				t.Errorf("DLQ data %d bytes %.40q, want %d bytes %.40q", len(got), got, len(tt.wantDLQ), tt.wantDLQ)
			}
			if n := counterValue(t, h.srv.m.outside.WithLabelValues("neta")); n != float64(tt.outside) {
				t.Errorf("bytes outside frames %v, want %d", n, tt.outside)
			}
			other.send(qbp("OTHER"))
			if r := other.recv(); r.Get("MSA-1") != "AA" {
				t.Errorf("other connection: %s", r.Get("MSA-1"))
			}
			var ids []string
			for _, m := range streamMsgs(t, h.js, bus.StreamEvents) {
				ids = append(ids, decodeEvent(t, m).MessageId)
			}
			if !slices.Equal(ids, []string{"G1", "OTHER"}) {
				t.Errorf("EVENTS holds %v, want [G1 OTHER]", ids)
			}
		})
	}
}

// TestBytesOutsideFramesDiscarded: stray bytes before and between frames
// are skipped and counted (CR and LF between frames are slack, not
// counted), and every frame is answered, whether the bytes arrive in one
// read or split anywhere, even between an end block and its CR.
func TestBytesOutsideFramesDiscarded(t *testing.T) {
	frame := func(id string) string { return string(mllp.AppendFrame(nil, []byte(qbp(id)))) }
	f1, f2, f3 := frame("J1"), frame("J2"), frame("J3")
	parts := []string{"hel", "lo", f1[:10], f1[10 : len(f1)-1], f1[len(f1)-1:] + "\r\n\x00\xff", "zz" + f2, "\n\nabc\r\nd", "ef" + f3}
	const outside = len("hello") + len("\x00\xffzz") + len("abcdef") // the CR LF inside "abc\r\ndef" is part of the junk run, uncounted
	tests := []struct {
		name  string
		split bool
	}{
		{"one write", false},
		{"written apart", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			c := h.dial(t)
			if tt.split {
				for _, p := range parts {
					if _, err := c.nc.Write([]byte(p)); err != nil {
						t.Fatal(err)
					}
					time.Sleep(20 * time.Millisecond) // each part its own read
				}
			} else if _, err := c.nc.Write([]byte(strings.Join(parts, ""))); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"J1", "J2", "J3"} {
				if r := c.recv(); r.Get("MSA-1") != "AA" || r.Get("MSA-2") != id {
					t.Fatalf("MSA %s|%s, want AA|%s", r.Get("MSA-1"), r.Get("MSA-2"), id)
				}
			}
			if n := counterValue(t, h.srv.m.outside.WithLabelValues("neta")); n != float64(outside) {
				t.Errorf("bytes outside frames %v, want %d", n, outside)
			}
			c.send(qbp("J4"))
			if r := c.recv(); r.Get("MSA-1") != "AA" {
				t.Errorf("connection not kept: %s", r.Get("MSA-1"))
			}
			wantHolds(t, h.js, bus.StreamEvents, 4)
			wantHolds(t, h.js, bus.StreamDLQ, 0)
		})
	}
}

func TestPipelinesInOrder(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxInFlight = 64 })
	c := h.dial(t)
	const n = 1000
	go func() {
		var buf []byte
		for i := range n {
			buf = mllp.AppendFrame(buf, []byte(ack(fmt.Sprintf("P%04d", i), "AA", fmt.Sprintf("X%d", i))))
		}
		_, _ = c.nc.Write(buf)
	}()
	for i := range n {
		r := c.recv()
		if want := fmt.Sprintf("P%04d", i); r.Get("MSA-2") != want || r.Get("MSA-1") != "AA" {
			t.Fatalf("reply %d: MSA %s|%s, want AA|%s", i, r.Get("MSA-1"), r.Get("MSA-2"), want)
		}
	}
	if got := len(streamMsgs(t, h.js, bus.StreamEvents)); got != n {
		t.Errorf("EVENTS holds %d, want %d", got, n)
	}
}

// TestBusDownNeverAA: while JetStream is unreachable a message gets AE
// (CE in enhanced mode) within the publish timeout, so its sender re-sends
// it; once the bus is back the re-sent copy gets AA (CA) and the message is
// stored once, whatever became of the first copy's publish.
func TestBusDownNeverAA(t *testing.T) {
	h := newHarnessStorage(t, false, nil)
	h.srv.publishTimeout = 500 * time.Millisecond
	msg := func(id, msh15, msh16 string) string {
		return strings.Replace(qbp(id), "|P|2.5.1\r", "|P|2.5.1|||"+msh15+"|"+msh16+"\r", 1)
	}
	tests := []struct {
		name, id, msh15, msh16, down, up string
	}{
		{"original mode", "BD1", "", "", "AE", "AA"},
		{"enhanced, MSH-15 AL", "BD2", "AL", "NE", "CE", "CA"},
		{"enhanced, MSH-15 ER", "BD3", "ER", "AL", "CE", ""},
		{"enhanced, MSH-16 only", "BD4", "", "AL", "CE", "CA"},
	}
	c := h.dial(t)
	c.send(qbp("BD0"))
	if r := c.recv(); r.Get("MSA-1") != "AA" {
		t.Fatalf("bus up: %s", r.Get("MSA-1"))
	}
	h.ns.Shutdown()
	for _, tt := range tests {
		start := time.Now()
		c.send(msg(tt.id, tt.msh15, tt.msh16))
		r := c.recv()
		if d := time.Since(start); d > h.srv.publishTimeout+2*time.Second {
			t.Errorf("%s: answered after %s", tt.name, d)
		}
		if r.Get("MSA-1") != tt.down || r.Get("MSA-2") != tt.id || r.Get("ERR-3.1") != "207" || !strings.Contains(r.Get("ERR-8"), "send it again") {
			t.Errorf("%s, bus down: MSA %q|%q ERR-3 %q ERR-8 %q, want %s|%s 207", tt.name, r.Get("MSA-1"), r.Get("MSA-2"), r.Get("ERR-3.1"), r.Get("ERR-8"), tt.down, tt.id)
		}
		if tt.down == "AE" && r.Get("QAK-2") != "AE" {
			t.Errorf("%s, bus down: QAK-2 %q, want AE", tt.name, r.Get("QAK-2"))
		}
	}
	h.restartBus(t)
	for _, tt := range tests {
		c.send(msg(tt.id, tt.msh15, tt.msh16))
		if tt.up == "" {
			continue // MSH-15 ER: success is not acknowledged
		}
		r := c.recv()
		if r.Get("MSA-1") != tt.up || r.Get("MSA-2") != tt.id || r.Has("ERR") {
			t.Errorf("%s, re-sent: %q, want %s|%s", tt.name, r.Bytes(), tt.up, tt.id)
		}
	}
	// The ER message's reply never comes: a last message proves it settled.
	c.send(qbp("BD9"))
	if r := c.recv(); r.Get("MSA-1") != "AA" || r.Get("MSA-2") != "BD9" {
		t.Fatalf("after the bus came back: MSA %s|%s", r.Get("MSA-1"), r.Get("MSA-2"))
	}
	stored := map[string]int{}
	for _, m := range streamMsgs(t, h.js, bus.StreamEvents) {
		ev := decodeEvent(t, m)
		stored[ev.MessageId]++
		if raw := opened(t, ev); ids.Event("neta", []byte(raw)).String() != ev.EventId {
			t.Errorf("event %s: its raw %q is not its message", ev.MessageId, raw)
		}
	}
	want := map[string]int{"BD0": 1, "BD1": 1, "BD2": 1, "BD3": 1, "BD4": 1, "BD9": 1}
	if !maps.Equal(stored, want) {
		t.Errorf("EVENTS holds %v; want each message once: %v", stored, want)
	}
	wantHolds(t, h.js, bus.StreamRaw, 0)
}

func TestIdleConnectionClosed(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	c := h.dial(t)
	start := time.Now()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read: %v, want EOF", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("closed after %s, before the idle timeout", d)
	}
}

func TestShutdownFinishesInFlight(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t)
	const n = 200
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = ack(fmt.Sprintf("S%03d", i), "AA", "X")
	}
	c.send(msgs...)
	// Wait until the server has read at least one frame, then shut down.
	deadline := time.Now().Add(5 * time.Second)
	for len(streamMsgs(t, h.js, bus.StreamEvents)) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var shutErr error
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutErr = h.srv.Shutdown(ctx)
	}()
	got := 0
	for ; got < n; got++ {
		_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		f, err := c.r.ReadFrame()
		if err != nil {
			break
		}
		m, err := hl7v2.Parse(bytes.Clone(f))
		if err != nil || m.Get("MSA-1") != "AA" || m.Get("MSA-2") != fmt.Sprintf("S%03d", got) {
			t.Fatalf("reply %d: %q", got, f)
		}
	}
	wg.Wait()
	if shutErr != nil {
		t.Fatal(shutErr)
	}
	if got == 0 {
		t.Fatal("no reply before shutdown closed the connection")
	}
	if stored := len(streamMsgs(t, h.js, bus.StreamEvents)); stored != got {
		t.Errorf("%d replies AA but %d events stored", got, stored)
	}
	if err := h.srv.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := h.srv.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Shutdown: %v", err)
	}
}

func TestShutdownBeforeStart(t *testing.T) {
	cfg := DefaultConfig()
	srv, err := New(cfg, service.Deps{JetStream: fakeJS{}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Ready(context.Background()); err == nil {
		t.Fatal("ready after shutdown")
	}
}

// fakeJS stands in where no call reaches JetStream.
type fakeJS struct{ jetstream.JetStream }

func TestReady(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.srv.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkIngest(b *testing.B) {
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			h := newHarness(b, nil)
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
						buf = mllp.AppendFrame(buf, []byte(ack(fmt.Sprintf("B%d-%d", ci, i), "AA", "X")))
						if len(buf) > 64<<10 {
							_, _ = c.nc.Write(buf)
							buf = buf[:0]
						}
					}
					_, _ = c.nc.Write(buf)
				}()
				go func() {
					defer wg.Done()
					for range per {
						if _, err := c.r.ReadFrame(); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(per*conns)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
