package chwriter

import (
	"errors"
	"fmt"
	"time"

	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
)

// Environment variables read by ConfigFromEnv.
const (
	EnvBatchRows = "HINSCORE_CHWRITER_BATCH_ROWS"
	EnvFlush     = "HINSCORE_CHWRITER_FLUSH"
	EnvConsumer  = "HINSCORE_CHWRITER_CONSUMER"
	EnvAckWait   = "HINSCORE_CHWRITER_ACK_WAIT"
	EnvRetryMax  = "HINSCORE_CHWRITER_RETRY_MAX"
	EnvContent   = "HINSCORE_CHWRITER_CONTENT_RETRIES"
	EnvRollup    = "HINSCORE_CHWRITER_ROLLUP_EVERY"
	EnvShards    = "HINSCORE_CHWRITER_ROLLUP_SHARDS"
)

// defaultContentRetries is used when Config.ContentRetries is 0.
const defaultContentRetries = 3

// Config is the writer's configuration.
type Config struct {
	// BatchRows is how many messages (events, or outcomes with their steps)
	// one insert carries at most.
	BatchRows int
	// FlushInterval is how long the first message of a batch waits for the
	// batch to fill before it is written anyway.
	FlushInterval time.Duration
	// Consumer prefixes the durable consumer names (<prefix>_events,
	// <prefix>_outcomes); writers sharing it share the work.
	Consumer string
	// AckWait is how long JetStream waits for an ack before redelivering.
	// While ClickHouse is down the writer extends it for the messages it
	// holds, so it only matters when the writer itself dies.
	AckWait time.Duration
	// RetryMax caps the wait between attempts to write a batch.
	RetryMax time.Duration
	// ContentRetries is how many times a batch that ClickHouse rejects for
	// its content (a bad value, a failed check) is tried as it is before the
	// writer splits it to find the rows at fault and dead-letters them.
	// 0 means the default, 3.
	ContentRetries int
	// RollupEvery is how often the months the writer wrote outcomes for are
	// rebuilt in the outcomes_daily rollup (chstore.RebuildRollups); 0 turns
	// the rebuild off (another process does it).
	RollupEvery time.Duration
	// RollupShards, on a ClickHouse cluster, are one node of each shard
	// (clickhouse://HOST:PORT/DATABASE DSNs, comma-separated in the
	// environment): the rebuild then runs on each shard's own tables
	// (chstore.ShardLocal) instead of through the writer's connection,
	// since a Distributed table cannot swap partitions. Empty: one server.
	RollupShards []chstore.DSN
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		BatchRows:      50000,
		FlushInterval:  time.Second,
		Consumer:       "chwriter",
		AckWait:        2 * time.Minute,
		RetryMax:       30 * time.Second,
		ContentRetries: defaultContentRetries,
		RollupEvery:    10 * time.Minute,
	}
}

// ConfigFromEnv reads the configuration, naming each bad variable.
func ConfigFromEnv(env *service.Env) (Config, error) {
	d := DefaultConfig()
	c := Config{
		BatchRows:      env.Int(EnvBatchRows, d.BatchRows),
		FlushInterval:  env.Duration(EnvFlush, d.FlushInterval),
		Consumer:       env.String(EnvConsumer, d.Consumer),
		AckWait:        env.Duration(EnvAckWait, d.AckWait),
		RetryMax:       env.Duration(EnvRetryMax, d.RetryMax),
		ContentRetries: env.Int(EnvContent, d.ContentRetries),
		RollupEvery:    env.Duration(EnvRollup, d.RollupEvery),
	}
	for _, s := range env.List(EnvShards, nil) {
		d, err := chstore.ParseDSN(s)
		if err != nil {
			// The error names the DSN's parts, never its password.
			env.Fail(EnvShards, "%v", err)
			continue
		}
		c.RollupShards = append(c.RollupShards, d)
	}
	// A variable that did not parse left its default in c, so validating c
	// adds only the problems of the variables that did parse: one error
	// names every bad variable.
	if err := errors.Join(env.Err(), c.validate(map[string]string{
		"BatchRows": EnvBatchRows, "FlushInterval": EnvFlush, "Consumer": EnvConsumer,
		"AckWait": EnvAckWait, "RetryMax": EnvRetryMax, "ContentRetries": EnvContent, "RollupEvery": EnvRollup,
	})); err != nil {
		return Config{}, fmt.Errorf("chwriter.ConfigFromEnv: %w", err)
	}
	return c, nil
}

// validate checks every field; names maps a field to the name to report
// (its environment variable when the config came from there).
func (c Config) validate(names map[string]string) error {
	name := func(field string) string {
		if n, ok := names[field]; ok {
			return n
		}
		return field
	}
	var errs []error
	if c.BatchRows < 1 || c.BatchRows > 1_000_000 {
		errs = append(errs, fmt.Errorf("%s: %d is outside 1-1000000", name("BatchRows"), c.BatchRows))
	}
	if c.FlushInterval < 10*time.Millisecond || c.FlushInterval > time.Minute {
		errs = append(errs, fmt.Errorf("%s: %s is outside 10ms-1m", name("FlushInterval"), c.FlushInterval))
	}
	if !validConsumer(c.Consumer) {
		errs = append(errs, fmt.Errorf("%s: %q must be 1-32 of [A-Za-z0-9_-]", name("Consumer"), c.Consumer))
	}
	// The ack deadline must leave room for a full batch wait plus an insert.
	if c.AckWait < 2*c.FlushInterval || c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("%s: %s must be at least 1s and twice the flush interval", name("AckWait"), c.AckWait))
	}
	if c.RetryMax < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("%s: %s is below 10ms", name("RetryMax"), c.RetryMax))
	}
	if c.ContentRetries < 0 || c.ContentRetries > 100 {
		errs = append(errs, fmt.Errorf("%s: %d is outside 0-100", name("ContentRetries"), c.ContentRetries))
	}
	if c.RollupEvery != 0 && (c.RollupEvery < time.Second || c.RollupEvery > 24*time.Hour) {
		errs = append(errs, fmt.Errorf("%s: %s must be 0 (off) or 1s-24h", name("RollupEvery"), c.RollupEvery))
	}
	return errors.Join(errs...)
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
