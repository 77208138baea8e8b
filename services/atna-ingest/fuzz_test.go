package atnaingest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/syslog"
)

// knownReasons are the reasons a record can be refused with before it is
// published.
var knownReasons = []string{reasonXML, reasonDoctype, reasonTooDeep, reasonTooLarge, reasonNotAudit, reasonMapping}

// FuzzRecord feeds a syslog message through what the listener does with
// every frame or datagram before publishing: the syslog parser, the
// AuditMessage reader and the mapping. Nothing may panic; a refusal is a
// *syslog.ParseError or has one of the reasons the DLQ knows; an accepted
// record gives events of its network with ids.
func FuzzRecord(f *testing.F) {
	files, _ := filepath.Glob("../lib/atna/testdata/*.xml")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(append([]byte("<85>1 2026-12-07T10:15:02Z gw.example.org ATNA - - - "), b...))
			f.Add(append([]byte("<85>Dec  7 10:15:02 gw ATNA: "), b...))
		}
	}
	cfg := DefaultConfig()
	cfg.MaxFrameBytes = 64 << 10
	mapping := cfg.Mapping()
	now := time.Date(2026, 12, 7, 10, 20, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := syslog.ParseDatagram(data, now)
		if err != nil {
			var pe *syslog.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("syslog error %v is no *ParseError", err)
			}
			return
		}
		evs, err := mapping.Map("fuzz", msg.Body, now)
		if err != nil {
			if r := reasonOf(err); !slices.Contains(knownReasons, r) {
				t.Fatalf("refused with reason %q: %v", r, err)
			}
			return
		}
		if len(evs) == 0 {
			t.Fatal("an accepted record without events")
		}
		for _, ev := range evs {
			if ev.Network != "fuzz" || ev.EventId == "" {
				t.Fatalf("event %+v", ev)
			}
		}
	})
}
