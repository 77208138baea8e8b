package atnaingest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
	"github.com/hinscore/hinscore/services/lib/bus/natsembed"
	"github.com/hinscore/hinscore/services/lib/bus/seal"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/lib/service/servicetest"
	"github.com/hinscore/hinscore/services/lib/syslog"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var testNow = time.Date(2026, 12, 7, 10, 20, 0, 0, time.UTC)

// testRawKeys seal the records' bytes in the harness's events.
var testRawKeys = seal.MustParseRawKeys("t1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")

type harness struct {
	ns     *natsembed.Embedded
	busDir string
	js     jetstream.JetStream
	srv    *Server
}

// newHarness runs the listener for networks neta and netb (plain TCP,
// and UDP for neta, unless mod says otherwise) over an embedded JetStream
// with file streams, so that the bus can be restarted.
func newHarness(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	opts := bus.DefaultStreamOptions()
	b := bustest.New(t, &opts)
	cfg := DefaultConfig()
	cfg.Listeners = ingest.Listeners{{Network: "neta", Addr: "127.0.0.1:0"}, {Network: "netb", Addr: "127.0.0.1:0"}}
	cfg.UDP = ingest.Listeners{{Network: "neta", Addr: "127.0.0.1:0"}}
	cfg.PatientKey = []byte("0123456789abcdef-test-key")
	cfg.PatientKeyID = "k1"
	cfg.RawKeys = testRawKeys
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg, service.Deps{JetStream: b.JS, Log: zerolog.Nop(), Metrics: prometheus.NewRegistry(), Clock: fixedClock{testNow}})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Start(t, srv)
	return &harness{ns: b.Server, busDir: b.Dir, js: b.JS, srv: srv}
}

// restartBus starts the embedded server again (after h.ns.Shutdown) and
// waits until the listener's JetStream answers.
func (h *harness) restartBus(t testing.TB) {
	t.Helper()
	h.ns = bustest.Restart(t, h.ns, h.busDir, h.srv.Ready)
}

// dial connects to network's stream listener, over TLS when cfg is set.
func (h *harness) dial(t testing.TB, network string, cfg *tls.Config) (net.Conn, error) {
	t.Helper()
	addr := h.srv.Addrs()[network]
	var nc net.Conn
	var err error
	if cfg != nil {
		nc, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	} else {
		nc, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err == nil {
		t.Cleanup(func() { nc.Close() })
	}
	return nc, err
}

func (h *harness) mustDial(t testing.TB, network string) net.Conn {
	t.Helper()
	nc, err := h.dial(t, network, nil)
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// auditTemplate is an ITI-55 Responding Gateway record.
func auditTemplate(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("testdata/iti55_responding.xml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// audit is the template's record for patient n: bytes of its own, so
// events of its own.
func audit(tmpl string, n int) string {
	return strings.Replace(tmpl, "8675309^^^", fmt.Sprintf("P%07d^^^", n), 1)
}

// syslogMsg wraps an AuditMessage in an RFC 5424 message as gateways send it.
func syslogMsg(body string) []byte {
	return []byte("<85>1 2026-12-07T10:15:02.117Z gw.responder.example.com XCPD 2231 IHE+RFC-3881 - " + body)
}

// frames are the messages as one octet-counted stream.
func frames(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = syslog.AppendFrame(b, m)
	}
	return b
}

// counterValue sums a counter's children.
func counterValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 256)
	c.Collect(ch)
	close(ch)
	total := 0.0
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		total += d.GetCounter().GetValue()
	}
	return total
}

// storedEvents waits until n records are stored and returns the events
// EVENTS holds then, checking that each one's sealed bytes open.
func (h *harness) storedEvents(t testing.TB, n int) []*hinscorev1.ExchangeEvent {
	t.Helper()
	ingesttest.WaitFor(t, fmt.Sprintf("%d records stored", n), func() bool { return counterValue(t, h.srv.m.stored) >= float64(n) })
	var out []*hinscorev1.ExchangeEvent
	for _, m := range bustest.Messages(t, h.js, bus.StreamEvents) {
		ev := &hinscorev1.ExchangeEvent{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			t.Fatal(err)
		}
		plain, err := testRawKeys.Open(ev.EventId, ev.RawSealed)
		if err != nil || len(ev.Raw) != 0 {
			t.Fatalf("event %s: sealed bytes do not open (%v), or it carries them in the clear", ev.EventId, err)
		}
		ev.Raw = plain // the test reads them here
		out = append(out, ev)
	}
	return out
}

// deadLetter is one of the DLQ's messages: its reason and bytes.
type deadLetter struct{ Reason, Data string }

// deadLetters are the DLQ's messages, each checked to be this stage's.
func deadLetters(t testing.TB, js jetstream.JetStream) []deadLetter {
	t.Helper()
	var out []deadLetter
	for _, m := range bustest.Messages(t, js, bus.StreamDLQ) {
		if m.Header.Get(bus.HeaderStage) != stageATNAIngest || m.Header.Get(bus.HeaderFormat) != formatATNA {
			t.Errorf("dead letter of stage %q, format %q", m.Header.Get(bus.HeaderStage), m.Header.Get(bus.HeaderFormat))
		}
		out = append(out, deadLetter{m.Header.Get(bus.HeaderReason), string(m.Data)})
	}
	return out
}

// closedWithin checks that the server closes nc within d.
func closedWithin(t testing.TB, nc net.Conn, d time.Duration) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("connection not closed within %s", d)
	}
}
