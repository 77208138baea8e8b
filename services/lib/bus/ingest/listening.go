package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrClosed is returned by Start after Shutdown.
var ErrClosed = errors.New("ingest: server shut down")

// Listening is the life of a listening ingest's server: its stream and
// datagram listeners, whether it started or shut down, its connections.
// A server embeds it for Addrs, UDPAddrs, Ready and Shutdown and starts
// it with what serves each listener.
type Listening struct {
	name  string // the server's package, in errors
	js    jetstream.JetStream
	conns *Conns
	// deadLetters bounds the dead-letter publishes of all connections.
	deadLetters *DeadLetters

	mu      sync.Mutex
	started bool
	closed  bool
	done    chan struct{} // closed when Shutdown has finished draining
	streams map[string]net.Listener
	packets map[string]net.PacketConn
}

// NewListening is the life of a server named name (its package, for
// errors) that stores through js and accepts stream connections within
// limits' connection limits.
func NewListening(name string, js jetstream.JetStream, limits Limits) *Listening {
	conns := NewConns(limits.ConnLimits())
	return &Listening{name: name, js: js, conns: conns, done: make(chan struct{}),
		deadLetters: NewDeadLetters(js, DeadLetterWorkers, conns.Force()),
		streams:     map[string]net.Listener{}, packets: map[string]net.PacketConn{}}
}

// Conns are the server's connections.
func (l *Listening) Conns() *Conns { return l.conns }

// DeadLetters is the server's bounded pool of dead-letter publishes.
func (l *Listening) DeadLetters() *DeadLetters { return l.deadLetters }

// Listen opens every listener (TCP, TLS over it when tlsCfg is set, with
// the network's own client CAs where it has them; UDP)
// and returns once all listen, each then served by serve or serveUDP in
// a goroutine Shutdown waits for. A second Start does nothing; a Start
// after Shutdown fails with ErrClosed.
func (l *Listening) Listen(ctx context.Context, streams, datagrams []Listener, tlsCfg *TLSSet,
	serve func(network string, ln net.Listener), serveUDP func(network string, pc net.PacketConn)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("%s.Start: %w", l.name, ErrClosed)
	}
	if l.started {
		return nil
	}
	if err := l.open(ctx, streams, datagrams, tlsCfg); err != nil {
		l.closeListeners()
		l.streams, l.packets = map[string]net.Listener{}, map[string]net.PacketConn{}
		return fmt.Errorf("%s.Start %w", l.name, err)
	}
	l.started = true
	for network, ln := range l.streams {
		l.conns.Go(func() { serve(network, ln) })
	}
	for network, pc := range l.packets {
		l.conns.Go(func() { serveUDP(network, pc) })
	}
	return nil
}

func (l *Listening) open(ctx context.Context, streams, datagrams []Listener, tlsCfg *TLSSet) error {
	var lc net.ListenConfig
	for _, s := range streams {
		ln, err := lc.Listen(ctx, "tcp", s.Addr)
		if err != nil {
			return fmt.Errorf("%s=%s: %w", s.Network, s.Addr, err)
		}
		if tc := tlsCfg.For(s.Network); tc != nil {
			ln = tls.NewListener(ln, tc)
		}
		l.streams[s.Network] = ln
	}
	for _, d := range datagrams {
		pc, err := lc.ListenPacket(ctx, "udp", d.Addr)
		if err != nil {
			return fmt.Errorf("udp %s=%s: %w", d.Network, d.Addr, err)
		}
		l.packets[d.Network] = pc
	}
	return nil
}

func (l *Listening) closeListeners() {
	for _, ln := range l.streams {
		_ = ln.Close()
	}
	for _, pc := range l.packets {
		_ = pc.Close()
	}
}

// Addrs maps each network to the address its stream listener took.
func (l *Listening) Addrs() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]string, len(l.streams))
	for n, ln := range l.streams {
		out[n] = ln.Addr().String()
	}
	return out
}

// UDPAddrs maps each network to the address its datagram listener took.
func (l *Listening) UDPAddrs() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]string, len(l.packets))
	for n, pc := range l.packets {
		out[n] = pc.LocalAddr().String()
	}
	return out
}

// Ready reports whether the server listens and JetStream answers.
func (l *Listening) Ready(ctx context.Context) error {
	l.mu.Lock()
	started, closed := l.started, l.closed
	l.mu.Unlock()
	if !started || closed {
		return fmt.Errorf("%s: not listening", l.name)
	}
	if _, err := l.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("%s.Ready: %w", l.name, err)
	}
	return nil
}

// Shutdown stops accepting and receiving, lets the connections finish
// what they read (Conns.Shutdown), then returns; when ctx ends first, it
// stops waiting and closes everything. Idempotent, safe before Start.
func (l *Listening) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		select {
		case <-l.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%s.Shutdown: %w", l.name, ctx.Err())
		}
	}
	l.closed = true
	l.closeListeners()
	l.mu.Unlock()
	defer close(l.done)
	if err := l.conns.Shutdown(ctx); err != nil {
		return fmt.Errorf("%s.Shutdown: %w", l.name, err)
	}
	return nil
}
