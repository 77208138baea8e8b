package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connect dials NATS with reconnects forever (a service outlives a NATS restart).
func Connect(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true),
	)
	if err != nil {
		return nil, fmt.Errorf("bus.Connect %s: %w", url, err)
	}
	return nc, nil
}

// AwaitAck waits for the acknowledgement of an asynchronous publish, at
// most timeout: a PubAck that never comes (a stream leader lost mid-publish)
// is an error the publisher can retry, not a hang.
func AwaitAck(ctx context.Context, f jetstream.PubAckFuture, timeout time.Duration) (*jetstream.PubAck, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-t.C:
		return nil, fmt.Errorf("no PubAck within %s", timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
