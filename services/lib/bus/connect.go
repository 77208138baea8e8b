package bus

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
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
