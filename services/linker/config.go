package linker

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/lib/service"
)

// RuleVersion names the linking and classification rules of this package; it
// is stamped on every outcome so a scorecard can say which rules decided it.
const RuleVersion = "link/1"

// DefaultKind is the request kind whose SLA and grace apply to a kind the
// configuration does not name.
const DefaultKind = "patient_query"

// DefaultSLA returns DOMAIN.md's policy defaults per request kind.
func DefaultSLA() map[string]time.Duration {
	return map[string]time.Duration{
		"patient_query":  60 * time.Second,
		"document_query": 5 * time.Minute,
		"referral":       72 * time.Hour,
		"order":          72 * time.Hour,
		"record_request": 24 * time.Hour,
		"patient_access": 30 * 24 * time.Hour,
	}
}

// DefaultGrace is the grace after the SLA of every kind the configuration
// does not name.
const DefaultGrace = 30 * time.Second

// Config configures a linker replica.
type Config struct {
	PartitionCount int      // HINSCORE_PARTITIONS, default 4
	Partitions     []uint32 // HINSCORE_LINKER_PARTITIONS "0,1"; default all
	// SLA per request kind, or per "network/kind" to override one network
	// (HINSCORE_SLA "patient_query=60s,referral=72h,netA/referral=48h");
	// entries override DefaultSLA.
	SLA map[string]time.Duration
	// Grace after the SLA before a request is unanswered (HINSCORE_GRACE, same
	// form); DefaultGrace for every kind not named.
	Grace map[string]time.Duration
	// Lateness is how far behind the newest event time of a (partition,
	// network) an event may still arrive and be linked as if in order
	// (HINSCORE_LATENESS, default 30s).
	Lateness time.Duration
	// Idle is how long (wall clock) a caught-up (partition, network) may see
	// no event before its watermark follows the wall clock (HINSCORE_IDLE,
	// default 10s).
	Idle time.Duration
	// Retention is how long (event time) after its deadline a chain is still
	// remembered: an unanswered request still accepts its late answer, an
	// answered one still absorbs re-sent answers (HINSCORE_LINKER_RETENTION,
	// default 24h).
	Retention time.Duration
	// Consumer prefixes the names of what the linker creates on the bus:
	// the checkpoint object store <Consumer>_checkpoints, the lease bucket
	// <Consumer>_leases, the idle-rule stream <CONSUMER>_WATERMARKS
	// (HINSCORE_LINKER_CONSUMER, default "linker"; letters, digits, _ and -).
	Consumer string
	// ReplicaID names this replica in the partition leases; it must be
	// unique among live replicas. A restarted replica with the same id takes
	// its leases back at once instead of waiting for them to expire
	// (HINSCORE_LINKER_REPLICA, default <hostname>-<pid>).
	ReplicaID string
	// LeaseTTL is how long a partition stays owned by a replica that stopped
	// renewing it (HINSCORE_LINKER_LEASE_TTL, default 10s). Leases are
	// renewed every third of it.
	LeaseTTL time.Duration
	// CheckpointInterval and CheckpointEvents: a partition's state is
	// checkpointed when either this much time (wall clock) or this many
	// events have passed since the last checkpoint, and something changed
	// (HINSCORE_LINKER_CHECKPOINT_INTERVAL, default 5s;
	// HINSCORE_LINKER_CHECKPOINT_EVENTS, default 100000).
	CheckpointInterval time.Duration
	CheckpointEvents   int
	// MaxPending caps the pending chains (open requests, answers waiting
	// for their request) of one partition; beyond it the oldest is closed
	// with OverflowReason (HINSCORE_LINKER_MAX_PENDING, default 500000).
	MaxPending int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		PartitionCount: 4,
		SLA:            DefaultSLA(),
		Grace:          map[string]time.Duration{},
		Lateness:       30 * time.Second,
		Idle:           10 * time.Second,
		Retention:      24 * time.Hour,
		Consumer:       "linker",

		ReplicaID:          DefaultReplicaID(),
		LeaseTTL:           10 * time.Second,
		CheckpointInterval: 5 * time.Second,
		CheckpointEvents:   100_000,
		MaxPending:         500_000,
	}
}

// DefaultReplicaID is <hostname>-<pid>, with every character a lease key
// cannot hold replaced by '_'.
func DefaultReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "linker"
	}
	id := []byte(fmt.Sprintf("%s-%d", host, os.Getpid()))
	for i, c := range id {
		if !replicaChar(c) {
			id[i] = '_'
		}
	}
	return strings.Trim(string(id), ".")
}

func replicaChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

func nameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func validName(s string, ok func(byte) bool) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// ConfigFromEnv reads the configuration from the environment and validates
// it; the error names every bad variable.
func ConfigFromEnv(env *service.Env) (Config, error) {
	def := DefaultConfig()
	cfg := Config{
		PartitionCount: env.Int("HINSCORE_PARTITIONS", def.PartitionCount),
		SLA:            def.SLA,
		Grace:          def.Grace,
		Lateness:       env.Duration("HINSCORE_LATENESS", def.Lateness),
		Idle:           env.Duration("HINSCORE_IDLE", def.Idle),
		Retention:      env.Duration("HINSCORE_LINKER_RETENTION", def.Retention),
		Consumer:       env.String("HINSCORE_LINKER_CONSUMER", def.Consumer),

		ReplicaID:          env.String("HINSCORE_LINKER_REPLICA", def.ReplicaID),
		LeaseTTL:           env.Duration("HINSCORE_LINKER_LEASE_TTL", def.LeaseTTL),
		CheckpointInterval: env.Duration("HINSCORE_LINKER_CHECKPOINT_INTERVAL", def.CheckpointInterval),
		CheckpointEvents:   env.Int("HINSCORE_LINKER_CHECKPOINT_EVENTS", def.CheckpointEvents),
		MaxPending:         env.Int("HINSCORE_LINKER_MAX_PENDING", def.MaxPending),
	}
	for _, p := range env.List("HINSCORE_LINKER_PARTITIONS", nil) {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			env.Fail("HINSCORE_LINKER_PARTITIONS", "%q is not a partition number", p)
			continue
		}
		cfg.Partitions = append(cfg.Partitions, uint32(n))
	}
	parseDurations(env, "HINSCORE_SLA", cfg.SLA)
	parseDurations(env, "HINSCORE_GRACE", cfg.Grace)
	if err := env.Err(); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parseDurations reads "key=duration,key=duration" into into.
func parseDurations(env *service.Env, name string, into map[string]time.Duration) {
	for _, item := range env.List(name, nil) {
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			env.Fail(name, "%q is not kind=duration", item)
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			env.Fail(name, "%q: %q is not a duration", k, v)
			continue
		}
		into[k] = d
	}
}

// Validate fills nothing in: it reports the first bad field by its name.
func (c Config) Validate() error {
	switch {
	case c.PartitionCount < 1:
		return fmt.Errorf("linker config: PartitionCount (HINSCORE_PARTITIONS) must be at least 1, got %d", c.PartitionCount)
	case c.Lateness < 0:
		return fmt.Errorf("linker config: Lateness (HINSCORE_LATENESS) must not be negative, got %s", c.Lateness)
	case c.Idle <= 0:
		return fmt.Errorf("linker config: Idle (HINSCORE_IDLE) must be positive, got %s", c.Idle)
	case c.Retention <= 0:
		return fmt.Errorf("linker config: Retention (HINSCORE_LINKER_RETENTION) must be positive, got %s", c.Retention)
	case !validName(c.Consumer, nameChar):
		return fmt.Errorf("linker config: Consumer (HINSCORE_LINKER_CONSUMER) must be 1-128 letters, digits, _ or -, got %q", c.Consumer)
	case !validName(c.ReplicaID, replicaChar) || strings.HasPrefix(c.ReplicaID, ".") || strings.HasSuffix(c.ReplicaID, "."):
		return fmt.Errorf("linker config: ReplicaID (HINSCORE_LINKER_REPLICA) must be 1-128 letters, digits, _, - or inner dots, got %q", c.ReplicaID)
	case c.LeaseTTL < 300*time.Millisecond:
		return fmt.Errorf("linker config: LeaseTTL (HINSCORE_LINKER_LEASE_TTL) must be at least 300ms, got %s", c.LeaseTTL)
	case c.CheckpointInterval <= 0:
		return fmt.Errorf("linker config: CheckpointInterval (HINSCORE_LINKER_CHECKPOINT_INTERVAL) must be positive, got %s", c.CheckpointInterval)
	case c.CheckpointEvents < 1:
		return fmt.Errorf("linker config: CheckpointEvents (HINSCORE_LINKER_CHECKPOINT_EVENTS) must be at least 1, got %d", c.CheckpointEvents)
	case c.MaxPending < 1:
		return fmt.Errorf("linker config: MaxPending (HINSCORE_LINKER_MAX_PENDING) must be at least 1, got %d", c.MaxPending)
	}
	seen := map[uint32]bool{}
	for _, p := range c.Partitions {
		if int(p) >= c.PartitionCount {
			return fmt.Errorf("linker config: Partitions (HINSCORE_LINKER_PARTITIONS) has %d, outside 0..%d", p, c.PartitionCount-1)
		}
		if seen[p] {
			return fmt.Errorf("linker config: Partitions (HINSCORE_LINKER_PARTITIONS) lists %d twice", p)
		}
		seen[p] = true
	}
	for _, k := range slices.Sorted(maps.Keys(c.SLA)) {
		if c.SLA[k] <= 0 {
			return fmt.Errorf("linker config: SLA (HINSCORE_SLA) of %q must be positive, got %s", k, c.SLA[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Grace)) {
		if c.Grace[k] < 0 {
			return fmt.Errorf("linker config: Grace (HINSCORE_GRACE) of %q must not be negative, got %s", k, c.Grace[k])
		}
	}
	return nil
}

// dynamic reports whether the replicas share the partitions through leases
// (no static Partitions list).
func (c Config) dynamic() bool { return len(c.Partitions) == 0 }

// partitions returns the partitions this replica may consume: the static
// list, else all of them.
func (c Config) partitions() []uint32 {
	if len(c.Partitions) > 0 {
		return slices.Clone(c.Partitions)
	}
	out := make([]uint32, c.PartitionCount)
	for i := range out {
		out[i] = uint32(i)
	}
	return out
}

// rules are the configuration the pure join needs, in epoch milliseconds.
type rules struct {
	sla        map[string]int64
	grace      map[string]int64
	lateness   int64
	idle       time.Duration
	retention  int64
	maxPending int
}

func newRules(c Config) rules {
	r := rules{
		sla:        map[string]int64{},
		grace:      map[string]int64{},
		lateness:   c.Lateness.Milliseconds(),
		idle:       c.Idle,
		retention:  c.Retention.Milliseconds(),
		maxPending: c.MaxPending,
	}
	// The defaults stay underneath a partial map built by hand (the lead's
	// composition may set only the kinds it changes).
	for k, d := range DefaultSLA() {
		r.sla[k] = d.Milliseconds()
	}
	for k, d := range c.SLA {
		r.sla[k] = d.Milliseconds()
	}
	for k, d := range c.Grace {
		r.grace[k] = d.Milliseconds()
	}
	return r
}

// limits returns the SLA and grace of a request kind in a network: the
// network's own setting, else the kind's; a kind the configuration does not
// know is treated as DefaultKind, and a kind without a grace gets DefaultGrace.
func (r *rules) limits(network, kind string) (sla, grace int64) {
	_, known := r.sla[kind]
	_, knownHere := r.sla[network+"/"+kind]
	if !known && !knownHere {
		kind = DefaultKind
	}
	sla, ok := r.sla[network+"/"+kind]
	if !ok {
		sla = r.sla[kind]
	}
	if grace, ok = r.grace[network+"/"+kind]; !ok {
		if grace, ok = r.grace[kind]; !ok {
			grace = DefaultGrace.Milliseconds()
		}
	}
	return sla, grace
}
