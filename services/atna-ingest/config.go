package atnaingest

import (
	"time"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/bus/seal"
	"github.com/hinscore/hinscore/services/lib/service"
)

// Config configures the audit-record listener: its own settings, then
// those it shares (the partition count with the linkers, the patient key
// with the other ingests, the raw keys with them and the api, NATS, the
// process).
type Config struct {
	Listeners ingest.Listeners `env:"HINSCORE_ATNA_LISTENERS" default:"default=127.0.0.1:6514" help:"network=host:port,...: one syslog stream listener per network (RFC 5425 octet-counted frames; TLS with HINSCORE_ATNA_TLS_CERT, else plain TCP)"`
	// UDP are the RFC 5426 listeners: one datagram, one message, no
	// acknowledgement of any kind, so what cannot be stored is counted lost.
	UDP           ingest.Listeners `env:"HINSCORE_ATNA_UDP" help:"network=host:port,...: one syslog datagram listener (RFC 5426, UDP) per network; unset: none"`
	MaxFrameBytes int              `env:"HINSCORE_ATNA_MAX_FRAME" default:"1048576" help:"largest syslog message accepted (a frame's MSG-LEN, a datagram), bytes (1024 to 67108864)"`
	IdleTimeout   time.Duration    `env:"HINSCORE_ATNA_IDLE_TIMEOUT" default:"5m" help:"a connection that completes no frame for this long is closed"`
	MaxConns      int              `env:"HINSCORE_ATNA_MAX_CONNS" default:"256" help:"stream connections over this, all listeners together, are closed at once"`
	// MaxConnsPerListener and MaxConnsPerRemote keep one network, and one
	// host of a network, from taking every connection.
	MaxConnsPerListener int `env:"HINSCORE_ATNA_MAX_CONNS_PER_LISTENER" default:"128" help:"stream connections over this on one listener are closed at once"`
	MaxConnsPerRemote   int `env:"HINSCORE_ATNA_MAX_CONNS_PER_REMOTE" default:"32" help:"stream connections over this from one remote host on one listener are closed at once"`
	MaxInFlight         int `env:"HINSCORE_ATNA_MAX_INFLIGHT" default:"256" help:"per connection or datagram listener, messages awaiting their PubAcks (1 to 65536)"`
	// ReadTimeout is how long a frame may take to arrive once its first
	// byte is in (and the TLS handshake), plus one second per MinRate
	// bytes, as for MLLP.
	ReadTimeout  time.Duration       `env:"HINSCORE_ATNA_READ_TIMEOUT" default:"30s" help:"a frame (and a TLS handshake) must arrive within this once started ..."`
	MinRate      int                 `env:"HINSCORE_ATNA_MIN_RATE" default:"4096" help:"... plus one second per this many bytes (slow-loris protection)"`
	TLSCert      string              `env:"HINSCORE_ATNA_TLS_CERT" help:"PEM certificate: with HINSCORE_ATNA_TLS_KEY, every stream listener speaks TLS 1.2+ (RFC 5425)"`
	TLSKey       string              `env:"HINSCORE_ATNA_TLS_KEY" help:"PEM key of that certificate"`
	TLSClientCA  string              `env:"HINSCORE_ATNA_TLS_CLIENT_CA" help:"PEM CA bundle: mutual TLS, client certificates required and verified (ITI-19 node authentication)"`
	TLSClientCAs ingest.NetworkFiles `env:"HINSCORE_ATNA_TLS_CLIENT_CAS" help:"network=path,...: a network's own PEM CA bundle; its listener accepts only client certificates these CAs signed, so a certificate of another network's CA is refused there (the other networks keep HINSCORE_ATNA_TLS_CLIENT_CA)"`
	TLSClientURI string              `env:"HINSCORE_ATNA_TLS_CLIENT_URI" help:"a URI pattern with {network}, e.g. urn:hinscore:network:{network}: a client certificate must carry, as a URI SAN, the pattern with its listener's network, so that a certificate of another network is refused even where the networks share a CA"`

	bus.Partitioning
	service.PatientTokens
	// Keys seal each message's bytes in its events (seal.RawKeys).
	seal.Keys
	bus.NATS
	service.Process `defaults:"HINSCORE_ADMIN_ADDR=127.0.0.1:9109"`
}

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	var c Config
	service.Defaults(&c)
	return c
}

// ConfigFromEnv reads the configuration; the error names every bad variable.
func ConfigFromEnv(env *service.Env) (Config, error) {
	return service.LoadOver(env, DefaultConfig(), "atnaingest.ConfigFromEnv")
}

// Validate returns an error naming every bad variable: the settings the
// ingest uses, shared ones included.
func (c Config) Validate() error {
	var ps service.Problems
	ps.Include(c.Partitioning.Validate(), c.PatientTokens.Validate(), c.Keys.Validate())
	add := ps.Add
	if len(c.Listeners) == 0 && len(c.UDP) == 0 {
		add("HINSCORE_ATNA_LISTENERS", "no listener, and no HINSCORE_ATNA_UDP either")
	}
	for _, l := range append(append(ingest.Listeners{}, c.Listeners...), c.UDP...) {
		if err := bus.ValidNetwork(l.Network); err != nil {
			add("HINSCORE_ATNA_LISTENERS", "%v", err)
		}
	}
	c.limits().Check(&ps)
	return ps.Err()
}

// limits are the listeners' limits and TLS settings.
func (c Config) limits() ingest.Limits {
	return ingest.Limits{Prefix: "HINSCORE_ATNA", MaxFrameBytes: c.MaxFrameBytes, IdleTimeout: c.IdleTimeout,
		MaxConns: c.MaxConns, MaxConnsPerListener: c.MaxConnsPerListener, MaxConnsPerRemote: c.MaxConnsPerRemote, MaxInFlight: c.MaxInFlight, ReadTimeout: c.ReadTimeout, MinRate: c.MinRate,
		TLSCert: c.TLSCert, TLSKey: c.TLSKey, TLSClientCA: c.TLSClientCA, TLSClientCAs: c.TLSClientCAs,
		TLSClientURI: c.TLSClientURI}
}

// TLSConfig loads the stream listeners' TLS configuration; nil when TLS is off.
func (c Config) TLSConfig() (*ingest.TLSSet, error) { return c.limits().TLS() }
