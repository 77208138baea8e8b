// Package partition decides which linker partition an exchange belongs to.
// Writers (the ingests) and readers (the linkers) must agree on the count;
// Count is its one owner, and services take it from one shared setting.
package partition

import (
	"fmt"
	"hash/fnv"
)

// Count is the number of partitions of EVENTS (events.<partition>.<network>).
type Count int

// Default is the count when none is configured.
const Default Count = 4

// Max bounds the count (a subject per partition, a linker lease each).
const Max Count = 1024

// Validate reports a count outside 1..Max.
func (n Count) Validate() error {
	if n < 1 || n > Max {
		return fmt.Errorf("partition count %d: want 1..%d", n, Max)
	}
	return nil
}

// Of maps a correlation key to one of n partitions (FNV-1a), so a request
// and its answers always meet in the same linker.
func Of(correlationKey string, n int) uint32 {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(correlationKey))
	return h.Sum32() % uint32(n)
}

// Key is what an exchange is partitioned by: its correlation key, or its
// event id when it has none (a message that links to nothing still goes
// somewhere, and always to the same place).
func Key(correlationKey, eventID string) string {
	if correlationKey == "" {
		return eventID
	}
	return correlationKey
}
