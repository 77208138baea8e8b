package atnaingest

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
)

// serverClosed reports whether the server closed nc within d.
func serverClosed(nc net.Conn, d time.Duration) bool {
	_ = nc.SetReadDeadline(time.Now().Add(d))
	var b [16]byte
	_, err := nc.Read(b[:])
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestConnFloodFromOneHost: the shared connection limits hold on the
// audit listener too: one host's connections over MaxConnsPerRemote on
// neta are closed at once and counted, and netb's records are stored
// meanwhile.
func TestConnFloodFromOneHost(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxConnsPerRemote = 8 })
	mem := ingesttest.StartMemoryPeak()
	var flood []net.Conn
	for range 100 {
		flood = append(flood, h.mustDial(t, "neta"))
	}
	closed := 0
	for _, c := range flood {
		if serverClosed(c, 50*time.Millisecond) {
			closed++
		}
	}
	tmpl := auditTemplate(t)
	b := h.mustDial(t, "netb")
	if _, err := b.Write(frames(syslogMsg(audit(tmpl, 1)), syslogMsg(audit(tmpl, 2)))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for counterValue(t, h.srv.m.stored) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	mem.Check(t, "100 audit connections from one host", 16<<20)
	if closed != 92 {
		t.Errorf("%d of 100 closed, want the 92 over MaxConnsPerRemote", closed)
	}
	if got := counterValue(t, h.srv.m.rejected.WithLabelValues("neta", ingest.RefusedRemote)); got != 92 {
		t.Errorf("refusals counted %v, want 92", got)
	}
	if got := counterValue(t, h.srv.m.stored); got != 2 {
		t.Errorf("netb: %v of 2 records stored during the flood", got)
	}
}
