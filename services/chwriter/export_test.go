package chwriter

// SetAfterInsert installs a hook that runs after each batch is written and
// before it is acked, for the crash test. Call it before Start.
func SetAfterInsert(w *Writer, hook func(label string)) { w.afterInsert = hook }
