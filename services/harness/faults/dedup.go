package faults

import (
	"context"
	"fmt"
	"time"
)

// SetDuplicateWindow changes a stream's de-duplication window (Nats-Msg-Id
// within it is stored once): a scenario that shrinks EVENTS' makes every
// copy re-sent later reach the linker and the writer, so that their own
// de-duplication is what keeps the counts exact.
func SetDuplicateWindow(ctx context.Context, natsURL, stream string, d time.Duration) error {
	js, done, err := connectJS(natsURL)
	if err != nil {
		return fmt.Errorf("faults.SetDuplicateWindow: %w", err)
	}
	defer done()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("faults.SetDuplicateWindow: %w", err)
	}
	cfg := st.CachedInfo().Config
	cfg.Duplicates = d
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("faults.SetDuplicateWindow %s: %w", stream, err)
	}
	return nil
}

// StreamMessages is the number of messages a stream holds.
func StreamMessages(ctx context.Context, natsURL, stream string) (uint64, error) {
	js, done, err := connectJS(natsURL)
	if err != nil {
		return 0, fmt.Errorf("faults.StreamMessages: %w", err)
	}
	defer done()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("faults.StreamMessages: %w", err)
	}
	return st.CachedInfo().State.Msgs, nil
}
