//go:build !unix

package mllpingest

import "time"

// processCPU is unknown here: the CPU figures read 0.
func processCPU() time.Duration { return 0 }
