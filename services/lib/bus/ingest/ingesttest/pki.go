// Package ingesttest gives the listening ingests' tests what they share:
// a certificate authority of their own, with server and client
// certificates, made with crypto/x509 in the test's directory.
package ingesttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a test CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA. The CA's certificate, the server's
// certificate and its key are PEM files (CAFile, CertFile, KeyFile).
type PKI struct {
	Dir                       string
	CAFile, CertFile, KeyFile string
	Pool                      *x509.CertPool // the CA, for a client's RootCAs
	Client                    tls.Certificate

	t      testing.TB
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

// NewPKI makes a CA named name with its certificates, valid for an hour.
func NewPKI(t testing.TB, name string) *PKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, der []byte) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := &PKI{Dir: dir, Pool: x509.NewCertPool(), t: t, ca: ca, caKey: caKey, serial: 1}
	p.Pool.AddCert(ca)
	srvDER, srvKey := p.leaf(name+" server", x509.ExtKeyUsageServerAuth)
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	p.CAFile, p.CertFile = write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER)
	p.KeyFile = write("server.key", "EC PRIVATE KEY", srvKeyDER)
	p.Client = p.ClientNaming()
	return p
}

// ClientNaming is a client certificate of the CA carrying uris as its URI
// SANs (e.g. "urn:hinscore:network:neta").
func (p *PKI) ClientNaming(uris ...string) tls.Certificate {
	p.t.Helper()
	var us []*url.URL
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			p.t.Fatal(err)
		}
		us = append(us, parsed)
	}
	der, key := p.leaf(p.ca.Subject.CommonName+" peer", x509.ExtKeyUsageClientAuth, us...)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// leaf is a certificate the CA signs, for 127.0.0.1 and uris.
func (p *PKI) leaf(cn string, usage x509.ExtKeyUsage, uris ...*url.URL) ([]byte, *ecdsa.PrivateKey) {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, URIs: uris}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	return der, key
}

// ClientTLSWith is a client's configuration trusting the CA, presenting
// cert (of this PKI or another) whatever CAs the server asks for, as a
// client that is not Go's may.
func (p *PKI) ClientTLSWith(cert tls.Certificate) *tls.Config {
	cfg := p.ClientTLS(false)
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return cfg
}

// ClientTLS is a client's configuration trusting the CA, with the client
// certificate when withCert.
func (p *PKI) ClientTLS(withCert bool) *tls.Config {
	cfg := &tls.Config{RootCAs: p.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if withCert {
		cfg.Certificates = []tls.Certificate{p.Client}
	}
	return cfg
}
