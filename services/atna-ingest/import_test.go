package atnaingest

import (
	"context"
	"testing"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
)

// TestImport stores a capture's records as a connection would: the same
// record as a syslog message and bare (one AuditMessage, so the same
// events), another record, and one with a DOCTYPE, which goes to the DLQ;
// importing it again stores nothing twice.
func TestImport(t *testing.T) {
	h := newHarness(t, nil)
	tmpl := auditTemplate(t)
	hostile := `<!DOCTYPE AuditMessage [<!ENTITY x "y">]><AuditMessage/>`
	cfg := h.srv.cfg
	for i := 0; i < 2; i++ {
		st, err := Import(context.Background(), h.js, cfg, "netb", [][]byte{syslogMsg(audit(tmpl, 1)), syslogMsg(audit(tmpl, 2)), syslogMsg(hostile)}, false)
		if err != nil || st != (ImportStats{Records: 3, Stored: 2, Rejected: 1}) {
			t.Fatalf("import %d: %+v %v", i, st, err)
		}
		st, err = Import(context.Background(), h.js, cfg, "netb", [][]byte{[]byte(audit(tmpl, 1))}, true)
		if err != nil || st != (ImportStats{Records: 1, Stored: 1}) {
			t.Fatalf("bare import %d: %+v %v", i, st, err)
		}
	}
	if n := len(bustest.Messages(t, h.js, bus.StreamEvents)); n != 4 {
		t.Errorf("EVENTS holds %d messages, want 4 (two records, two events each)", n)
	}
	if dl := deadLetters(t, h.js); len(dl) != 1 {
		t.Errorf("%d dead letters, want the DOCTYPE record's once (its Msg-Id is of its bytes)", len(dl))
	}
	if _, err := Import(context.Background(), h.js, cfg, "no.network", nil, true); err == nil {
		t.Error("a bad network imported")
	}
}
