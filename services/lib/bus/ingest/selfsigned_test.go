package ingest

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// TestSelfSignedServesTLS: the files load as a listener's TLS and a
// client trusting the pool completes a handshake for each host named, and
// for no other.
func TestSelfSignedServesTLS(t *testing.T) {
	s, err := NewSelfSigned(t.TempDir(), time.Now(), time.Hour, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ServerTLS(s.CertFile, s.KeyFile, "", "TEST")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	for name, wantOK := range map[string]bool{"127.0.0.1": true, "localhost": true, "other.example": false} {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(),
			&tls.Config{RootCAs: s.Pool, ServerName: name, MinVersion: tls.VersionTLS12})
		if (err == nil) != wantOK {
			t.Errorf("%s: handshake error %v, want success %v", name, err, wantOK)
		}
		if c != nil {
			c.Close()
		}
	}
	if _, err := NewSelfSigned(t.TempDir(), time.Now(), time.Hour); err == nil {
		t.Error("no host: no error")
	}
}
