package toevent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// FuzzMap: whatever parses maps, without a panic, to an event with an id,
// a role and the format; an answer's key is its RelatesTo's.
func FuzzMap(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "*"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	m := NewMapper([]byte("fuzz key"), "k1")
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, ev, err := m.Map(Input{Network: "n", Side: hinscorev1.Side_SIDE_RESPONDING, Body: data, Ingest: time.Unix(1, 0), MaxBytes: 1 << 20})
		if err != nil {
			return
		}
		if ev.EventId == "" || ev.Role == hinscorev1.Role_ROLE_UNSPECIFIED || ev.Format != hinscorev1.Format_FORMAT_SOAP {
			t.Fatalf("event %+v", ev)
		}
		if !isRequest(msg.Body) && msg.Addressing.RelatesTo != "" && ev.CorrelationKey != CorrelationKey("n", msg.Addressing.RelatesTo) {
			t.Fatalf("answer key %q", ev.CorrelationKey)
		}
	})
}
