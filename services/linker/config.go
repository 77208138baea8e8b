package linker

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/linker/join"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
)

// RuleVersion names the linking and classification rules; the join
// (join.RuleVersion) stamps it on every outcome so a scorecard can say which
// rules decided it.
const RuleVersion = join.RuleVersion

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

// Config configures a linker replica: its own settings, then those it
// shares (the partition count with the ingests, NATS, the process).
type Config struct {
	Partitions []uint32 `env:"HINSCORE_LINKER_PARTITIONS" help:"static assignment, e.g. 0,1; unset: replicas share all partitions through leases"`
	// SLA per request kind, or per "network/kind" to override one network;
	// entries override DefaultSLA.
	SLA Durations `env:"HINSCORE_SLA" help:"overrides, kind=dur,...; network/kind=dur for one network. Defaults (DOMAIN.md): patient_query 60s, document_query 5m, referral 72h, order 72h, record_request 24h, patient_access 720h; unknown kinds use patient_query's"`
	// Grace after the SLA before a request is unanswered (same form);
	// DefaultGrace for every kind not named.
	Grace Durations `env:"HINSCORE_GRACE" help:"same form; 30s for each kind not named"`
	// Lateness is how far behind the newest event time of a (partition,
	// network) an event may still arrive and be linked as if in order.
	Lateness time.Duration `env:"HINSCORE_LATENESS" default:"30s" help:"allowed lateness of events"`
	// Idle is how long (wall clock) a caught-up (partition, network) may see
	// no event before its watermark follows the wall clock.
	Idle time.Duration `env:"HINSCORE_IDLE" default:"10s" help:"wall-clock silence before the idle rule"`
	// Retention is how long (event time) after its deadline a chain is still
	// remembered: an unanswered request still accepts its late answer, an
	// answered one still absorbs re-sent answers.
	Retention time.Duration `env:"HINSCORE_LINKER_RETENTION" default:"24h" help:"how long after its deadline a chain is remembered"`
	// Consumer prefixes the names of what the linker creates on the bus:
	// the checkpoint object store <Consumer>_checkpoints, the lease bucket
	// <Consumer>_leases, the idle-rule stream <CONSUMER>_WATERMARKS.
	Consumer string `env:"HINSCORE_LINKER_CONSUMER" default:"linker" help:"prefix of what the linker creates: consumers, <c>_checkpoints, <c>_leases, <C>_WATERMARKS (letters, digits, _, -)"`
	// ReplicaID names this replica in the partition leases; it must be
	// unique among live replicas. A restarted replica with the same id takes
	// its leases back at once instead of waiting for them to expire
	// (default DefaultReplicaID).
	ReplicaID string `env:"HINSCORE_LINKER_REPLICA" help:"this replica's id in the leases (unique among live replicas; keep it stable across restarts to take leases back at once); default <hostname>-<pid>"`
	// LeaseTTL is how long a partition stays owned by a replica that stopped
	// renewing it. Leases are renewed every third of it.
	LeaseTTL time.Duration `env:"HINSCORE_LINKER_LEASE_TTL" default:"10s" help:"a dead replica's partitions move after this (≥ 300ms; renewed every third)"`
	// CheckpointInterval and CheckpointEvents: a partition's state is
	// checkpointed when either this much time (wall clock) or this many
	// events have passed since the last checkpoint, and something changed.
	CheckpointInterval time.Duration `env:"HINSCORE_LINKER_CHECKPOINT_INTERVAL" default:"5s" help:"checkpoint at least this often (wall clock) when something changed"`
	CheckpointEvents   int           `env:"HINSCORE_LINKER_CHECKPOINT_EVENTS" default:"100000" help:"… or after this many events"`
	// MaxPending caps the pending chains (open requests, answers waiting
	// for their request) of one partition; beyond it the oldest is closed
	// with OverflowReason.
	MaxPending int `env:"HINSCORE_LINKER_MAX_PENDING" default:"500000" help:"cap on pending chains per partition (overflow policy above)"`

	// Partitioning is the partition count of EVENTS (PartitionCount), the
	// ingests' too.
	bus.Partitioning
	bus.NATS
	service.Process `defaults:"HINSCORE_ADMIN_ADDR=127.0.0.1:9102"`
}

// Durations maps a request kind, or "network/kind", to a duration.
type Durations map[string]time.Duration

// UnmarshalText adds "kind=duration,network/kind=duration" to the entries
// held (overriding those it names); every bad item is reported.
func (d *Durations) UnmarshalText(b []byte) error {
	if *d == nil {
		*d = Durations{}
	}
	var errs []error
	for _, item := range strings.Split(string(b), ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			errs = append(errs, fmt.Errorf("%q is not kind=duration", item))
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%q: %q is not a duration", k, v))
			continue
		}
		(*d)[k] = dur
	}
	return errors.Join(errs...)
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	c := Config{SLA: DefaultSLA(), Grace: Durations{}, ReplicaID: DefaultReplicaID()}
	service.Defaults(&c)
	return c
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
	return service.LoadOver(env, DefaultConfig(), "linker.ConfigFromEnv")
}

// Validate fills nothing in: it reports the first bad field by its name.
func (c Config) Validate() error {
	if err := c.Partitioning.Validate(); err != nil {
		return err
	}
	switch {
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
