package ingest

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// Conn is one accepted connection as Conns drives it.
type Conn interface {
	// Serve runs the connection until it ends and closes it.
	Serve()
	// StopReading makes it stop at its next read and finish what it read.
	StopReading()
	// Close closes it at once (a shutdown's deadline passed).
	Close() error
}

// Why a connection was refused: the reason label of the ingests' refusal
// counters.
const (
	RefusedMaxConns = "max_conns"          // all listeners together at MaxConns
	RefusedListener = "max_conns_listener" // its listener at MaxConnsPerListener
	RefusedRemote   = "max_conns_remote"   // its host at MaxConnsPerRemote on that listener
)

// ConnLimits bound the open connections: of all listeners together, of
// one listener, of one remote host on one listener (Limits).
type ConnLimits struct{ Max, PerListener, PerRemote int }

// Conns accepts the connections of an ingest's listeners within its
// ConnLimits and keeps the open ones, so that a shutdown can stop them
// reading, wait for what they already read, and close them when its
// deadline passes.
type Conns struct {
	limits ConnLimits
	force  chan struct{} // closed when the shutdown's deadline passed
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	open     map[Conn]struct{}
	total    int
	listener map[string]int // by network
	remote   map[string]int // by network and remote host
}

// NewConns accepts connections within limits.
func NewConns(limits ConnLimits) *Conns {
	return &Conns{limits: limits, force: make(chan struct{}), open: map[Conn]struct{}{},
		listener: map[string]int{}, remote: map[string]int{}}
}

// Force is closed once Shutdown's deadline passed: whoever waits for a
// PubAck stops waiting.
func (c *Conns) Force() <-chan struct{} { return c.force }

// Go runs fn in a goroutine that Shutdown waits for (an accept loop, a
// refusal, a datagram reader). It reports false, and does not run fn,
// once Shutdown began.
func (c *Conns) Go(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
	return true
}

// remoteKey names a connection's host (its address without the port) on
// network's listener.
func remoteKey(network string, nc net.Conn) string {
	addr := nc.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return network + " " + addr
}

// admit counts a connection of network from remote in, or names the limit
// it would pass ("" when admitted).
func (c *Conns) admit(network, remote string) string {
	switch {
	case c.remote[remote] >= c.limits.PerRemote:
		return RefusedRemote
	case c.listener[network] >= c.limits.PerListener:
		return RefusedListener
	case c.total >= c.limits.Max:
		return RefusedMaxConns
	}
	c.remote[remote]++
	c.listener[network]++
	c.total++
	return ""
}

// release counts a connection admitted by admit out.
func (c *Conns) release(network, remote string) {
	c.total--
	c.listener[network]--
	if c.remote[remote]--; c.remote[remote] == 0 {
		delete(c.remote, remote)
	}
}

// Accept serves network's listener ln until it is closed: a connection
// within the limits is served by newConn(nc) in its own goroutine; one
// over a limit goes at once to over with the limit's name (Refused...),
// and over must close it. onErr hears of failed accepts other than the
// listener's close (retried after a pause).
func (c *Conns) Accept(network string, ln net.Listener, newConn func(net.Conn) Conn, over func(nc net.Conn, reason string), onErr func(error)) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			onErr(err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		remote := remoteKey(network, nc)
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			_ = nc.Close()
			return
		}
		if reason := c.admit(network, remote); reason != "" {
			c.mu.Unlock()
			over(nc, reason)
			continue
		}
		conn := newConn(nc)
		c.open[conn] = struct{}{}
		c.wg.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.wg.Done()
			conn.Serve()
			c.mu.Lock()
			delete(c.open, conn)
			c.release(network, remote)
			c.mu.Unlock()
		}()
	}
}

// Shutdown stops every open connection reading and waits for them and for
// every goroutine of Go; when ctx ends first, it closes Force and the
// connections, waits, and returns ctx's error. The caller closes its
// listeners first. Call it once.
func (c *Conns) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	for conn := range c.open {
		conn.StopReading()
	}
	c.mu.Unlock()
	drained := make(chan struct{})
	go func() { c.wg.Wait(); close(drained) }()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		close(c.force)
		c.mu.Lock()
		for conn := range c.open {
			_ = conn.Close()
		}
		c.mu.Unlock()
		<-drained
		return ctx.Err()
	}
}
