package chwriter

import (
	"time"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
)

// defaultContentRetries is used when Config.ContentRetries is 0.
const defaultContentRetries = 3

// Config is the writer's configuration: its own settings, then those it
// shares (ClickHouse, NATS, the process).
type Config struct {
	// BatchRows is how many messages (events, or outcomes with their steps)
	// one insert carries at most.
	BatchRows int `env:"HINSCORE_CHWRITER_BATCH_ROWS" default:"50000" help:"messages per insert at most (1-1000000)"`
	// FlushInterval is how long the first message of a batch waits for the
	// batch to fill before it is written anyway.
	FlushInterval time.Duration `env:"HINSCORE_CHWRITER_FLUSH" default:"1s" help:"longest wait of a message for its batch to fill (10ms-1m)"`
	// Consumer prefixes the durable consumer names (<prefix>_events,
	// <prefix>_outcomes); writers sharing it share the work.
	Consumer string `env:"HINSCORE_CHWRITER_CONSUMER" default:"chwriter" help:"durable consumer name prefix; writers with the same prefix share the work"`
	// AckWait is how long JetStream waits for an ack before redelivering.
	// While ClickHouse is down the writer extends it for the messages it
	// holds, so it only matters when the writer itself dies.
	AckWait time.Duration `env:"HINSCORE_CHWRITER_ACK_WAIT" default:"2m" help:"JetStream redelivery deadline (≥ 1s and ≥ 2 × FLUSH)"`
	// RetryMax caps the wait between attempts to write a batch.
	RetryMax time.Duration `env:"HINSCORE_CHWRITER_RETRY_MAX" default:"30s" help:"longest pause between insert attempts"`
	// ContentRetries is how many times a batch that ClickHouse rejects for
	// its content (a bad value, a failed check) is tried as it is before the
	// writer splits it to find the rows at fault and dead-letters them.
	// 0 means the default, 3.
	ContentRetries int `env:"HINSCORE_CHWRITER_CONTENT_RETRIES" default:"3" help:"attempts of a batch ClickHouse rejects for its content before it is split (0-100; 0 = 3)"`
	// RollupEvery is how often the months the writer wrote outcomes for are
	// rebuilt in the outcomes_daily rollup (chstore.RebuildRollups); 0 turns
	// the rebuild off (another process does it).
	RollupEvery time.Duration `env:"HINSCORE_CHWRITER_ROLLUP_EVERY" default:"10m" help:"how often the months written are rebuilt in outcomes_daily (0 = off, else 1s-24h)"`
	// RollupShards, on a ClickHouse cluster, are one node of each shard:
	// the rebuild then runs on each shard's own tables (chstore.ShardLocal)
	// instead of through the writer's connection, since a Distributed
	// table cannot swap partitions. Empty: one server.
	RollupShards []chstore.DSN `env:"HINSCORE_CHWRITER_ROLLUP_SHARDS" help:"on a ClickHouse cluster: one node of each shard, comma-separated clickhouse://USER:PASSWORD@HOST:PORT/DATABASE; the rebuild then runs on each shard's own outcomes_local → outcomes_daily_local (deploy/README.md), since a Distributed table cannot swap partitions. Unset: one server"`

	chstore.ClickHouse
	bus.NATS
	service.Process `defaults:"HINSCORE_ADMIN_ADDR=127.0.0.1:9103"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	var c Config
	service.Defaults(&c)
	return c
}

// ConfigFromEnv reads the configuration, naming each bad variable.
func ConfigFromEnv(env *service.Env) (Config, error) {
	return service.LoadOver(env, DefaultConfig(), "chwriter.ConfigFromEnv")
}

// Validate checks the writer's own settings, naming each bad variable. A
// variable that did not parse left its default, so the loader's error
// names it once.
func (c Config) Validate() error {
	var ps service.Problems
	add := ps.Add
	if c.BatchRows < 1 || c.BatchRows > 1_000_000 {
		add("HINSCORE_CHWRITER_BATCH_ROWS", "%d is outside 1-1000000", c.BatchRows)
	}
	if c.FlushInterval < 10*time.Millisecond || c.FlushInterval > time.Minute {
		add("HINSCORE_CHWRITER_FLUSH", "%s is outside 10ms-1m", c.FlushInterval)
	}
	if !validConsumer(c.Consumer) {
		add("HINSCORE_CHWRITER_CONSUMER", "%q must be 1-32 of [A-Za-z0-9_-]", c.Consumer)
	}
	// The ack deadline must leave room for a full batch wait plus an insert.
	if c.AckWait < 2*c.FlushInterval || c.AckWait < time.Second {
		add("HINSCORE_CHWRITER_ACK_WAIT", "%s must be at least 1s and twice the flush interval", c.AckWait)
	}
	if c.RetryMax < 10*time.Millisecond {
		add("HINSCORE_CHWRITER_RETRY_MAX", "%s is below 10ms", c.RetryMax)
	}
	if c.ContentRetries < 0 || c.ContentRetries > 100 {
		add("HINSCORE_CHWRITER_CONTENT_RETRIES", "%d is outside 0-100", c.ContentRetries)
	}
	if c.RollupEvery != 0 && (c.RollupEvery < time.Second || c.RollupEvery > 24*time.Hour) {
		add("HINSCORE_CHWRITER_ROLLUP_EVERY", "%s must be 0 (off) or 1s-24h", c.RollupEvery)
	}
	return ps.Err()
}

func validConsumer(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
