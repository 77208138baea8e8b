package ingesttest

import (
	"testing"
	"time"
)

// WaitFor polls cond every 10 ms for at most 10 s and fails the test,
// naming what it waited for, when cond never holds. A listener counts and
// logs a refused connection in its own goroutine, after the client has
// already seen the refusal: a test reads such a count through WaitFor.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
