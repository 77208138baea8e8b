package ingest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// SelfSigned is a certificate that signs itself, for a listener's TLS
// where no authority is at hand: the demo and end-to-end tests, never a
// deployment. CertFile and KeyFile are PEM files (Limits.TLSCert and
// TLSKey); Pool trusts the certificate, for the senders' RootCAs.
type SelfSigned struct {
	CertFile, KeyFile string
	Pool              *x509.CertPool
}

// NewSelfSigned writes cert.pem and key.pem (ECDSA P-256) into dir for
// hosts (IP addresses or DNS names), valid from an hour before now until
// validity after it.
func NewSelfSigned(dir string, now time.Time, validity time.Duration, hosts ...string) (SelfSigned, error) {
	if len(hosts) == 0 || validity <= 0 {
		return SelfSigned{}, errors.New("ingest.NewSelfSigned: give a host and a positive validity")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return SelfSigned{}, fmt.Errorf("ingest.NewSelfSigned: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return SelfSigned{}, fmt.Errorf("ingest.NewSelfSigned: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return SelfSigned{}, fmt.Errorf("ingest.NewSelfSigned: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return SelfSigned{}, fmt.Errorf("ingest.NewSelfSigned: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return SelfSigned{}, fmt.Errorf("ingest.NewSelfSigned: %w", err)
	}
	s := SelfSigned{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), Pool: x509.NewCertPool()}
	s.Pool.AddCert(cert)
	if err := os.WriteFile(s.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return SelfSigned{}, fmt.Errorf("ingest.NewSelfSigned: %w", err)
	}
	if err := os.WriteFile(s.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return SelfSigned{}, fmt.Errorf("ingest.NewSelfSigned: %w", err)
	}
	return s, nil
}
