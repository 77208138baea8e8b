// Package ingest holds what the listening ingests (mllp-ingest,
// atna-ingest) share: their listeners' configuration, server TLS, the
// accounting of their connections within a limit, the one publish of an
// accepted message (its event with its bytes sealed) and dead letters that
// a shutdown's deadline can cut short.
package ingest

import (
	"fmt"
	"net"
	"strings"

	"github.com/hinscore/hinscore/services/lib/bus"
)

// Listener is one network's listening address.
type Listener struct{ Network, Addr string }

// Listeners are the listeners of an ingest, one per network.
type Listeners []Listener

// UnmarshalText reads "network=host:port,network=host:port" (ParseListeners).
func (l *Listeners) UnmarshalText(b []byte) error {
	ls, err := ParseListeners(string(b))
	if err != nil {
		return err
	}
	*l = ls
	return nil
}

// ParseListeners reads "network=host:port,network=host:port": at least
// one, each network a valid subject token and listed once.
func ParseListeners(s string) ([]Listener, error) {
	var out []Listener
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		network, addr, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want network=host:port", part)
		}
		if err := bus.ValidNetwork(network); err != nil {
			return nil, err
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		if seen[network] {
			return nil, fmt.Errorf("network %q listed twice", network)
		}
		seen[network] = true
		out = append(out, Listener{Network: network, Addr: addr})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no listener")
	}
	return out, nil
}
