package syslog

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// audit4K is a 4 KB RFC 5424 message carrying an ATNA AuditMessage, the
// size the 20,000 messages/s per core is stated for.
func audit4K() []byte {
	head := `<85>1 2026-12-07T10:15:02.117Z xca-gw.example.org IHE-ATNA 2231 ITI-38 [meta@32473 sysUpTime="9331"] ` + bomS
	var b strings.Builder
	b.WriteString(head)
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AuditMessage>\n")
	for i := 0; b.Len() < 4096-len("</AuditMessage>\n")-120; i++ {
		fmt.Fprintf(&b, "  <ParticipantObjectIdentification ParticipantObjectID=\"1.2.3.4.%d\" ParticipantObjectTypeCode=\"2\"/>\n", i)
	}
	b.WriteString("</AuditMessage>\n")
	return []byte(b.String())
}

func BenchmarkReader(b *testing.B) {
	msg := audit4K()
	const n = 256
	var stream []byte
	for range n {
		stream = AppendFrame(stream, msg)
	}
	src := bytes.NewReader(stream)
	r := NewReader(src, 64<<10)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%n == 0 {
			src.Reset(stream)
			r = NewReader(src, 64<<10)
		}
		if _, err := r.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkParse(b *testing.B) {
	msg := audit4K()
	ref := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(msg, ref); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
