package faults

import (
	"os"
	"testing"
	"time"
)

func TestStageOf(t *testing.T) {
	for _, c := range []struct{ stream, consumer, want string }{
		{"EVENTS", "linker-p3-1a2b3c4d_5", "EVENTS/linker"},
		{"EVENTS", "chwriter_events", "EVENTS/chwriter"},
		{"OUTCOMES", "chwriter_outcomes", "OUTCOMES/chwriter"},
		{"EVENTS", "adhoc", "EVENTS/adhoc"},
	} {
		if got := stageOf(c.stream, c.consumer); got != c.want {
			t.Errorf("stageOf(%q, %q) = %q, want %q", c.stream, c.consumer, got, c.want)
		}
	}
}

// TestProcessCPU reads this process's CPU before and after burning some:
// the second reading is larger by about what was burnt.
func TestProcessCPU(t *testing.T) {
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		for i := range 10000 {
			x ^= i * i
		}
	}
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 150*time.Millisecond || d > 2*time.Second {
		t.Fatalf("300 ms of busy loop read as %s of CPU (%d)", d, x)
	}
	if _, err := ProcessCPU(-1); err == nil {
		t.Fatal("ProcessCPU(-1) gave no error")
	}
}
