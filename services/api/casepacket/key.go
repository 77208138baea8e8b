package casepacket

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// EnvSigningKey and EnvSigningKeyFile name the packet's signing key: the
// key itself, or a file holding it (as the api's tokens and the raw keys
// are given).
const (
	EnvSigningKey     = "HINSCORE_CASE_SIGNING_KEY"
	EnvSigningKeyFile = "HINSCORE_CASE_SIGNING_KEY_FILE"
)

// SigningKey is the configuration of whoever builds packets.
type SigningKey struct {
	Key *PrivateKey `env:"HINSCORE_CASE_SIGNING_KEY" file:"HINSCORE_CASE_SIGNING_KEY_FILE" help:"the Ed25519 key that signs case packets: a PEM PKCS #8 private key (openssl genpkey -algorithm ed25519) or the base64 of its 32-byte seed; better in the file HINSCORE_CASE_SIGNING_KEY_FILE (mode 0600). Required to build a packet; its public key is printed with every packet and written into it"`
}

// Require names the variables when no key is given (the key is optional
// for the api, which then builds no packet; the command line needs it).
func (k SigningKey) Require() error {
	if k.Key == nil {
		return fmt.Errorf("%s or %s: no case signing key", EnvSigningKey, EnvSigningKeyFile)
	}
	return nil
}

// PrivateKey is an Ed25519 private key read from configuration.
type PrivateKey struct{ key ed25519.PrivateKey }

// NewPrivateKey wraps a key (tests, and whoever made one in code).
func NewPrivateKey(k ed25519.PrivateKey) *PrivateKey { return &PrivateKey{key: k} }

// Ed25519 returns the key.
func (k *PrivateKey) Ed25519() ed25519.PrivateKey { return k.key }

// Public is the base64 of the public key, as build prints it.
func (k *PrivateKey) Public() string { return PublicKeyString(k.key.Public().(ed25519.PublicKey)) }

// UnmarshalText reads a PEM PKCS #8 Ed25519 private key or the base64 of
// a 32-byte seed. Errors never quote the text: it is a secret.
func (k *PrivateKey) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if block, _ := pem.Decode([]byte(s)); block != nil {
		parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return errors.New("case signing key: a PEM block that is not a PKCS #8 private key")
		}
		ed, ok := parsed.(ed25519.PrivateKey)
		if !ok {
			return fmt.Errorf("case signing key: a %T, not an Ed25519 key", parsed)
		}
		k.key = ed
		return nil
	}
	seed, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(seed) != ed25519.SeedSize {
		return errors.New("case signing key: want a PEM PKCS #8 Ed25519 private key or the base64 of a 32-byte seed")
	}
	k.key = ed25519.NewKeyFromSeed(seed)
	return nil
}

// MarshalPEM is the key as a PEM PKCS #8 block (what a key file holds).
func (k *PrivateKey) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.key)
	if err != nil {
		return nil, fmt.Errorf("casepacket.MarshalPEM: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// PublicKeyString is how a public key is printed and written: base64 of
// its 32 bytes.
func PublicKeyString(k ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(k) }

// ParsePublicKey reads a public key as PublicKeyString writes it, or a
// PEM PKIX public key (openssl pkey -pubout).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if block, _ := pem.Decode([]byte(s)); block != nil {
		parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		ed, ok := parsed.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key: a %T, not an Ed25519 key", parsed)
		}
		return ed, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("public key: want the base64 of 32 bytes (as case build prints it) or a PEM public key")
	}
	return ed25519.PublicKey(b), nil
}
