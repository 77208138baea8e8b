package ingesttest

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// MemoryPeak samples the process's memory in use (heap spans in use and
// goroutine stacks) while an attack runs, for a test that bounds what the
// attack costs the service. The service runs in the test's process, so
// the figure is the service's plus the test's own.
type MemoryPeak struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func inUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// StartMemoryPeak collects garbage, notes the memory in use as the base
// and samples it every 5 ms until Check.
func StartMemoryPeak() *MemoryPeak {
	runtime.GC()
	m := &MemoryPeak{base: inUse(), stop: make(chan struct{}), done: make(chan struct{})}
	m.peak.Store(m.base)
	go func() {
		defer close(m.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
			if v := inUse(); v > m.peak.Load() {
				m.peak.Store(v)
			}
		}
	}()
	return m
}

// Check stops the sampling, logs the peak above the base and fails t when
// it passed bound bytes; it returns the peak above the base.
func (m *MemoryPeak) Check(t testing.TB, attack string, bound uint64) uint64 {
	t.Helper()
	close(m.stop)
	<-m.done
	if v := inUse(); v > m.peak.Load() {
		m.peak.Store(v)
	}
	grew := m.peak.Load() - m.base
	t.Logf("%s: peak memory in use %.1f MiB above the base of %.1f MiB (bound %.0f MiB)",
		attack, float64(grew)/(1<<20), float64(m.base)/(1<<20), float64(bound)/(1<<20))
	if grew > bound {
		t.Errorf("%s: memory in use grew %.1f MiB, over the bound of %.0f MiB", attack, float64(grew)/(1<<20), float64(bound)/(1<<20))
	}
	return grew
}
