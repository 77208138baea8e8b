package atnaingest

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
	"github.com/hinscore/hinscore/services/lib/domain/quality"
)

// numbered wraps an AuditMessage in an RFC 5424 message whose structured
// data carries meta sequenceId (sd is the whole SD value, "" for none).
func numbered(body, sd string) []byte {
	if sd == "" {
		sd = "-"
	}
	return []byte("<85>1 2026-12-07T10:15:02.117Z gw.responder.example.com XCPD 2231 IHE+RFC-3881 " + sd + " " + body)
}

// TestSyslogSequenceRecorded: over syslog-TLS, each message's meta
// sequenceId is recorded on its first event with the originator
// (HOSTNAME/APP-NAME) as its source, and every event names the feed by the
// client certificate; a message without one records none; a sequenceId
// that is no number is stored all the same, flagged.
func TestSyslogSequenceRecorded(t *testing.T) {
	pki := ingesttest.NewPKI(t, "hinscore test CA")
	h := newHarness(t, func(c *Config) { c.TLSCert, c.TLSKey, c.TLSClientCA = pki.CertFile, pki.KeyFile, pki.CAFile })
	tmpl := auditTemplate(t)
	sds := []string{`[meta sequenceId="41"]`, `[meta sequenceId="42" sysUpTime="7"]`, `[origin ip="10.0.0.1"][meta sequenceId="44"]`, "", `[meta sequenceId="4x"]`}
	var msgs [][]byte
	for i, sd := range sds {
		msgs = append(msgs, numbered(audit(tmpl, i), sd))
	}
	nc, err := h.dial(t, "neta", pki.ClientTLS(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(frames(msgs...)); err != nil {
		t.Fatal(err)
	}
	evs := h.storedEvents(t, len(sds))
	if len(evs) != 2*len(sds) {
		t.Fatalf("EVENTS holds %d events, want %d", len(evs), 2*len(sds))
	}
	var numbers []int64
	flagged := 0
	for _, ev := range evs {
		if ev.GetFeed() != "syslog:hinscore test CA peer" {
			t.Errorf("event %s: feed %q, want the client certificate's name", ev.EventId, ev.GetFeed())
		}
		if ev.GetSequenceSource() != "" {
			if ev.GetSequenceSource() != "syslog|gw.responder.example.com/XCPD" {
				t.Errorf("event %s: source %q", ev.EventId, ev.GetSequenceSource())
			}
			numbers = append(numbers, ev.GetSequenceNumber())
		}
		if slices.Contains(ev.GetReasonCodes(), quality.Code(quality.BadSyslogSequence)) {
			flagged++
		}
	}
	slices.Sort(numbers)
	if fmt.Sprint(numbers) != "[41 42 44]" {
		t.Errorf("numbers recorded %v, want [41 42 44] (one per message, on its first event)", numbers)
	}
	if flagged != 2 {
		t.Errorf("%d events flagged %s, want the 2 of the bad message", flagged, quality.BadSyslogSequence)
	}
}

// TestDatagramFeed: a datagram's events name the feed by the sender's host.
func TestDatagramFeed(t *testing.T) {
	h := newHarness(t, nil)
	pc, err := net.Dial("udp", h.srv.UDPAddrs()["neta"])
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.Write(numbered(audit(auditTemplate(t), 1), `[meta sequenceId="9"]`)); err != nil {
		t.Fatal(err)
	}
	for _, ev := range h.storedEvents(t, 1) {
		if ev.GetFeed() != "syslog:127.0.0.1" {
			t.Errorf("feed %q, want syslog:127.0.0.1", ev.GetFeed())
		}
		if n := ev.GetSequenceNumber(); n != 0 && n != 9 || (n == 9) != strings.HasPrefix(ev.GetSequenceSource(), "syslog|") {
			t.Errorf("sequence %q %d", ev.GetSequenceSource(), n)
		}
	}
}
