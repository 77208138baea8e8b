package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/hinscore/hinscore/services/lib/bus"
)

// ServerTLS loads a listener's TLS configuration from PEM files: nil when
// cert is empty (plain TCP); TLS 1.2 or later; with clientCA, mutual TLS
// (client certificates required and verified against its CAs). prefix
// names the variables in errors (prefix+"_CERT", "_KEY", "_CLIENT_CA").
func ServerTLS(cert, key, clientCA, prefix string) (*tls.Config, error) {
	if cert == "" {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("%s_CERT/KEY: %w", prefix, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		if err := requireClients(tc, clientCA, prefix+"_CLIENT_CA"); err != nil {
			return nil, err
		}
	}
	return tc, nil
}

// requireClients makes tc require client certificates that the CAs in the
// PEM file caFile signed; name is the variable it came from.
func requireClients(tc *tls.Config, caFile, name string) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s: %s holds no PEM certificate", name, caFile)
	}
	tc.ClientCAs = pool
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	return nil
}

// TLSSet is the server TLS of each network's listener: one certificate
// for all, and the client CAs of the network where it has its own, so that
// a certificate of network A's CA is refused on network B's listener (the
// handshake fails: counted and logged as any failed handshake).
type TLSSet struct {
	all       *tls.Config
	byNetwork map[string]*tls.Config
}

// For returns the TLS configuration of network's listener; nil (plain TCP)
// for a nil set.
func (s *TLSSet) For(network string) *tls.Config {
	if s == nil {
		return nil
	}
	if tc, ok := s.byNetwork[network]; ok {
		return tc
	}
	return s.all
}

// Mutual reports whether network's listener requires client certificates.
func (s *TLSSet) Mutual(network string) bool {
	tc := s.For(network)
	return tc != nil && tc.ClientCAs != nil
}

// NetworkFiles maps networks to files, read from
// "network=path,network=path".
type NetworkFiles map[string]string

// UnmarshalText reads "network=path,network=path": each network a valid
// subject token, listed once.
func (m *NetworkFiles) UnmarshalText(b []byte) error {
	out := NetworkFiles{}
	for _, part := range strings.Split(string(b), ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		network, path, ok := strings.Cut(part, "=")
		if !ok || path == "" {
			return fmt.Errorf("%q: want network=path", part)
		}
		if err := bus.ValidNetwork(network); err != nil {
			return err
		}
		if _, dup := out[network]; dup {
			return fmt.Errorf("network %q listed twice", network)
		}
		out[network] = path
	}
	*m = out
	return nil
}
