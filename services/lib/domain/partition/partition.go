// Package partition decides which linker partition an exchange belongs to.
// Writers (the ingests) and readers (the linkers) must agree on the count;
// Count is its one owner, and services take it from one shared setting.
package partition

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
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
//
// A windowed key is partitioned by its base, so that the adjacent windows
// of one base are in the same partition.
func Key(correlationKey, eventID string) string {
	if correlationKey == "" {
		return eventID
	}
	if base, _, ok := SplitWindowed(correlationKey); ok {
		return base
	}
	return correlationKey
}

// WindowMark separates a windowed key's base from its window number.
//
// A windowed key names events that belong together only when they are
// near in event time: the two gateways' records of one cross-community
// transaction share what the transaction carried (a query id, a digest of
// the query or of the documents), and the same query sent again next week
// is another transaction. The key is the base and the number of the
// window of width w holding the event's time; two records of one
// transaction, less than w apart, are in the same window or in adjacent
// ones, and the linker looks in both neighbours before it starts a chain.
const WindowMark = "|@w"

// Windowed returns the windowed key of base for an event at tMs, in
// windows of widthMs.
func Windowed(base string, tMs, widthMs int64) string {
	n := tMs / widthMs
	if tMs < 0 && tMs%widthMs != 0 {
		n--
	}
	return base + WindowMark + strconv.FormatInt(n, 10)
}

// SplitWindowed returns a windowed key's base and window number; ok is
// false for any other key.
func SplitWindowed(key string) (base string, window int64, ok bool) {
	i := strings.LastIndex(key, WindowMark)
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(key[i+len(WindowMark):], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return key[:i], n, true
}

// TransactionMark ends the key of a cross-community transaction whose
// records share an id unique to it (an XCPD queryId, a WS-Addressing
// MessageID): no window is needed to tell it from another transaction, so
// records of it link at any delay (a deferred answer hours later).
const TransactionMark = "|@t"

// Transaction returns the key of a cross-community transaction with an id
// unique to it.
func Transaction(base string) string { return base + TransactionMark }

// TwoSided reports whether key is a cross-community transaction's, windowed
// or not: both gateways record it, and the linker keeps its decided chain
// long enough for the other gateway's record, delivered late, to join it.
func TwoSided(key string) bool {
	if strings.HasSuffix(key, TransactionMark) {
		return true
	}
	_, _, ok := SplitWindowed(key)
	return ok
}

// Neighbour returns the windowed key of the same base d windows away; ""
// when key is not windowed.
func Neighbour(key string, d int64) string {
	base, n, ok := SplitWindowed(key)
	if !ok {
		return ""
	}
	return base + WindowMark + strconv.FormatInt(n+d, 10)
}
