//go:build unix

package service

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProcessCPU: after burning CPU the process has used about that much
// more by the kernel's other account of it, /proc/self/stat (in clock
// ticks of 10 ms). The burn is measured in CPU, not wall time, so a loaded
// machine only makes it take longer.
func TestProcessCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/self/stat is Linux's")
	}
	stat := func() time.Duration {
		b, err := os.ReadFile("/proc/self/stat")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		return time.Duration(utime+stime) * 10 * time.Millisecond
	}
	before, beforeStat := ProcessCPU(), stat()
	x := 0
	for deadline := time.Now().Add(30 * time.Second); ProcessCPU()-before < 200*time.Millisecond; x++ {
		if time.Now().After(deadline) {
			t.Fatalf("ProcessCPU rose by %s in 30 s of spinning", ProcessCPU()-before)
		}
	}
	d, ds := ProcessCPU()-before, stat()-beforeStat
	if ds < d/2 || ds > 2*d+50*time.Millisecond {
		t.Fatalf("ProcessCPU rose by %s, /proc/self/stat by %s (%d)", d, ds, x)
	}
}
