package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
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
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("%s_CLIENT_CA: %w", prefix, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s_CLIENT_CA: %s holds no PEM certificate", prefix, clientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
