package main

import (
	"strings"
	"testing"
	"time"
)

func TestHeldBackBy(t *testing.T) {
	for _, c := range []struct {
		name string
		st   step
		want string
	}{
		{"kept up", step{SentRate: 1000}, ""},
		{"a stage fell behind", step{Behind: true, SentRate: 1000, BacklogPeak: map[string]uint64{"EVENTS/linker": 50, "EVENTS/chwriter": 4000}}, "EVENTS/chwriter (backlog up to 4000"},
		{"the sending", step{Behind: true, SentRate: 600, BacklogPeak: map[string]uint64{"EVENTS/linker": 50}}, "sending: the ingest's ACKs came back at 600 of 1000"},
		{"the storing", step{Behind: true, SentRate: 990, StoreLag: 7 * time.Second, BacklogPeak: map[string]uint64{"OUTCOMES/chwriter": 10}}, "storing: events reached ClickHouse 7s after"},
	} {
		if got := heldBackBy(c.st, 1000); (c.want == "" && got != "") || !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: heldBackBy = %q, want it to start with %q", c.name, got, c.want)
		}
	}
}

func TestCPUShares(t *testing.T) {
	before := map[string]time.Duration{"linker": time.Second, "nats": 2 * time.Second}
	after := map[string]time.Duration{"linker": 3 * time.Second, "nats": 4 * time.Second, "restarted": time.Second}
	per, busy := cpuShares(before, after, 1000, 4*time.Second)
	if per["linker"] != 2000 || per["nats"] != 2000 {
		t.Fatalf("µs per event %v, want 2000 each", per)
	}
	if _, ok := per["restarted"]; ok {
		t.Fatal("a process not running at the start was counted")
	}
	if busy <= 0 {
		t.Fatalf("cores busy %g", busy)
	}
}
