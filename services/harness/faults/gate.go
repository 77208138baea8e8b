package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Gate is a TCP relay in front of a server (the writer's ClickHouse in the
// short suite) that a scenario can close and open again: closed, it stops
// listening (new connections are refused) and cuts every relayed
// connection, as a stopped server would; opened, it listens again on the
// same address. It lets the short suite take ClickHouse away from the
// writer without stopping the server other tests share.
type Gate struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// StartGate opens a gate on a free loopback port relaying to target.
func StartGate(target string) (*Gate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faults.StartGate: %w", err)
	}
	g := &Gate{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	g.serve(ln)
	return g, nil
}

// Addr is the address clients dial instead of the target's.
func (g *Gate) Addr() string { return g.addr }

func (g *Gate) serve(ln net.Listener) {
	g.ln = ln
	g.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.wg.Go(func() { g.relay(c) })
		}
	})
}

// relay copies both ways between a client and a new connection to the
// target until either side ends or the gate cuts them.
func (g *Gate) relay(client net.Conn) {
	server, err := net.Dial("tcp", g.target)
	if err != nil {
		client.Close()
		return
	}
	if !g.track(client, server) {
		return
	}
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	wg.Go(func() { pipe(server, client) })
	wg.Go(func() { pipe(client, server) })
	wg.Wait()
	g.mu.Lock()
	delete(g.conns, client)
	delete(g.conns, server)
	g.mu.Unlock()
}

// track records a relayed pair, or closes it when the gate closed
// meanwhile.
func (g *Gate) track(client, server net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil {
		client.Close()
		server.Close()
		return false
	}
	g.conns[client], g.conns[server] = struct{}{}, struct{}{}
	return true
}

// Close stops listening and cuts every relayed connection.
func (g *Gate) Close() {
	g.mu.Lock()
	if g.ln != nil {
		g.ln.Close()
		g.ln = nil
	}
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
}

// Open listens again on the gate's address.
func (g *Gate) Open() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		return errors.New("faults.Gate.Open: already open")
	}
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		return fmt.Errorf("faults.Gate.Open %s: %w", g.addr, err)
	}
	g.serve(ln)
	return nil
}

// Stop closes the gate for good and waits for its goroutines.
func (g *Gate) Stop() {
	g.Close()
	g.wg.Wait()
}

// Outage closes the gate for d (the fault's length; less when ctx ends)
// and opens it again.
func (g *Gate) Outage(ctx context.Context, d time.Duration) error {
	g.Close()
	var werr error
	select {
	case <-time.After(d):
	case <-ctx.Done():
		werr = ctx.Err()
	}
	return errors.Join(werr, g.Open())
}
