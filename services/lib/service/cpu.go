package service

import "time"

// CPUPerMessage runs f, which handles n messages, and returns the
// process's CPU time per message in microseconds (0 where unknown).
func CPUPerMessage(n int, f func()) float64 {
	c0 := ProcessCPU()
	f()
	return float64(ProcessCPU()-c0) / float64(time.Microsecond) / float64(n)
}
