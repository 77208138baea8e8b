package faults

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The hostile inputs of the malformed flood that aim at the ingests'
// limits rather than at their parsers: each must cost one feed only.

// BatchFloodFrame is one MLLP batch frame of size bytes: "MSH\r", a
// one-segment message, as often as fits between BHS and BTS (about
// 262,000 at 1 MiB), and how many messages it holds.
func BatchFloodFrame(size int) ([]byte, int) {
	head, tail := "BHS|^~\\&|FLOOD|FLOOD|HINSCORE|HINSCORE|20261122000000+0000\r", "BTS\r"
	n := (size - len(head) - len(tail)) / 4
	return []byte(head + strings.Repeat("MSH\r", n) + tail), n
}

// BatchFlood sends BatchFloodFrame(size) to addr and returns the one
// reply the ingest must send (refused whole), within 30 s.
func BatchFlood(ctx context.Context, addr string, size int) ([]byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faults.BatchFlood: %w", err)
	}
	defer conn.Close()
	frame, _ := BatchFloodFrame(size)
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(append(append([]byte{0x0b}, frame...), 0x1c, 0x0d)); err != nil {
		return nil, fmt.Errorf("faults.BatchFlood: %w", err)
	}
	reply, err := bufio.NewReader(conn).ReadBytes(0x1c)
	if err != nil {
		return nil, fmt.Errorf("faults.BatchFlood: reply: %w", err)
	}
	return reply, nil
}

// HostFlood opens n connections to addr from one host, keeps them
// for wait and reports how many the listener closed meanwhile (those
// over its limit per remote host).
func HostFlood(ctx context.Context, addr string, n int, wait time.Duration) (closed int, err error) {
	var d net.Dialer
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return 0, fmt.Errorf("faults.HostFlood: %w", err)
		}
		conns = append(conns, c)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(wait)
	for _, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(deadline)
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					return
				}
				mu.Lock()
				closed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return closed, nil
}

// Trickle opens n connections to addr that send a CR every 100 ms and
// never a frame, until the server closes them or most has passed, and
// returns how long the longest lasted.
func Trickle(ctx context.Context, addr string, n int, most time.Duration) (time.Duration, error) {
	var d net.Dialer
	var mu sync.Mutex
	var longest time.Duration
	var wg sync.WaitGroup
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			wg.Wait()
			return 0, fmt.Errorf("faults.Trickle: %w", err)
		}
		wg.Go(func() {
			defer c.Close()
			start := time.Now()
			var b [1]byte
			for time.Since(start) < most && ctx.Err() == nil {
				if _, err := c.Write([]byte("\r")); err != nil {
					break
				}
				_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if _, err := c.Read(b[:]); err != nil {
					if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
						break
					}
				}
			}
			mu.Lock()
			longest = max(longest, time.Since(start))
			mu.Unlock()
		})
	}
	wg.Wait()
	return longest, nil
}

// NDJSONBadLines posts one NDJSON body of n lines none of which can be
// stored (each a distinct Task cut short: every one a dead letter) to
// network's FHIR endpoint, and returns the reply: 200, every line
// counted, the first hundred listed.
func NDJSONBadLines(ctx context.Context, url, network string, n int) (status int, body string, err error) {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"resourceType\":\"Task\",\"id\":\"flood-many-%d\",\n", i)
	}
	a, err := postFHIR(ctx, &http.Client{Timeout: 2 * time.Minute}, url+"/fhir/"+network+"/", FHIRToken(network), "application/fhir+ndjson", []byte(b.String()))
	if err != nil {
		return 0, "", fmt.Errorf("faults.NDJSONBadLines: %w", err)
	}
	return a.Status, string(a.Body), nil
}
