package chwriter

import "time"

// SetAfterInsert installs a hook that runs after each batch is written and
// before it is acked, for the crash test. Call it before Start.
func SetAfterInsert(w *Writer, hook func(label string)) { w.afterInsert = hook }

// MarkDirty marks months of outcomes_daily as needing a rebuild.
func MarkDirty(w *Writer, months ...time.Time) { w.markDirty(months) }
