package natsembed

import "testing"

func TestSplitAddr(t *testing.T) {
	for in, want := range map[string]struct {
		host string
		port int
	}{"": {"127.0.0.1", -1}, "127.0.0.1:0": {"127.0.0.1", -1}, "0.0.0.0:4222": {"0.0.0.0", 4222}, ":4222": {"127.0.0.1", 4222}} {
		h, p, err := SplitAddr(in)
		if err != nil || h != want.host || p != want.port {
			t.Errorf("SplitAddr(%q) = %q, %d, %v", in, h, p, err)
		}
	}
	for _, bad := range []string{"localhost", "127.0.0.1:http", "127.0.0.1:70000"} {
		if _, _, err := SplitAddr(bad); err == nil {
			t.Errorf("SplitAddr(%q) accepted", bad)
		}
	}
}

// TestLoopback: the hosts production lets the embedded server listen on.
func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "127.0.0.2": true, "::1": true, "localhost": true,
		"0.0.0.0": false, "::": false, "10.0.0.4": false, "nats.example": false, "": false} {
		if got := Loopback(host); got != want {
			t.Errorf("Loopback(%q) = %v", host, got)
		}
	}
	if host, _, err := SplitAddr(":4222"); err != nil || !Loopback(host) {
		t.Errorf("a port alone listens on loopback: %q %v", host, err)
	}
}
