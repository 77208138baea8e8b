//go:build unix

package service

import (
	"syscall"
	"time"
)

// ProcessCPU is the user and system CPU time this process has used so far:
// benchmarks print CPU per message beside their rates, a figure the shared
// cores disturb less than the rates themselves.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
