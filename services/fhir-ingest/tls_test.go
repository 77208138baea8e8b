package fhiringest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/lib/service"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files in dir and returns their paths and the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fhir-ingest test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "fhir.crt"), filepath.Join(dir, "fhir.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// TestTLS: with a certificate and key configured the ingest serves HTTPS
// only: a post over TLS (trusting the self-signed certificate) is stored,
// plain HTTP on the same port and a client that does not trust the
// certificate store nothing.
func TestTLS(t *testing.T) {
	certFile, keyFile, cert := selfSigned(t, t.TempDir())
	h := newHarness(t, func(c *Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	if !strings.HasPrefix(h.base, "https://") {
		t.Fatalf("base %s", h.base)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	h.client = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	task := example(t, "task-requested.json")
	a := h.do(post{path: "/fhir/neta/Task", token: tokenA, body: task})
	if a.status != http.StatusCreated || !a.tls || a.header.Get("Location") != "/fhir/neta/Task/cdex-task-1/_history/1" {
		t.Fatalf("over TLS: %d tls=%v %s", a.status, a.tls, a.body)
	}
	if evs := h.heldOnce([][]byte{task}); len(evs) != 1 {
		t.Fatalf("%d events after the TLS post, want 1", len(evs))
	}
	resp, err := h.client.Get(h.base + "/fhir/neta/metadata")
	if err != nil || resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("metadata over TLS: %v %v", resp, err)
	}
	resp.Body.Close()

	// Plain HTTP to the TLS port: refused by the TLS layer, nothing stored.
	req, err := http.NewRequest(http.MethodPost, "http://"+h.srv.Addr()+"/fhir/neta/Task", strings.NewReader(string(example(t, "task-accepted.json"))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+tokenA)
	resp, err = (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS port: %d %s, want 400", resp.StatusCode, body)
	}
	// A client that does not trust the certificate does not get through.
	_, err = (&http.Client{Timeout: 20 * time.Second}).Get(h.base + "/fhir/neta/metadata")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("untrusting client: %v, want x509.UnknownAuthorityError", err)
	}
	if evs := h.heldOnce([][]byte{task}); len(evs) != 1 {
		t.Errorf("%d events after the refused posts, want the one accepted", len(evs))
	}
}

// TestTLSBadKeyPair: a certificate that cannot be loaded fails Start (it
// does not leave a server that listens and never answers).
func TestTLSBadKeyPair(t *testing.T) {
	h := newHarness(t, nil)
	dir := t.TempDir()
	certFile, _, _ := selfSigned(t, dir)
	_, otherKey, _ := selfSigned(t, t.TempDir())
	cases := []struct{ name, cert, key string }{
		{"missing files", filepath.Join(dir, "none.crt"), filepath.Join(dir, "none.key")},
		{"key of another certificate", certFile, otherKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := h.srv.cfg
			cfg.TLSCert, cfg.TLSKey = tc.cert, tc.key
			srv, err := New(cfg, service.Deps{JetStream: h.js, Log: zerolog.Nop(), Metrics: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			err = srv.Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), "TLS key pair") {
				t.Errorf("Start: %v, want the TLS key pair error", err)
			}
			if srv.Addr() != "" {
				t.Errorf("listening on %s after a failed Start", srv.Addr())
			}
			if err := srv.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}
