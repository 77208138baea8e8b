package faults

import (
	"os"
	"syscall"
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
// the second reading is larger by about what the kernel's own account of
// the process (getrusage) says was burnt. The burn is measured in CPU,
// not in wall time, so a loaded machine only makes it take longer.
func TestProcessCPU(t *testing.T) {
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	burnt := burnCPU(t, 300*time.Millisecond)
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// /proc counts in clock ticks (10 ms): a few ticks either way.
	if d := after - before; d < burnt/2 || d > 2*burnt+50*time.Millisecond {
		t.Fatalf("%s of CPU burnt (getrusage) read as %s", burnt, d)
	}
	if _, err := ProcessCPU(-1); err == nil {
		t.Fatal("ProcessCPU(-1) gave no error")
	}
}

// burnCPU spins until getrusage says the process used at least d more CPU
// (or 30 s of wall time pass, a failure), and returns how much it used.
func burnCPU(t *testing.T, d time.Duration) time.Duration {
	t.Helper()
	used := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start, x := used(), 0
	for deadline := time.Now().Add(30 * time.Second); used()-start < d; {
		if time.Now().After(deadline) {
			t.Fatalf("less than %s of CPU in 30 s of spinning (%d)", d, x)
		}
		for i := range 10000 {
			x ^= i * i
		}
	}
	return used() - start
}
