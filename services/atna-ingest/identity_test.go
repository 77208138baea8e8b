package atnaingest

import (
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
)

// TestCertificateURIBoundToNetwork: neta and netb share a CA; with
// HINSCORE_ATNA_TLS_CLIENT_URI a gateway certificate naming neta, valid
// on neta's listener, is refused on netb's and counted there as
// wrong_network, as is one naming no network; nothing of theirs is
// stored, neta's records on its own listener are.
func TestCertificateURIBoundToNetwork(t *testing.T) {
	pki := ingesttest.NewPKI(t, "shared CA")
	h := newHarness(t, func(c *Config) {
		c.TLSCert, c.TLSKey, c.TLSClientCA = pki.CertFile, pki.KeyFile, pki.CAFile
		c.TLSClientURI = "urn:hinscore:network:{network}"
	})
	tmpl := auditTemplate(t)
	certA := pki.ClientTLSWith(pki.ClientNaming("urn:hinscore:network:neta"))
	for _, r := range []struct {
		network string
		cert    bool
	}{{"netb", true}, {"neta", false}} {
		cfg := certA
		if !r.cert {
			cfg = pki.ClientTLS(true) // a certificate of the CA naming no network
		}
		nc, err := h.dial(t, r.network, cfg)
		if err == nil {
			_, _ = nc.Write(frames(syslogMsg(audit(tmpl, 900))))
			closedWithin(t, nc, 5*time.Second)
		}
	}
	for _, network := range []string{"netb", "neta"} {
		ingesttest.WaitFor(t, network+"'s wrong_network refusal", func() bool {
			return counterValue(t, h.srv.m.rejected.WithLabelValues(network, "wrong_network")) == 1
		})
	}
	if n := counterValue(t, h.srv.m.stored); n != 0 {
		t.Fatalf("%v records stored from certificates of the wrong network", n)
	}
	nc, err := h.dial(t, "neta", certA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(frames(syslogMsg(audit(tmpl, 1)))); err != nil {
		t.Fatal(err)
	}
	for _, ev := range h.storedEvents(t, 1) {
		if ev.Network != "neta" {
			t.Errorf("event of network %q", ev.Network)
		}
	}
}
