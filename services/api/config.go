package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
)

// Environment variables.
const (
	EnvAddr       = "HINSCORE_API_ADDR"
	EnvTokens     = "HINSCORE_API_TOKENS"
	EnvTokensFile = "HINSCORE_API_TOKENS_FILE"
	EnvAuditLog   = "HINSCORE_API_AUDIT_LOG"
	EnvRate       = "HINSCORE_API_RATE"
	EnvBurst      = "HINSCORE_API_BURST"
	EnvAdminAddr  = service.EnvAdminAddr
)

// Defaults.
const (
	DefaultAddr      = "127.0.0.1:8090"
	DefaultAuditLog  = "hinscore-api-audit.jsonl"
	DefaultRate      = 10.0 // requests per second per token, sustained
	DefaultBurst     = 40
	DefaultAdminAddr = "127.0.0.1:9108"
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
	PerSecond float64 // HINSCORE_API_RATE
	Burst     int     // HINSCORE_API_BURST
}

// Config configures the API server.
type Config struct {
	Addr string // HINSCORE_API_ADDR
	// Tokens maps the SHA-256 hex of each API token to its holder.
	// HINSCORE_API_TOKENS and/or the file HINSCORE_API_TOKENS_FILE hold
	// entries "name=role[:network]:sha256hex", separated by commas or
	// newlines, e.g. "alice=investigator:<hex>,ops-ns=operator:northstar:<hex>".
	// Only hashes are ever configured (HashToken).
	Tokens map[string]Principal
	// AuditLog is the file every raw-message and evidence access is
	// appended to, one JSON line each (HINSCORE_API_AUDIT_LOG).
	AuditLog  string
	RateLimit RateLimit
	// RawKeys (HINSCORE_RAW_KEYS, "id:<64 hex>[,id:<64 hex>...]", the
	// ingests' keys: the current one and those of earlier rotations) open
	// the original bytes sealed in EVENTS (seal.RawKeys).
	RawKeys *seal.RawKeys
}

// DefaultConfig is the configuration with every default and no token.
func DefaultConfig() Config {
	return Config{
		Addr:      DefaultAddr,
		Tokens:    map[string]Principal{},
		AuditLog:  DefaultAuditLog,
		RateLimit: RateLimit{PerSecond: DefaultRate, Burst: DefaultBurst},
		RawKeys:   seal.MustParseRawKeys(seal.DevRawKeys),
	}
}

// HashToken is how an API token is configured: the hex SHA-256 of it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ConfigFromEnv reads the configuration; the error names every bad variable.
func ConfigFromEnv(env *service.Env) (Config, error) {
	c := DefaultConfig()
	c.Addr = env.String(EnvAddr, c.Addr)
	if s := env.String(EnvTokens, ""); s != "" {
		if err := ParseTokens(s, c.Tokens); err != nil {
			env.Fail(EnvTokens, "%v", err)
		}
	}
	if path := env.String(EnvTokensFile, ""); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			env.Fail(EnvTokensFile, "%v", err)
		} else if err := ParseTokens(string(data), c.Tokens); err != nil {
			env.Fail(EnvTokensFile, "%s: %v", path, err)
		}
	}
	c.AuditLog = env.String(EnvAuditLog, c.AuditLog)
	rate := env.String(EnvRate, "")
	if rate != "" {
		var f float64
		if _, err := fmt.Sscanf(rate, "%g", &f); err != nil {
			env.Fail(EnvRate, "%q: want requests per second, e.g. 10 or 0.5", rate)
		} else {
			c.RateLimit.PerSecond = f
		}
	}
	c.RateLimit.Burst = env.Int(EnvBurst, c.RateLimit.Burst)
	if k := seal.RawKeysFromEnv(env); k != nil {
		c.RawKeys = k
	}
	for _, p := range c.problems() {
		env.Fail(p[0], "%s", p[1])
	}
	if err := env.Err(); err != nil {
		return Config{}, fmt.Errorf("api.ConfigFromEnv: %w", err)
	}
	return c, nil
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
	return fmt.Errorf("api config: %s", strings.Join(msgs, "; "))
}

// problems lists [variable, problem] pairs.
func (c Config) problems() [][2]string {
	var ps [][2]string
	add := func(name, problem string) { ps = append(ps, [2]string{name, problem}) }
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		add(EnvAddr, err.Error())
	}
	if c.RawKeys == nil {
		add(seal.EnvRawKeys, "no key")
	}
	if len(c.Tokens) == 0 {
		add(EnvTokens, "no token configured: nobody could use the API")
	}
	hashes := make([]string, 0, len(c.Tokens))
	for h := range c.Tokens {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	for _, h := range hashes {
		p := c.Tokens[h]
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size || h != strings.ToLower(h) {
			add(EnvTokens, fmt.Sprintf("%s: token hash is not lower-case SHA-256 hex", p.Name))
		}
		switch p.Role {
		case RoleAnalyst, RoleInvestigator:
			if p.Network != "" {
				add(EnvTokens, fmt.Sprintf("%s: only an operator is bound to a network", p.Name))
			}
		case RoleOperator:
			if bus.ValidNetwork(p.Network) != nil {
				add(EnvTokens, fmt.Sprintf("%s: operator without a valid network", p.Name))
			}
		default:
			add(EnvTokens, fmt.Sprintf("%s: unknown role %q", p.Name, p.Role))
		}
	}
	if strings.TrimSpace(c.AuditLog) == "" {
		add(EnvAuditLog, "empty: every raw access must be audited")
	}
	if c.RateLimit.PerSecond <= 0 || c.RateLimit.PerSecond > 100000 {
		add(EnvRate, fmt.Sprintf("%g: want 0 < rate <= 100000 requests/s", c.RateLimit.PerSecond))
	}
	if c.RateLimit.Burst < 1 || c.RateLimit.Burst > 100000 {
		add(EnvBurst, fmt.Sprintf("%d: want 1..100000", c.RateLimit.Burst))
	}
	return ps
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
	if b.last.IsZero() {
		b.tokens = float64(l.Burst)
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(l.Burst), b.tokens+d.Seconds()*l.PerSecond)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.PerSecond * float64(time.Second))
	return false, wait
}
