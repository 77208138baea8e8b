package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/api/casepacket"
	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
)

// Role is what a token may see.
type Role string

// Roles (issue 9): analysts read every chain, scorecard and journey but no
// raw message; an operator reads its own network only; an investigator also
// reads the raw messages (with a reason, audited) and exports evidence.
const (
	RoleAnalyst      Role = "analyst"
	RoleOperator     Role = "operator"
	RoleInvestigator Role = "investigator"
)

// Principal is who holds a token: a name (written to the audit log), a role
// and, for an operator, the one network it is bound to.
type Principal struct {
	Name    string
	Role    Role
	Network string
	tokenID string // set per request: the first 12 hex digits of the token's hash, for the audit log
}

// CanSee reports whether p may see data of network.
func (p Principal) CanSee(network string) bool {
	return p.Role != RoleOperator || p.Network == network
}

// RateLimit bounds each token's requests: a token bucket of Burst requests
// refilled at PerSecond.
type RateLimit struct {
	PerSecond float64 `env:"HINSCORE_API_RATE" default:"10" help:"requests per second per token (sustained)"`
	Burst     int     `env:"HINSCORE_API_BURST" default:"40" help:"token bucket size; over it → 429 with Retry-After (whole seconds until the bucket holds a request again, rounded up) and the usual {\"error\", \"status\"} body; each token has its own bucket, /openapi.json and the login page have none"`
}

// AuthFailures bounds what one remote address may try: unknown tokens,
// sessions that open nothing and failed logins take from its bucket; once
// it is empty the address gets 429 before any token is looked at, so
// guessing tokens runs at most at PerSecond.
type AuthFailures struct {
	PerSecond float64 `env:"HINSCORE_API_AUTH_FAILURE_RATE" default:"0.2" help:"authentication failures (unknown tokens, failed logins) forgiven per second per remote address"`
	Burst     int     `env:"HINSCORE_API_AUTH_FAILURE_BURST" default:"10" help:"authentication failures a remote address may make at once; then 429 with Retry-After for every request of that address that carries a token (a valid one too) until one is forgiven. Behind a proxy every client has the proxy's address: raise it"`
}

// limit is the failures' token bucket.
func (a AuthFailures) limit() RateLimit { return RateLimit{PerSecond: a.PerSecond, Burst: a.Burst} }

// Config configures the API server: its own settings, then those it
// shares (the raw keys with the ingests, ClickHouse, NATS, the process).
type Config struct {
	Addr string `env:"HINSCORE_API_ADDR" default:"127.0.0.1:8090" help:"listen address"`
	// Tokens maps the SHA-256 hex of each API token to its holder. Only
	// hashes are ever configured (HashToken).
	Tokens Tokens `env:"HINSCORE_API_TOKENS" file:"HINSCORE_API_TOKENS_FILE" help:"name=role[:network]:<sha256hex> entries, comma separated (one per line in the file, # comments): ann=analyst:<h>,ivy=investigator:<h>,ops-ns=operator:northstar:<h>; <h> = api.HashToken(token) = hex SHA-256 (printf %s \"$TOKEN\" | sha256sum). Never the token itself. Required, here or in the file"`
	// AuditLog is the file every raw-message and evidence access is
	// appended to, one JSON line each.
	AuditLog string `env:"HINSCORE_API_AUDIT_LOG" default:"hinscore-api-audit.jsonl" help:"audit log file"`
	// PublicURL is the address browsers use, which may differ from Addr
	// behind a TLS-terminating proxy (the request then arrives in plain
	// HTTP, r.TLS nil): with https the login cookie is Secure.
	PublicURL    string `env:"HINSCORE_API_PUBLIC_URL" help:"the URL browsers reach the api at (https://hinscore.example.org behind a TLS-terminating proxy or Ingress): when https, the login cookies are Secure; unset: Secure only on a TLS connection to the server itself"`
	RateLimit    RateLimit
	AuthFailures AuthFailures
	// Keys (the ingests' keys: the current one and those of earlier
	// rotations) open the original bytes sealed in EVENTS; a message
	// sealed with a key not listed shows "status": "key_unknown".
	seal.Keys
	// Case signs the case packets of GET /v1/case; without it that
	// endpoint answers 503 and everything else works.
	Case casepacket.SigningKey
	chstore.ClickHouse
	bus.NATS        `note:"NATS_URL=RAW and EVENTS, single messages by sequence, and AUDIT"`
	service.Process `defaults:"HINSCORE_ADMIN_ADDR=127.0.0.1:9108"`
}

// Tokens maps the SHA-256 hex of each API token to its holder.
type Tokens map[string]Principal

// UnmarshalText adds the entries of "name=role[:network]:sha256hex,..."
// to those held (ParseTokens).
func (t *Tokens) UnmarshalText(b []byte) error {
	if *t == nil {
		*t = Tokens{}
	}
	return ParseTokens(string(b), *t)
}

// DefaultConfig is the configuration with every default and no token.
func DefaultConfig() Config {
	c := Config{Tokens: Tokens{}}
	service.Defaults(&c)
	return c
}

// HashToken is how an API token is configured: the hex SHA-256 of it.
func HashToken(token string) string { return service.HashToken(token) }

// ConfigFromEnv reads the configuration; the error names every bad variable.
func ConfigFromEnv(env *service.Env) (Config, error) {
	return service.LoadOver(env, DefaultConfig(), "api.ConfigFromEnv")
}

// ParseTokens reads entries "name=role[:network]:sha256hex" separated by
// commas or newlines into into (blank entries and # comments skipped).
func ParseTokens(s string, into map[string]Principal) error {
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, part := range strings.Split(line, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if err := parseToken(part, into); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseToken(part string, into map[string]Principal) error {
	name, rest, ok := strings.Cut(part, "=")
	name = strings.TrimSpace(name)
	if !ok || !validName(name) {
		return fmt.Errorf("%q: want name=role[:network]:<sha256hex> with a name of 1-64 [A-Za-z0-9._@-]", redactEntry(part))
	}
	fields := strings.Split(rest, ":")
	hash := strings.ToLower(strings.TrimSpace(fields[len(fields)-1]))
	if b, err := hex.DecodeString(hash); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("%s: the last field is not a SHA-256 hex hash (64 hex digits; hash the token with HashToken, never configure it)", name)
	}
	p := Principal{Name: name, Role: Role(strings.TrimSpace(fields[0]))}
	switch {
	case p.Role == RoleOperator && len(fields) == 3:
		p.Network = strings.TrimSpace(fields[1])
		if err := bus.ValidNetwork(p.Network); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	case p.Role == RoleOperator:
		return fmt.Errorf("%s: an operator is bound to one network: name=operator:<network>:<sha256hex>", name)
	case (p.Role == RoleAnalyst || p.Role == RoleInvestigator) && len(fields) == 2:
	default:
		return fmt.Errorf("%s: role %q: want analyst, investigator or operator:<network>", name, fields[0])
	}
	if old, dup := into[hash]; dup && old != p {
		return fmt.Errorf("%s: the same token hash is already given to %s", name, old.Name)
	}
	into[hash] = p
	return nil
}

// redactEntry keeps a malformed entry out of error messages beyond its
// start: it may hold a token pasted by mistake instead of its hash.
func redactEntry(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '@' || c == '-') {
			return false
		}
	}
	return true
}

// Validate returns an error naming every bad variable: the settings the
// server uses, the raw keys included.
func (c Config) Validate() error {
	var ps service.Problems
	ps.Include(c.Keys.Validate())
	add := ps.Add
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		add("HINSCORE_API_ADDR", "%v", err)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			add("HINSCORE_API_PUBLIC_URL", "want http(s)://host[:port][/path]")
		}
	}
	if len(c.Tokens) == 0 {
		add("HINSCORE_API_TOKENS", "no token configured: nobody could use the API")
	}
	for _, h := range slices.Sorted(maps.Keys(c.Tokens)) {
		p := c.Tokens[h]
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size || h != strings.ToLower(h) {
			add("HINSCORE_API_TOKENS", "%s: token hash is not lower-case SHA-256 hex", p.Name)
		}
		switch p.Role {
		case RoleAnalyst, RoleInvestigator:
			if p.Network != "" {
				add("HINSCORE_API_TOKENS", "%s: only an operator is bound to a network", p.Name)
			}
		case RoleOperator:
			if bus.ValidNetwork(p.Network) != nil {
				add("HINSCORE_API_TOKENS", "%s: operator without a valid network", p.Name)
			}
		default:
			add("HINSCORE_API_TOKENS", "%s: unknown role %q", p.Name, p.Role)
		}
	}
	if strings.TrimSpace(c.AuditLog) == "" {
		add("HINSCORE_API_AUDIT_LOG", "empty: every raw access must be audited")
	}
	if c.RateLimit.PerSecond <= 0 || c.RateLimit.PerSecond > 100000 {
		add("HINSCORE_API_RATE", "%g: want 0 < rate <= 100000 requests/s", c.RateLimit.PerSecond)
	}
	if c.RateLimit.Burst < 1 || c.RateLimit.Burst > 100000 {
		add("HINSCORE_API_BURST", "%d: want 1..100000", c.RateLimit.Burst)
	}
	if c.AuthFailures.PerSecond <= 0 || c.AuthFailures.PerSecond > 1000 {
		add("HINSCORE_API_AUTH_FAILURE_RATE", "%g: want 0 < rate <= 1000 failures/s", c.AuthFailures.PerSecond)
	}
	if c.AuthFailures.Burst < 1 || c.AuthFailures.Burst > 100000 {
		add("HINSCORE_API_AUTH_FAILURE_BURST", "%d: want 1..100000", c.AuthFailures.Burst)
	}
	return ps.Err()
}

// tokenBucket is one token's rate limit state. Time comes from the
// server's clock so tests control it.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// take refills the bucket for the time since the last call and takes one
// request from it; it returns false (and how long until one is available)
// when the bucket is empty.
func (b *tokenBucket) take(now time.Time, l RateLimit) (bool, time.Duration) {
	b.refill(now, l)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, b.wait(l)
}

// refill adds what the time since the last call earned, up to the burst (a
// new bucket is full).
func (b *tokenBucket) refill(now time.Time, l RateLimit) {
	if b.last.IsZero() {
		b.tokens = float64(l.Burst)
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(l.Burst), b.tokens+d.Seconds()*l.PerSecond)
	}
	b.last = now
}

// wait is how long until the bucket holds a request again.
func (b *tokenBucket) wait(l RateLimit) time.Duration {
	return time.Duration((1 - b.tokens) / l.PerSecond * float64(time.Second))
}
