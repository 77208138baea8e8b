package chstore_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

// handshakes is a TLS listener on 127.0.0.1 with the PKI's server
// certificate that speaks no ClickHouse: it reports each connection's
// handshake (nil when it completed) and closes it.
func handshakes(t *testing.T, pki *ingesttest.PKI) (addr string, done <-chan error) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(pki.CertFile, pki.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	results := make(chan error, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
			_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
			results <- tc.Handshake()
			_ = tc.Close()
		}
	}()
	return ln.Addr().String(), results
}

// TestConnectTLS: a DSN with secure=true speaks TLS and verifies the
// server against ca_file (or the system's CAs, which do not know the test
// CA), skip_verify=true does not verify, and a DSN without secure speaks
// plain TCP. The server here is TLS without ClickHouse behind it, so every
// Connect fails after the handshake; what counts is the handshake, and
// that no error repeats the password.
func TestConnectTLS(t *testing.T) {
	pki := ingesttest.NewPKI(t, "clickhouse test CA")
	addr, results := handshakes(t, pki)
	const secret = "tls-test-password-42"
	for _, tc := range []struct {
		name, query   string
		handshake     bool   // the server completes the handshake
		clientRefuses string // in Connect's error when the client refuses the server
	}{
		{"verified by ca_file", "secure=true&ca_file=" + url.QueryEscape(pki.CAFile), true, ""},
		{"system CAs", "secure=true", false, "certificate"},
		{"skip_verify", "secure=true&skip_verify=true", true, ""},
		{"plain TCP", "secure=false", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := chstore.ParseDSN(fmt.Sprintf("clickhouse://writer:%s@%s/hinscore?%s", secret, addr, tc.query))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := chstore.Connect(ctx, d, "hinscore")
			if err == nil {
				_ = conn.Close()
				t.Fatal("connected to a server that speaks no ClickHouse")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Connect's error prints the password: %v", err)
			}
			if tc.clientRefuses != "" && !strings.Contains(err.Error(), tc.clientRefuses) {
				t.Errorf("Connect: %v, want the client to refuse the server's %s", err, tc.clientRefuses)
			}
			select {
			case herr := <-results:
				if (herr == nil) != tc.handshake {
					t.Errorf("server's handshake: %v, want completed %t", herr, tc.handshake)
				}
			case <-ctx.Done():
				t.Fatal("no connection reached the server")
			}
			for len(results) > 0 { // a retried dial of the same case
				<-results
			}
		})
	}
}

// TestConnectionErrorsHideThePassword opens ClickHouse with passwords that
// cannot work: a wrong one for a real user of the test server, one read
// from a file, one for a host that does not answer, and a CA file that is
// not PEM. Every error names the server, and none repeats the password.
func TestConnectionErrorsHideThePassword(t *testing.T) {
	server := chtest.ServerDSN(t).Addr()
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte("file-password-77\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("ca-password-55"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dsn, secret string }{
		{"clickhouse://analyst:wrong-password-13@" + server + "/hinscore", "wrong-password-13"},
		{"clickhouse://analyst@" + server + "/hinscore?password_file=" + url.QueryEscape(pw), "file-password-77"},
		{"clickhouse://writer:unreachable-pw-21@127.0.0.1:1/hinscore", "unreachable-pw-21"},
		{"clickhouse://writer:pem-pw-34@127.0.0.1:1/hinscore?secure=true&ca_file=" + url.QueryEscape(notPEM), "pem-pw-34"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, _, err := chstore.Open(ctx, tc.dsn)
		cancel()
		if err == nil {
			_ = conn.Close()
			t.Errorf("%s: opened", tc.secret)
			continue
		}
		if strings.Contains(err.Error(), tc.secret) {
			t.Errorf("the error prints the password %q: %v", tc.secret, err)
		}
		if !strings.Contains(err.Error(), "clickhouse://") {
			t.Errorf("the error does not name the server: %v", err)
		}
		t.Logf("%v", err)
	}
	// The same user without a password is let in: the file's password
	// above was sent, and refused.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := chstore.ParseDSN("clickhouse://analyst@" + server + "/default")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := chstore.Connect(ctx, d, "default")
	if err != nil {
		t.Fatalf("analyst without a password: %v", err)
	}
	_ = conn.Close()
}
