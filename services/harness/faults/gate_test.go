package faults

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := c.Write([]byte(sc.Text() + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func echo(c net.Conn, line string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// TestGateOutage: open, the gate relays; closed, a relayed connection is
// cut and a new one refused; opened again, on the same address, it relays.
func TestGateOutage(t *testing.T) {
	g, err := StartGate(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	c, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := echo(c, "before"); err != nil || got != "before\n" {
		t.Fatalf("through the open gate: %q %v", got, err)
	}
	g.Close()
	if _, err := echo(c, "during"); err == nil {
		t.Error("a connection relayed before the outage still works during it")
	}
	if c2, err := net.DialTimeout("tcp", g.Addr(), time.Second); err == nil {
		c2.Close()
		t.Error("the closed gate accepted a connection")
	}
	if err := g.Open(); err != nil {
		t.Fatal(err)
	}
	c3, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	defer c3.Close()
	if got, err := echo(c3, "after"); err != nil || got != "after\n" {
		t.Fatalf("through the reopened gate: %q %v", got, err)
	}
	if err := g.Open(); err == nil {
		t.Error("an open gate opened again")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Outage(ctx, time.Hour); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("outage with its context ended: %v", err)
	}
}

func TestEachSample(t *testing.T) {
	const text = `# HELP hinscore_linker_pending_chains open requests
# TYPE hinscore_linker_pending_chains gauge
hinscore_linker_pending_chains{partition="0"} 3
hinscore_linker_pending_chains{partition="1"} 0
hinscore_linker_outcomes_total{class="fulfilled",network="a b{c}"} 1.5e+03
hinscore_linker_owned_partitions 4
hinscore_linker_caught_up{partition="0"} 1 1700000000000
`
	var got []string
	err := eachSample(strings.NewReader(text), func(name string, v float64) {
		got = append(got, name+"="+strconv.FormatFloat(v, 'f', -1, 64))
	})
	want := "hinscore_linker_pending_chains=3 hinscore_linker_pending_chains=0 hinscore_linker_outcomes_total=1500 hinscore_linker_owned_partitions=4 hinscore_linker_caught_up=1"
	if err != nil || strings.Join(got, " ") != want {
		t.Errorf("samples %q (%v), want %q", got, err, want)
	}
	if err := eachSample(strings.NewReader("hinscore_x{a=\"1\"}\n"), func(string, float64) {}); err == nil {
		t.Error("a sample without a value read without an error")
	}
}
