package linker

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	// Business days are counted in a named zone (HINSCORE_SLA_ZONE): the
	// binary carries the zone database rather than trust the host's.
	_ "time/tzdata"

	"github.com/hinscore/hinscore/services/lib/domain/calendar"
	"github.com/hinscore/hinscore/services/lib/domain/purpose"

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

// DefaultSLA returns DOMAIN.md's policy defaults per request kind. The
// cross-community kinds take those of their HL7 v2 and FHIR counterparts:
// patient_discovery (XCPD) a patient query's, document_retrieve (XCA) a
// document query's.
func DefaultSLA() SLAs {
	return SLAs{
		"patient_query":     {Duration: 60 * time.Second},
		"patient_discovery": {Duration: 60 * time.Second},
		"document_query":    {Duration: 5 * time.Minute},
		"document_retrieve": {Duration: 5 * time.Minute},
		"referral":          {Duration: 72 * time.Hour},
		"order":             {Duration: 72 * time.Hour},
		"record_request":    {Duration: 24 * time.Hour},
		"patient_access":    {Duration: 30 * 24 * time.Hour},
	}
}

// DefaultSLAZone is where business days are counted unless HINSCORE_SLA_ZONE
// says otherwise: the federal government's own clock.
const DefaultSLAZone = "America/New_York"

// DefaultWindow is the width of the windows of cross-community correlation
// keys unless HINSCORE_LINKER_WINDOW says otherwise: the width the ATNA
// mapping windows them with (lib/atna/toevent.Window).
const DefaultWindow = 5 * time.Minute

// DefaultGrace is the grace after the SLA of every kind the configuration
// does not name.
const DefaultGrace = 30 * time.Second

// Config configures a linker replica: its own settings, then those it
// shares (the partition count with the ingests, NATS, the process).
type Config struct {
	Partitions []uint32 `env:"HINSCORE_LINKER_PARTITIONS" help:"static assignment, e.g. 0,1; unset: replicas share all partitions through leases"`
	// SLA per request kind ("[network/]kind[@purpose]", see SLAs), a
	// duration or business days; entries override DefaultSLA.
	SLA SLAs `env:"HINSCORE_SLA" help:"overrides, [network/]kind[@purpose]=SLA,...; SLA a duration (60s, 72h) or business days (10bd: US federal calendar, day of receipt not counted); purpose a canonical name (treatment, individual_access, ..., unknown). The most specific wins: network/kind@purpose, network/kind, kind@purpose, kind. Defaults (DOMAIN.md): patient_query and patient_discovery 60s, document_query and document_retrieve 5m, referral 72h, order 72h, record_request 24h, patient_access 720h; unknown kinds use patient_query's"`
	// Grace after the SLA before a request is unanswered (same keys, a
	// duration); DefaultGrace for every kind not named.
	Grace Durations `env:"HINSCORE_GRACE" help:"same keys, a duration; 30s for each kind not named"`
	// SLAZone is the time zone whose dates business days are counted in.
	SLAZone string `env:"HINSCORE_SLA_ZONE" default:"America/New_York" help:"IANA time zone whose civil dates business-day SLAs count (a request's day is its date there)"`
	// Window is the width of the windows of the cross-community correlation
	// keys (the ingests' width): a record joins the chain of a neighbouring
	// window only when every event of it is within this of the record.
	// SideWait is how long after its last record a decided cross-community
	// chain keeps its events, waiting for the other gateway's record
	// delivered late; a later one is a straggler (counted once, not shown in
	// the sides).
	SideWait time.Duration `env:"HINSCORE_LINKER_SIDE_WAIT" default:"15m" help:"how long after its last record a decided cross-community transaction waits for the other gateway's record delivered late (later ones are ignored as stragglers)"`
	Window   time.Duration `env:"HINSCORE_LINKER_WINDOW" default:"5m" help:"width of the windows of cross-community correlation keys, the ingests' width (lib/atna/toevent.Window): a gateway's record joins a chain of the neighbouring window within this of it"`
	// Lateness is how far behind the newest event time of a (partition,
	// network) an event may still arrive and be linked as if in order.
	Lateness time.Duration `env:"HINSCORE_LATENESS" default:"30s" help:"allowed lateness of events"`
	// Idle is how long (wall clock) a caught-up (partition, network) may see
	// no event before its watermark follows the wall clock.
	Idle time.Duration `env:"HINSCORE_IDLE" default:"10s" help:"wall-clock silence before the idle rule"`
	// Retention is how long (event time) after its deadline a chain is still
	// remembered: an unanswered request still accepts its late answer, an
	// answered one still absorbs re-sent answers.
	Retention time.Duration `env:"HINSCORE_LINKER_RETENTION" default:"24h" help:"how long after its deadline a chain is remembered (at least as long again as its SLA)"`
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

// Durations maps a request kind key ("[network/]kind[@purpose]", as SLAs)
// to a duration.
type Durations map[string]time.Duration

// UnmarshalText adds "key=duration,..." to the entries held (overriding
// those it names); every bad item is reported.
func (d *Durations) UnmarshalText(b []byte) error {
	if *d == nil {
		*d = Durations{}
	}
	return parseItems(b, "duration", func(k, v string) error {
		dur, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration", v)
		}
		(*d)[k] = dur
		return nil
	})
}

// MaxBusinessDays bounds an SLA in business days (about ten years).
const MaxBusinessDays = 2520

// SLA is the time a request has to be answered: a duration, or a number of
// business days (US federal calendar, the day of receipt not counted).
type SLA struct {
	Duration     time.Duration
	BusinessDays int
}

// ParseSLA reads an SLA: a Go duration ("60s", "72h") or business days
// ("10bd").
func ParseSLA(v string) (SLA, error) {
	if n, ok := strings.CutSuffix(v, "bd"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > MaxBusinessDays {
			return SLA{}, fmt.Errorf("%q is not 1bd to %dbd", v, MaxBusinessDays)
		}
		return SLA{BusinessDays: days}, nil
	}
	dur, err := time.ParseDuration(v)
	if err != nil {
		return SLA{}, fmt.Errorf("%q is neither a duration nor business days (10bd)", v)
	}
	return SLA{Duration: dur}, nil
}

// String is the SLA as ParseSLA reads it.
func (s SLA) String() string {
	if s.BusinessDays > 0 {
		return strconv.Itoa(s.BusinessDays) + "bd"
	}
	return s.Duration.String()
}

// SLAs maps "[network/]kind[@purpose]" to an SLA: a request kind, the kind
// in one network, the kind for one canonical purpose (lib/domain/purpose),
// or both, e.g. "record_request=10bd,document_query@individual_access=1bd,
// netA/patient_discovery=90s".
type SLAs map[string]SLA

// UnmarshalText adds "key=SLA,..." to the entries held (overriding those it
// names); every bad item is reported.
func (d *SLAs) UnmarshalText(b []byte) error {
	if *d == nil {
		*d = SLAs{}
	}
	return parseItems(b, "SLA", func(k, v string) error {
		sla, err := ParseSLA(v)
		if err != nil {
			return err
		}
		(*d)[k] = sla
		return nil
	})
}

// parseItems splits "key=value,..." and hands each item whose key is a valid
// "[network/]kind[@purpose]" to set; the error names every bad item.
func parseItems(b []byte, what string, set func(key, value string) error) error {
	var errs []error
	for _, item := range strings.Split(string(b), ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			errs = append(errs, fmt.Errorf("%q is not kind=%s", item, what))
			continue
		}
		if err := checkKey(k); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := set(k, v); err != nil {
			errs = append(errs, fmt.Errorf("%q: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// checkKey checks a "[network/]kind[@purpose]" key: one network at most, a
// kind, and a purpose only by its canonical name.
func checkKey(k string) error {
	rest, p, hasPurpose := strings.Cut(k, "@")
	network, kind, hasNetwork := strings.Cut(rest, "/")
	if !hasNetwork {
		kind = network
	}
	switch {
	case kind == "" || strings.Contains(kind, "/") || hasNetwork && network == "":
		return fmt.Errorf("%q is not [network/]kind[@purpose]", k)
	case hasPurpose:
		if _, err := purpose.Parse(p); err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
	}
	return nil
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
	case c.Window <= 0:
		return fmt.Errorf("linker config: Window (HINSCORE_LINKER_WINDOW) must be positive, got %s", c.Window)
	case c.SideWait < 0:
		return fmt.Errorf("linker config: SideWait (HINSCORE_LINKER_SIDE_WAIT) must not be negative, got %s", c.SideWait)
	}
	if _, err := time.LoadLocation(c.SLAZone); err != nil || c.SLAZone == "" {
		return fmt.Errorf("linker config: SLAZone (HINSCORE_SLA_ZONE) %q is not a time zone", c.SLAZone)
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
		if sla := c.SLA[k]; sla.BusinessDays < 0 || sla.BusinessDays > MaxBusinessDays || sla.BusinessDays == 0 && sla.Duration <= 0 {
			return fmt.Errorf("linker config: SLA (HINSCORE_SLA) of %q must be positive, got %s", k, sla)
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
	sla        SLAs
	grace      map[string]int64
	calendar   calendar.Calendar
	window     int64
	sideWait   int64
	lateness   int64
	idle       time.Duration
	retention  int64
	maxPending int
}

func newRules(c Config) rules {
	r := rules{
		sla:        SLAs{},
		grace:      map[string]int64{},
		calendar:   calendar.USFederal(),
		window:     c.Window.Milliseconds(),
		sideWait:   c.SideWait.Milliseconds(),
		lateness:   c.Lateness.Milliseconds(),
		idle:       c.Idle,
		retention:  c.Retention.Milliseconds(),
		maxPending: c.MaxPending,
	}
	// Validate refused a zone that does not load; UTC stands in for the
	// empty one of a hand-built Config.
	if loc, err := time.LoadLocation(c.SLAZone); err == nil {
		r.calendar = r.calendar.In(loc)
	}
	// The defaults stay underneath a partial map built by hand (the lead's
	// composition may set only the kinds it changes).
	maps.Copy(r.sla, DefaultSLA())
	maps.Copy(r.sla, c.SLA)
	for k, d := range c.Grace {
		r.grace[k] = d.Milliseconds()
	}
	return r
}

// limits returns the limit of a request kind made for a purpose in a
// network: of the most specific key the configuration has, in the order
// network/kind@purpose, network/kind, kind@purpose, kind. A kind none of
// them names is treated as DefaultKind; a kind without a grace gets
// DefaultGrace. A request that carried no purpose ("") is of purpose
// "unknown", as analysts see it.
func (r *rules) limits(network, kind, why string) join.Limit {
	if why == "" {
		why = string(purpose.Unknown)
	}
	sla, ok := mostSpecific(r.sla, network, kind, why)
	if !ok {
		kind = DefaultKind
		sla, _ = mostSpecific(r.sla, network, kind, why)
	}
	grace, ok := mostSpecific(r.grace, network, kind, why)
	if !ok {
		grace = DefaultGrace.Milliseconds()
	}
	return join.Limit{SLA: sla.Duration.Milliseconds(), BusinessDays: sla.BusinessDays, Grace: grace}
}

// mostSpecific is the entry of m for a request kind made for a purpose in
// a network, by the most specific key it has.
func mostSpecific[V any](m map[string]V, network, kind, why string) (V, bool) {
	for _, k := range [...]string{network + "/" + kind + "@" + why, network + "/" + kind, kind + "@" + why, kind} {
		if v, ok := m[k]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}
