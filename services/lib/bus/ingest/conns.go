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

// Conns accepts the connections of an ingest's listeners within a limit
// and keeps the open ones, so that a shutdown can stop them reading, wait
// for what they already read, and close them when its deadline passes.
type Conns struct {
	sem   chan struct{}
	force chan struct{} // closed when the shutdown's deadline passed
	wg    sync.WaitGroup

	mu     sync.Mutex
	closed bool
	open   map[Conn]struct{}
}

// NewConns accepts at most max connections at once.
func NewConns(max int) *Conns {
	return &Conns{sem: make(chan struct{}, max), force: make(chan struct{}), open: map[Conn]struct{}{}}
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

// Accept serves ln until it is closed: a connection within the limit is
// served by newConn(nc) in its own goroutine; one over the limit goes to
// over, which must close it. onErr hears of failed accepts other than the
// listener's close (retried after a pause).
func (c *Conns) Accept(ln net.Listener, newConn func(net.Conn) Conn, over func(net.Conn), onErr func(error)) {
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
		select {
		case c.sem <- struct{}{}:
		default:
			over(nc)
			continue
		}
		conn := newConn(nc)
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			_ = nc.Close()
			<-c.sem
			return
		}
		c.open[conn] = struct{}{}
		c.wg.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.wg.Done()
			conn.Serve()
			c.mu.Lock()
			delete(c.open, conn)
			c.mu.Unlock()
			<-c.sem
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
