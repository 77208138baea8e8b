package fhiringest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"

	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/hinscore/hinscore/proto/classtable"
	"github.com/hinscore/hinscore/services/fhir-ingest/fhirmap"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
	soaptoevent "github.com/hinscore/hinscore/services/lib/soap/toevent"
)

// Config configures the FHIR ingest: its own settings, then those it
// shares (the partition count with mllp-ingest and the linkers, the
// patient key with mllp-ingest, the raw keys with mllp-ingest and the api,
// NATS, the process).
type Config struct {
	Addr string `env:"HINSCORE_FHIR_ADDR" default:"127.0.0.1:8080" help:"listen address"`
	// Tokens maps a network to the SHA-256 hashes (hex) of its bearer
	// tokens. Only hashes are ever configured.
	Tokens       Tokens `env:"HINSCORE_FHIR_TOKENS" file:"HINSCORE_FHIR_TOKENS_FILE" help:"northstar=<sha256hex>;<sha256hex>,bayview=<sha256hex>: the hashes of each network's bearer tokens (required, here or in the file, where newlines may separate networks)"`
	MaxBodyBytes int64  `env:"HINSCORE_FHIR_MAX_BODY" default:"8388608" help:"bytes per resource / NDJSON line, after gunzip (1024 to 268435456)"`
	TLSCert      string `env:"HINSCORE_FHIR_TLS_CERT" help:"PEM certificate: HTTPS only (TLS 1.2+) when set with HINSCORE_FHIR_TLS_KEY; a pair that does not load fails Start"`
	TLSKey       string `env:"HINSCORE_FHIR_TLS_KEY" help:"PEM key of that certificate"`
	// Classification holds a network's own classification rows, tried
	// before the built-in table (fhirmap.Table.Over), each file in the form
	// of fhirmap/classification.csv with a version of its own.
	Classification Classification `env:"HINSCORE_FHIR_CLASSIFICATION" help:"northstar=<file>,bayview=<file>: a network's own classification rows (below)"`
	// SOAPClassification holds a network's own rows for SOAP copies, tried
	// before lib/soap/toevent's classification.csv, in its form.
	SOAPClassification SOAPClassification `env:"HINSCORE_SOAP_CLASSIFICATION" help:"northstar=<file>: a network's own classification rows for SOAP copies (POST /soap), in the form of lib/soap/toevent/classification.csv"`

	bus.Partitioning
	service.PatientTokens
	// Keys seal the body a one-event resource carries in its event
	// (seal.RawKeys).
	seal.Keys
	bus.NATS
	service.Process `defaults:"HINSCORE_ADMIN_ADDR=127.0.0.1:9106"`
}

// Tokens maps a network to the SHA-256 hashes (hex) of its bearer tokens.
type Tokens map[string][]string

// UnmarshalText adds the entries of "network=hash;hash,network=hash"
// (newlines may separate networks, as in a file) to those held.
func (t *Tokens) UnmarshalText(b []byte) error {
	if *t == nil {
		*t = Tokens{}
	}
	return ParseTokens(strings.ReplaceAll(string(b), "\n", ","), *t)
}

// Classification maps a network to its own classification table.
type Classification map[string]*fhirmap.Table

// UnmarshalText reads "network=file,network=file" (ReadClassification).
func (c *Classification) UnmarshalText(b []byte) error {
	tables, err := ReadClassification(string(b))
	if err != nil {
		return err
	}
	*c = tables
	return nil
}

// SOAPClassification maps a network to its own table for SOAP copies.
type SOAPClassification map[string]*classtable.Table

// UnmarshalText reads "network=file,network=file" (ReadSOAPClassification).
func (c *SOAPClassification) UnmarshalText(b []byte) error {
	tables, err := ReadSOAPClassification(string(b))
	if err != nil {
		return err
	}
	*c = tables
	return nil
}

// DefaultConfig is the configuration with every default and no token.
func DefaultConfig() Config {
	c := Config{Tokens: Tokens{}}
	service.Defaults(&c)
	return c
}

// HashToken is how a bearer token is configured: the hex SHA-256 of it.
func HashToken(token string) string { return service.HashToken(token) }

// ConfigFromEnv reads the configuration; the error names every bad variable.
func ConfigFromEnv(env *service.Env) (Config, error) {
	return service.LoadOver(env, DefaultConfig(), "fhiringest.ConfigFromEnv")
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
	return readTables(s, fhirmap.ParseTable)
}

// ReadSOAPClassification is ReadClassification for SOAP copies' tables
// (Config.SOAPClassification).
func ReadSOAPClassification(s string) (map[string]*classtable.Table, error) {
	return readTables(s, soaptoevent.ParseTable)
}

// readTables reads "network=file,network=file", each file with parse.
func readTables(s string, parse func(io.Reader) (*classtable.Table, error)) (map[string]*classtable.Table, error) {
	tables := map[string]*classtable.Table{}
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
		t, err := parse(f)
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

// Validate returns an error naming every bad variable: the settings the
// ingest uses, shared ones included.
func (c Config) Validate() error {
	var ps service.Problems
	ps.Include(c.Partitioning.Validate(), c.PatientTokens.Validate(), c.Keys.Validate())
	add := ps.Add
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		add("HINSCORE_FHIR_ADDR", "%v", err)
	}
	c.tokenProblems(&ps)
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 256<<20 {
		add("HINSCORE_FHIR_MAX_BODY", "%d: want 1024..268435456", c.MaxBodyBytes)
	}
	c.tableProblems(&ps, "HINSCORE_FHIR_CLASSIFICATION", c.Classification, fhirmap.DefaultTable().Version)
	c.tableProblems(&ps, "HINSCORE_SOAP_CLASSIFICATION", c.SOAPClassification, soaptoevent.DefaultTable().Version)
	if (c.TLSCert == "") != (c.TLSKey == "") {
		add("HINSCORE_FHIR_TLS_CERT", "set both HINSCORE_FHIR_TLS_CERT and HINSCORE_FHIR_TLS_KEY, or neither")
	}
	return ps.Err()
}

// tableProblems adds to ps what is wrong with the networks' own tables
// of the variable env, whose built-in table has the version builtIn.
func (c Config) tableProblems(ps *service.Problems, env string, tables map[string]*classtable.Table, builtIn string) {
	for _, n := range sortedKeys(tables) {
		t := tables[n]
		switch {
		case bus.ValidNetwork(n) != nil:
			ps.Add(env, "%v", bus.ValidNetwork(n))
		case len(c.Tokens[n]) == 0:
			ps.Add(env, "network %s has classification rows but no token", n)
		case t == nil || t.Version == "":
			ps.Add(env, "network %s: a table without a version", n)
		case t.Version == builtIn:
			ps.Add(env, "network %s: version %s is the built-in table's: give the network's rows a version of their own", n, t.Version)
		}
	}
}

// soapMapper is network's mapper of SOAP copies: base, with the network's
// own rows over base's table when it has some.
func (c Config) soapMapper(network string, base soaptoevent.Mapper) soaptoevent.Mapper {
	if own := c.SOAPClassification[network]; own != nil {
		base.Table = own.Over(base.Table)
	}
	return base
}

// tokenProblems adds to ps what is wrong with the tokens.
func (c Config) tokenProblems(ps *service.Problems) {
	add := func(format string, args ...any) { ps.Add("HINSCORE_FHIR_TOKENS", format, args...) }
	if len(c.Tokens) == 0 {
		add("no network has a token: nobody could post")
	}
	seen := map[string]string{}
	for _, n := range sortedKeys(c.Tokens) {
		if err := bus.ValidNetwork(n); err != nil {
			add("%v", err)
		}
		if len(c.Tokens[n]) == 0 {
			add("network %s has no token", n)
		}
		for _, h := range c.Tokens[n] {
			if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
				add("network %s: %q is not a SHA-256 hex hash", n, h)
			}
			if other, dup := seen[strings.ToLower(h)]; dup && other != n {
				add("one token hash is given to both %s and %s", other, n)
			}
			seen[strings.ToLower(h)] = n
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
