package mllpingest

import (
	"fmt"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
	"github.com/hinscore/hinscore/services/lib/hl7v2/toevent"
	"github.com/hinscore/hinscore/services/lib/service"
)

// Listener is one network's MLLP listening address.
type Listener = ingest.Listener

// Listeners are the MLLP listeners, one per network.
type Listeners = ingest.Listeners

// ParseListeners reads "network=host:port,network=host:port".
func ParseListeners(s string) ([]Listener, error) { return ingest.ParseListeners(s) }

// Config configures the MLLP ingest: its own settings, then those it
// shares (the partition count with the linkers, the patient key with
// fhir-ingest, the raw keys with fhir-ingest and the api, NATS, the
// process).
type Config struct {
	Listeners     Listeners `env:"HINSCORE_MLLP_LISTENERS" default:"default=127.0.0.1:2575" help:"network=host:port,...: one MLLP listener per network"`
	MaxFrameBytes int       `env:"HINSCORE_MLLP_MAX_FRAME" default:"1048576" help:"largest frame accepted, bytes (1024 to 67108864)"`
	// MaxBatch bounds the messages of one batch frame (FHS/BHS): a larger
	// batch is refused whole, one AR and one dead letter, before it is
	// split.
	MaxBatch    int           `env:"HINSCORE_MLLP_MAX_BATCH" default:"10000" help:"most messages in one batch frame; a larger batch is refused whole (one AR, one dead letter)"`
	IdleTimeout time.Duration `env:"HINSCORE_MLLP_IDLE_TIMEOUT" default:"5m" help:"a connection that completes no frame for this long is closed (stray bytes between frames do not count)"`
	MaxConns    int           `env:"HINSCORE_MLLP_MAX_CONNS" default:"256" help:"connections over this, all listeners together, are refused (politely, see above)"`
	// MaxConnsPerListener and MaxConnsPerRemote keep one network, and one
	// host of a network, from taking every connection.
	MaxConnsPerListener int `env:"HINSCORE_MLLP_MAX_CONNS_PER_LISTENER" default:"128" help:"connections over this on one listener are closed at once"`
	MaxConnsPerRemote   int `env:"HINSCORE_MLLP_MAX_CONNS_PER_REMOTE" default:"32" help:"connections over this from one remote host on one listener are closed at once"`
	MaxInFlight         int `env:"HINSCORE_MLLP_MAX_INFLIGHT" default:"256" help:"per connection, messages awaiting their PubAcks, each message of a batch counted (1 to 65536)"`
	// ReadTimeout is how long a frame may take to arrive once its first
	// byte is in (and the TLS handshake), plus one second per MinRate
	// bytes: a peer that trickles a frame slower than that (slow-loris) or
	// stops half-way is cut off.
	ReadTimeout time.Duration `env:"HINSCORE_MLLP_READ_TIMEOUT" default:"30s" help:"a frame (and a TLS handshake) must arrive within this once started ..."`
	MinRate     int           `env:"HINSCORE_MLLP_MIN_RATE" default:"4096" help:"... plus one second per this many bytes (slow-loris protection)"`
	// TLS: a certificate and its key turn TLS on for every listener; a
	// client CA also requires a client certificate signed by one of its
	// CAs (mutual TLS).
	TLSCert      string              `env:"HINSCORE_MLLP_TLS_CERT" help:"PEM certificate: with HINSCORE_MLLP_TLS_KEY, every listener speaks TLS (1.2+)"`
	TLSKey       string              `env:"HINSCORE_MLLP_TLS_KEY" help:"PEM key of that certificate"`
	TLSClientCA  string              `env:"HINSCORE_MLLP_TLS_CLIENT_CA" help:"PEM CA bundle: mutual TLS, client certificates required and verified"`
	TLSClientCAs ingest.NetworkFiles `env:"HINSCORE_MLLP_TLS_CLIENT_CAS" help:"network=path,...: a network's own PEM CA bundle; its listener accepts only client certificates these CAs signed, so a certificate of another network's CA is refused there (the other networks keep HINSCORE_MLLP_TLS_CLIENT_CA)"`
	TLSClientURI string              `env:"HINSCORE_MLLP_TLS_CLIENT_URI" help:"a URI pattern with {network}, e.g. urn:hinscore:network:{network}: a client certificate must carry, as a URI SAN, the pattern with its listener's network, so that a certificate of another network is refused even where the networks share a CA"`
	// OrgDirectory is a CSV organisation directory (toevent.ReadDirectory);
	// empty: organisations as the messages spell them.
	OrgDirectory string `env:"HINSCORE_ORG_DIRECTORY" help:"organisation directory CSV (see services/lib/hl7v2 README); unset: the HD namespace id is the org id"`

	bus.Partitioning
	service.PatientTokens
	// Keys seal each message's bytes in its event (seal.RawKeys).
	seal.Keys
	bus.NATS
	service.Process `defaults:"HINSCORE_ADMIN_ADDR=127.0.0.1:9101"`
}

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	var c Config
	service.Defaults(&c)
	return c
}

// ConfigFromEnv reads the configuration; the error names every bad variable.
func ConfigFromEnv(env *service.Env) (Config, error) {
	return service.LoadOver(env, DefaultConfig(), "mllpingest.ConfigFromEnv")
}

// Validate returns an error naming every bad variable: the settings the
// ingest uses, shared ones included.
func (c Config) Validate() error {
	var ps service.Problems
	ps.Include(c.Partitioning.Validate(), c.PatientTokens.Validate(), c.Keys.Validate())
	add := ps.Add
	if len(c.Listeners) == 0 {
		add("HINSCORE_MLLP_LISTENERS", "no listener")
	}
	for _, l := range c.Listeners {
		if err := bus.ValidNetwork(l.Network); err != nil {
			add("HINSCORE_MLLP_LISTENERS", "%v", err)
		}
	}
	if c.MaxBatch < 1 {
		add("HINSCORE_MLLP_MAX_BATCH", "%d: want >= 1", c.MaxBatch)
	}
	c.limits().Check(&ps)
	return ps.Err()
}

// limits are the listeners' limits and TLS settings.
func (c Config) limits() ingest.Limits {
	return ingest.Limits{Prefix: "HINSCORE_MLLP", MaxFrameBytes: c.MaxFrameBytes, IdleTimeout: c.IdleTimeout,
		MaxConns: c.MaxConns, MaxConnsPerListener: c.MaxConnsPerListener, MaxConnsPerRemote: c.MaxConnsPerRemote, MaxInFlight: c.MaxInFlight, ReadTimeout: c.ReadTimeout, MinRate: c.MinRate,
		TLSCert: c.TLSCert, TLSKey: c.TLSKey, TLSClientCA: c.TLSClientCA, TLSClientCAs: c.TLSClientCAs,
		TLSClientURI: c.TLSClientURI}
}

// TLSConfig loads the listeners' TLS configuration; nil when TLS is off.
func (c Config) TLSConfig() (*ingest.TLSSet, error) { return c.limits().TLS() }

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
