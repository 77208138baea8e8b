//go:build unix

package service

import (
	"testing"
	"time"
)

// TestProcessCPU: after 200 ms of busy loop the process has used about that
// much more CPU.
func TestProcessCPU(t *testing.T) {
	before := ProcessCPU()
	x := 0
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
		x++
	}
	if d := ProcessCPU() - before; d < 100*time.Millisecond || d > 2*time.Second {
		t.Fatalf("200 ms of busy loop read as %s of CPU (%d)", d, x)
	}
}
