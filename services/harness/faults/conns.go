package faults

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FloodFrame is the i-th malformed frame of a flood: each one different
// (so every one is a dead letter of its own), cycling through the ways an
// HL7 message can be broken.
func FloodFrame(i int) []byte {
	n := strconv.Itoa(i)
	switch i % 4 {
	case 0:
		return []byte("flood " + n + ": this is not an HL7 message")
	case 1: // repeated encoding characters (an MSH without MSH-10 or MSH-9 would be recorded, flagged)
		return []byte("MSH|^^\\&|FLOOD|FLOOD|HINSCORE|HINSCORE|20261122000000+0000||ADT^A04^ADT_A01|FLOOD" + n + "|P|2.5.1\rEVN|A04|" + n + "\r")
	case 2: // a segment name that is none
		return []byte("MSH|^~\\&|FLOOD|FLOOD|HINSCORE|HINSCORE|20261122000000+0000||ADT^A04^ADT_A01|FLOOD" + n + "|P|2.5.1\rE!N|A04|" + n + "\r")
	default: // does not start with MSH
		return []byte("PID|1||" + n + "^^^FLOOD^MR\rMSH|^~\\&|FLOOD\r")
	}
}

// FloodResult counts the replies to a flood.
type FloodResult struct {
	Sent, Rejected, Accepted int
}

// Flood sends n malformed frames over one connection to addr, up to 64 in
// flight, and reads a reply to each one.
func Flood(ctx context.Context, addr string, n int) (FloodResult, error) {
	var res FloodResult
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return res, fmt.Errorf("faults.Flood: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	window := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var writeErr error
	wg.Go(func() {
		w := bufio.NewWriter(conn)
		for i := range n {
			select {
			case window <- struct{}{}:
			default:
				if writeErr = w.Flush(); writeErr != nil {
					return
				}
				window <- struct{}{}
			}
			frame := append(append([]byte{0x0b}, FloodFrame(i)...), 0x1c, 0x0d)
			if _, writeErr = w.Write(frame); writeErr != nil {
				return
			}
			res.Sent++
		}
		writeErr = w.Flush()
	})
	r := bufio.NewReader(conn)
	for range n {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		reply, err := r.ReadBytes(0x1c)
		if err != nil {
			wg.Wait()
			return res, fmt.Errorf("faults.Flood: reply %d: %w", res.Rejected+res.Accepted, err)
		}
		if _, err := r.ReadByte(); err != nil {
			wg.Wait()
			return res, fmt.Errorf("faults.Flood: %w", err)
		}
		<-window
		if strings.Contains(string(reply), "MSA|AA") || strings.Contains(string(reply), "MSA|CA") {
			res.Accepted++
		} else {
			res.Rejected++
		}
	}
	wg.Wait()
	if writeErr != nil {
		return res, fmt.Errorf("faults.Flood: write: %w", writeErr)
	}
	return res, nil
}

// IdleConns holds connections that take a listener's slots without
// completing a message: abandoned ones (nothing sent), slow ones (a frame
// trickled a byte every 100 ms, never finished) and cut ones (half a frame,
// then silence).
type IdleConns struct {
	conns []net.Conn
	wg    sync.WaitGroup
	stop  chan struct{}
}

// OpenIdleConns opens n such connections to addr, a third of each kind.
func OpenIdleConns(ctx context.Context, addr string, n int) (*IdleConns, error) {
	ic := &IdleConns{stop: make(chan struct{})}
	partial := []byte("\x0bMSH|^~\\&|SLOW|SLOW|HINSCORE|HINSCORE|20261122000000+0000||ADT^A04^ADT_A01|SLOW1|P|2.5.1\rEVN|A04\r")
	var d net.Dialer
	for i := range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			ic.Close()
			return nil, fmt.Errorf("faults.OpenIdleConns %d: %w", i, err)
		}
		ic.conns = append(ic.conns, c)
		switch i % 3 {
		case 1:
			ic.wg.Go(func() {
				t := time.NewTicker(100 * time.Millisecond)
				defer t.Stop()
				for j := 0; ; j = (j + 1) % len(partial) {
					select {
					case <-ic.stop:
						return
					case <-t.C:
					}
					if _, err := c.Write(partial[j : j+1]); err != nil {
						return
					}
				}
			})
		case 2:
			if _, err := c.Write(partial[:len(partial)/2]); err != nil {
				ic.Close()
				return nil, fmt.Errorf("faults.OpenIdleConns %d: %w", i, err)
			}
		}
	}
	return ic, nil
}

// Close closes every connection.
func (ic *IdleConns) Close() {
	select {
	case <-ic.stop:
	default:
		close(ic.stop)
	}
	for _, c := range ic.conns {
		c.Close()
	}
	ic.wg.Wait()
}

// ClosedAtOnce reports whether a new connection to addr is closed by the
// server within wait without sending anything (the listener is full).
func ClosedAtOnce(ctx context.Context, addr string, wait time.Duration) (bool, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, fmt.Errorf("faults.ClosedAtOnce: %w", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	var b [1]byte
	_, err = c.Read(b[:])
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false, nil
	}
	return err != nil, nil
}
