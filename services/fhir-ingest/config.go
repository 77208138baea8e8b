package fhiringest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"

	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/hinscore/hinscore/services/fhir-ingest/fhirmap"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
	"github.com/hinscore/hinscore/services/lib/service"
)

// DevPatientKey is the patient-token key used when none is configured (the
// same as mllp-ingest's, so that both sides make the same tokens in the
// demo). It is public: New logs a warning.
const DevPatientKey = patient.DevKey

// Defaults.
const (
	DefaultAddr         = "127.0.0.1:8080"
	DefaultPartitions   = 4
	DefaultPatientKeyID = "dev"
	DefaultMaxBodyBytes = 8 << 20
)

// Config configures the FHIR ingest.
type Config struct {
	Addr       string // HINSCORE_FHIR_ADDR
	Partitions int    // HINSCORE_PARTITIONS: EVENTS subject partitions, as mllp-ingest
	// Tokens maps a network to the SHA-256 hashes (hex) of its bearer
	// tokens: HINSCORE_FHIR_TOKENS="northstar=<sha256hex>;<sha256hex>,bayview=<sha256hex>",
	// and/or the same text in the file HINSCORE_FHIR_TOKENS_FILE (newlines
	// may separate networks). Only hashes are ever configured.
	Tokens       map[string][]string
	PatientKey   []byte // HINSCORE_PATIENT_KEY: hex (32+ digits) or a plain string
	PatientKeyID string // HINSCORE_PATIENT_KEY_ID
	// RawKeys (HINSCORE_RAW_KEYS, "id:<64 hex>[,id:<64 hex>...]", the
	// first seals) seal the body a one-event resource carries in its event
	// (seal.RawKeys); only the ingests and the api hold them.
	RawKeys      *seal.RawKeys
	MaxBodyBytes int64  // HINSCORE_FHIR_MAX_BODY: request body limit, after gunzip too
	TLSCert      string // HINSCORE_FHIR_TLS_CERT: PEM file; TLS when set with TLSKey
	TLSKey       string // HINSCORE_FHIR_TLS_KEY
	// Classification holds a network's own classification rows, tried
	// before the built-in table (fhirmap.Table.Over): HINSCORE_FHIR_CLASSIFICATION=
	// "northstar=/etc/hinscore/northstar-class.csv,bayview=...", each file in
	// the form of fhirmap/classification.csv with a version of its own.
	Classification map[string]*fhirmap.Table
}

// DefaultConfig is the configuration with every default and no token.
func DefaultConfig() Config {
	return Config{
		Addr:         DefaultAddr,
		Partitions:   DefaultPartitions,
		Tokens:       map[string][]string{},
		PatientKey:   []byte(DevPatientKey),
		PatientKeyID: DefaultPatientKeyID,
		RawKeys:      seal.MustParseRawKeys(seal.DevRawKeys),
		MaxBodyBytes: DefaultMaxBodyBytes,
	}
}

// HashToken is how a bearer token is configured: the hex SHA-256 of it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ConfigFromEnv reads the configuration; the error names every bad variable.
func ConfigFromEnv(env *service.Env) (Config, error) {
	c := DefaultConfig()
	c.Addr = env.String("HINSCORE_FHIR_ADDR", c.Addr)
	c.Partitions = env.Int("HINSCORE_PARTITIONS", c.Partitions)
	if s := env.String("HINSCORE_FHIR_TOKENS", ""); s != "" {
		if err := ParseTokens(s, c.Tokens); err != nil {
			env.Fail("HINSCORE_FHIR_TOKENS", "%v", err)
		}
	}
	if path := env.String("HINSCORE_FHIR_TOKENS_FILE", ""); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			env.Fail("HINSCORE_FHIR_TOKENS_FILE", "%v", err)
		} else if err := ParseTokens(strings.ReplaceAll(string(data), "\n", ","), c.Tokens); err != nil {
			env.Fail("HINSCORE_FHIR_TOKENS_FILE", "%s: %v", path, err)
		}
	}
	if k := env.String("HINSCORE_PATIENT_KEY", ""); k != "" {
		c.PatientKey = patient.ParseKey(k)
	}
	c.PatientKeyID = env.String("HINSCORE_PATIENT_KEY_ID", c.PatientKeyID)
	if k := seal.RawKeysFromEnv(env); k != nil {
		c.RawKeys = k
	}
	c.MaxBodyBytes = int64(env.Int("HINSCORE_FHIR_MAX_BODY", int(c.MaxBodyBytes)))
	c.TLSCert = env.String("HINSCORE_FHIR_TLS_CERT", "")
	c.TLSKey = env.String("HINSCORE_FHIR_TLS_KEY", "")
	if s := env.String("HINSCORE_FHIR_CLASSIFICATION", ""); s != "" {
		tables, err := ReadClassification(s)
		if err != nil {
			env.Fail("HINSCORE_FHIR_CLASSIFICATION", "%v", err)
		}
		c.Classification = tables
	}
	for _, p := range c.problems() {
		env.Fail(p[0], "%s", p[1])
	}
	if err := env.Err(); err != nil {
		return Config{}, fmt.Errorf("fhiringest.ConfigFromEnv: %w", err)
	}
	return c, nil
}

// ParseTokens reads "network=hash;hash,network=hash" into into (blank
// parts and # comments skipped).
func ParseTokens(s string, into map[string][]string) error {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" || strings.HasPrefix(part, "#") {
			continue
		}
		network, hashes, ok := strings.Cut(part, "=")
		network = strings.TrimSpace(network)
		if !ok {
			return fmt.Errorf("%q: want network=<sha256hex>[;<sha256hex>]", part)
		}
		if err := bus.ValidNetwork(network); err != nil {
			return err
		}
		for _, h := range strings.Split(hashes, ";") {
			h = strings.ToLower(strings.TrimSpace(h))
			if h == "" {
				continue
			}
			if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
				return fmt.Errorf("network %s: %q is not a SHA-256 hex hash (64 hex digits; hash the token, never configure it)", network, h)
			}
			into[network] = append(into[network], h)
		}
	}
	return nil
}

// ReadClassification reads "network=file,network=file": each file holds a
// network's own classification rows (see Config.Classification).
func ReadClassification(s string) (map[string]*fhirmap.Table, error) {
	tables := map[string]*fhirmap.Table{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		network, path, ok := strings.Cut(part, "=")
		network, path = strings.TrimSpace(network), strings.TrimSpace(path)
		if !ok || path == "" {
			return nil, fmt.Errorf("%q: want network=<file>", part)
		}
		if err := bus.ValidNetwork(network); err != nil {
			return nil, err
		}
		if _, dup := tables[network]; dup {
			return nil, fmt.Errorf("network %s has two files", network)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", network, err)
		}
		t, err := fhirmap.ParseTable(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("network %s: %s: %w", network, path, err)
		}
		tables[network] = t
	}
	return tables, nil
}

// mapper is network's mapper: base, with the network's own classification
// rows over base's table when it has some.
func (c Config) mapper(network string, base fhirmap.Mapper) fhirmap.Mapper {
	if own := c.Classification[network]; own != nil {
		base.Table = own.Over(base.Table)
	}
	return base
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
	return fmt.Errorf("fhiringest config: %s", strings.Join(msgs, "; "))
}

// problems lists [variable, problem] pairs.
func (c Config) problems() [][2]string {
	var ps [][2]string
	add := func(name, problem string) { ps = append(ps, [2]string{name, problem}) }
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		add("HINSCORE_FHIR_ADDR", err.Error())
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		add("HINSCORE_PARTITIONS", fmt.Sprintf("%d: want 1..1024", c.Partitions))
	}
	if len(c.Tokens) == 0 {
		add("HINSCORE_FHIR_TOKENS", "no network has a token: nobody could post")
	}
	seen := map[string]string{}
	for _, n := range sortedKeys(c.Tokens) {
		if err := bus.ValidNetwork(n); err != nil {
			add("HINSCORE_FHIR_TOKENS", err.Error())
		}
		if len(c.Tokens[n]) == 0 {
			add("HINSCORE_FHIR_TOKENS", fmt.Sprintf("network %s has no token", n))
		}
		for _, h := range c.Tokens[n] {
			if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
				add("HINSCORE_FHIR_TOKENS", fmt.Sprintf("network %s: %q is not a SHA-256 hex hash", n, h))
			}
			if other, dup := seen[strings.ToLower(h)]; dup && other != n {
				add("HINSCORE_FHIR_TOKENS", fmt.Sprintf("one token hash is given to both %s and %s", other, n))
			}
			seen[strings.ToLower(h)] = n
		}
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
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 256<<20 {
		add("HINSCORE_FHIR_MAX_BODY", fmt.Sprintf("%d: want 1024..268435456", c.MaxBodyBytes))
	}
	builtIn := fhirmap.DefaultTable().Version
	for _, n := range sortedKeys(c.Classification) {
		t := c.Classification[n]
		switch {
		case bus.ValidNetwork(n) != nil:
			add("HINSCORE_FHIR_CLASSIFICATION", bus.ValidNetwork(n).Error())
		case len(c.Tokens[n]) == 0:
			add("HINSCORE_FHIR_CLASSIFICATION", fmt.Sprintf("network %s has classification rows but no token", n))
		case t == nil || t.Version == "":
			add("HINSCORE_FHIR_CLASSIFICATION", fmt.Sprintf("network %s: a table without a version", n))
		case t.Version == builtIn:
			add("HINSCORE_FHIR_CLASSIFICATION", fmt.Sprintf("network %s: version %s is the built-in table's: give the network's rows a version of their own", n, t.Version))
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		add("HINSCORE_FHIR_TLS_CERT", "set both HINSCORE_FHIR_TLS_CERT and HINSCORE_FHIR_TLS_KEY, or neither")
	}
	return ps
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
