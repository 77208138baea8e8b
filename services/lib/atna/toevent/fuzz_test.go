package toevent

import (
	"os"
	"path/filepath"
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/atna"
)

// FuzzMap: whatever the parser accepts maps without a panic, to at least
// one event, each with an id, a key and the record's format.
func FuzzMap(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "*.xml"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	table := DefaultTable()
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := atna.Parse(data, 1<<16)
		if err != nil {
			return
		}
		in := testInput(data)
		in.Table = table
		evs, err := Map(a, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			t.Fatal("no event")
		}
		for _, ev := range evs {
			if ev.EventId == "" || ev.CorrelationKey == "" || ev.Format != hinscorev1.Format_FORMAT_ATNA {
				t.Fatalf("event %v", ev)
			}
		}
	})
}
