package mllpingest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
	"github.com/hinscore/hinscore/services/lib/hl7v2/toevent"
	"github.com/hinscore/hinscore/services/lib/service"
)

// DevPatientKey is the patient-token key used when none is configured. It is
// public, so tokens made with it protect nothing: New logs a warning.
const DevPatientKey = patient.DevKey

// Listener is one network's MLLP listening address.
type Listener struct{ Network, Addr string }

// Config configures the MLLP ingest.
type Config struct {
	Listeners    []Listener // HINSCORE_MLLP_LISTENERS="default=127.0.0.1:2575,netb=127.0.0.1:2576"
	Partitions   int        // HINSCORE_PARTITIONS: EVENTS subject partitions
	PatientKey   []byte     // HINSCORE_PATIENT_KEY: hex (32+ digits) or a plain string
	PatientKeyID string     // HINSCORE_PATIENT_KEY_ID
	// RawKeys (HINSCORE_RAW_KEYS, "id:<64 hex>[,id:<64 hex>...]", the
	// first seals) seal each message's bytes in its event (seal.RawKeys);
	// only the ingests and the api hold them.
	RawKeys       *seal.RawKeys
	MaxFrameBytes int           // HINSCORE_MLLP_MAX_FRAME
	IdleTimeout   time.Duration // HINSCORE_MLLP_IDLE_TIMEOUT: abandoned connections are closed
	MaxConns      int           // HINSCORE_MLLP_MAX_CONNS
	MaxInFlight   int           // HINSCORE_MLLP_MAX_INFLIGHT: per connection, messages awaiting their PubAck
	// ReadTimeout (HINSCORE_MLLP_READ_TIMEOUT) is how long a frame may take
	// to arrive once its first byte is in (and the TLS handshake), plus one
	// second per MinRate bytes: a peer that trickles a frame slower than
	// that (slow-loris) or stops half-way is cut off.
	ReadTimeout time.Duration
	MinRate     int // HINSCORE_MLLP_MIN_RATE, bytes/s
	// TLS: HINSCORE_MLLP_TLS_CERT and HINSCORE_MLLP_TLS_KEY (PEM files) turn
	// TLS on for every listener; HINSCORE_MLLP_TLS_CLIENT_CA (PEM) also
	// requires a client certificate signed by one of its CAs (mutual TLS).
	TLSCert, TLSKey, TLSClientCA string
	// OrgDirectory (HINSCORE_ORG_DIRECTORY) is a CSV organisation directory
	// (toevent.ReadDirectory); empty: organisations as the messages spell them.
	OrgDirectory string
}

// Defaults.
const (
	DefaultListeners     = "default=127.0.0.1:2575"
	DefaultPartitions    = 4
	DefaultPatientKeyID  = "dev"
	DefaultMaxFrameBytes = 1 << 20
	DefaultIdleTimeout   = 5 * time.Minute
	DefaultMaxConns      = 256
	DefaultMaxInFlight   = 256
	DefaultReadTimeout   = 30 * time.Second
	DefaultMinRate       = 4096
)

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	ls, _ := ParseListeners(DefaultListeners)
	return Config{
		Listeners:     ls,
		Partitions:    DefaultPartitions,
		PatientKey:    []byte(DevPatientKey),
		PatientKeyID:  DefaultPatientKeyID,
		RawKeys:       seal.MustParseRawKeys(seal.DevRawKeys),
		MaxFrameBytes: DefaultMaxFrameBytes,
		IdleTimeout:   DefaultIdleTimeout,
		MaxConns:      DefaultMaxConns,
		MaxInFlight:   DefaultMaxInFlight,
		ReadTimeout:   DefaultReadTimeout,
		MinRate:       DefaultMinRate,
	}
}

// ConfigFromEnv reads the configuration; the error names every bad variable.
func ConfigFromEnv(env *service.Env) (Config, error) {
	c := DefaultConfig()
	if ls, err := ParseListeners(env.String("HINSCORE_MLLP_LISTENERS", DefaultListeners)); err != nil {
		env.Fail("HINSCORE_MLLP_LISTENERS", "%v", err)
	} else {
		c.Listeners = ls
	}
	c.Partitions = env.Int("HINSCORE_PARTITIONS", c.Partitions)
	if k := env.String("HINSCORE_PATIENT_KEY", ""); k != "" {
		c.PatientKey = patient.ParseKey(k)
	}
	c.PatientKeyID = env.String("HINSCORE_PATIENT_KEY_ID", c.PatientKeyID)
	if k := seal.RawKeysFromEnv(env); k != nil {
		c.RawKeys = k
	}
	c.MaxFrameBytes = env.Int("HINSCORE_MLLP_MAX_FRAME", c.MaxFrameBytes)
	c.IdleTimeout = env.Duration("HINSCORE_MLLP_IDLE_TIMEOUT", c.IdleTimeout)
	c.MaxConns = env.Int("HINSCORE_MLLP_MAX_CONNS", c.MaxConns)
	c.MaxInFlight = env.Int("HINSCORE_MLLP_MAX_INFLIGHT", c.MaxInFlight)
	c.ReadTimeout = env.Duration("HINSCORE_MLLP_READ_TIMEOUT", c.ReadTimeout)
	c.MinRate = env.Int("HINSCORE_MLLP_MIN_RATE", c.MinRate)
	c.TLSCert = env.String("HINSCORE_MLLP_TLS_CERT", "")
	c.TLSKey = env.String("HINSCORE_MLLP_TLS_KEY", "")
	c.TLSClientCA = env.String("HINSCORE_MLLP_TLS_CLIENT_CA", "")
	c.OrgDirectory = env.String("HINSCORE_ORG_DIRECTORY", "")
	for _, p := range c.problems() {
		env.Fail(p[0], "%s", p[1])
	}
	if err := env.Err(); err != nil {
		return Config{}, fmt.Errorf("mllpingest.ConfigFromEnv: %w", err)
	}
	return c, nil
}

// ParseListeners reads "network=host:port,network=host:port".
func ParseListeners(s string) ([]Listener, error) {
	var out []Listener
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		network, addr, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want network=host:port", part)
		}
		if err := bus.ValidNetwork(network); err != nil {
			return nil, err
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		if seen[network] {
			return nil, fmt.Errorf("network %q listed twice", network)
		}
		seen[network] = true
		out = append(out, Listener{Network: network, Addr: addr})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no listener")
	}
	return out, nil
}

// Validate returns an error naming every bad field.
func (c Config) Validate() error {
	ps := c.problems()
	if len(ps) == 0 {
		return nil
	}
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p[0] + ": " + p[1]
	}
	return fmt.Errorf("mllpingest config: %s", strings.Join(msgs, "; "))
}

// problems lists [variable, problem] pairs.
func (c Config) problems() [][2]string {
	var ps [][2]string
	add := func(name, problem string) { ps = append(ps, [2]string{name, problem}) }
	if len(c.Listeners) == 0 {
		add("HINSCORE_MLLP_LISTENERS", "no listener")
	}
	for _, l := range c.Listeners {
		if err := bus.ValidNetwork(l.Network); err != nil {
			add("HINSCORE_MLLP_LISTENERS", err.Error())
		}
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		add("HINSCORE_PARTITIONS", fmt.Sprintf("%d: want 1..1024", c.Partitions))
	}
	if len(c.PatientKey) < 16 {
		add("HINSCORE_PATIENT_KEY", fmt.Sprintf("%d bytes: want at least 16", len(c.PatientKey)))
	}
	if c.PatientKeyID == "" {
		add("HINSCORE_PATIENT_KEY_ID", "empty")
	}
	if c.RawKeys == nil {
		add(seal.EnvRawKeys, "no key")
	}
	if c.MaxFrameBytes < 1024 || c.MaxFrameBytes > 64<<20 {
		add("HINSCORE_MLLP_MAX_FRAME", fmt.Sprintf("%d: want 1024..67108864", c.MaxFrameBytes))
	}
	if c.IdleTimeout <= 0 {
		add("HINSCORE_MLLP_IDLE_TIMEOUT", fmt.Sprintf("%s: want > 0", c.IdleTimeout))
	}
	if c.MaxConns < 1 {
		add("HINSCORE_MLLP_MAX_CONNS", fmt.Sprintf("%d: want >= 1", c.MaxConns))
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 65536 {
		add("HINSCORE_MLLP_MAX_INFLIGHT", fmt.Sprintf("%d: want 1..65536", c.MaxInFlight))
	}
	if c.ReadTimeout <= 0 {
		add("HINSCORE_MLLP_READ_TIMEOUT", fmt.Sprintf("%s: want > 0", c.ReadTimeout))
	}
	if c.MinRate < 1 {
		add("HINSCORE_MLLP_MIN_RATE", fmt.Sprintf("%d: want >= 1 byte/s", c.MinRate))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		add("HINSCORE_MLLP_TLS_CERT", "HINSCORE_MLLP_TLS_CERT and HINSCORE_MLLP_TLS_KEY go together")
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		add("HINSCORE_MLLP_TLS_CLIENT_CA", "mutual TLS needs HINSCORE_MLLP_TLS_CERT and HINSCORE_MLLP_TLS_KEY")
	}
	return ps
}

// TLSConfig loads the listeners' TLS configuration; nil when TLS is off.
func (c Config) TLSConfig() (*tls.Config, error) {
	if c.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("HINSCORE_MLLP_TLS_CERT/KEY: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.TLSClientCA != "" {
		pem, err := os.ReadFile(c.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("HINSCORE_MLLP_TLS_CLIENT_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("HINSCORE_MLLP_TLS_CLIENT_CA: %s holds no PEM certificate", c.TLSClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Mapper is the mapping the ingest uses: the patient key and, when
// configured, the organisation directory (loaded now).
func (c Config) Mapper() (toevent.Mapper, error) {
	mp := toevent.Mapper{Patients: patient.NewTokenizer(c.PatientKey), PatientKeyID: c.PatientKeyID}
	if c.OrgDirectory != "" {
		d, err := toevent.LoadDirectory(c.OrgDirectory)
		if err != nil {
			return toevent.Mapper{}, fmt.Errorf("HINSCORE_ORG_DIRECTORY: %w", err)
		}
		mp.Orgs = d
	}
	return mp, nil
}
