package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/domain/partition"
)

// StreamOptions sets the limits of the streams hinscore creates.
type StreamOptions struct {
	Replicas        int           // 1 embedded, 3 in a cluster
	DuplicateWindow time.Duration // how late a retried publish is still recognised
	RawMaxAge       time.Duration // RAW and EVENTS retention (both hold original messages, with patient identifiers)
	DLQMaxAge       time.Duration
	// AuditMaxAge is how long the record of every access to original
	// messages is kept (six years, the retention HIPAA asks of such
	// documentation).
	AuditMaxAge   time.Duration
	MemoryStorage bool // tests only
	// Partitions, when set, is recorded on EVENTS (metadata
	// MetaPartitions): EnsureStreams refuses a stream that records another
	// count, and keeps the one recorded when Partitions is 0 (a service
	// that does not partition).
	Partitions partition.Count
}

// MetaPartitions is the EVENTS stream metadata that records the partition
// count of its subjects.
const MetaPartitions = "hinscore_partitions"

// DefaultStreamOptions are the single-node defaults.
func DefaultStreamOptions() StreamOptions {
	return StreamOptions{
		Replicas:        1,
		DuplicateWindow: 2 * time.Minute,
		RawMaxAge:       90 * 24 * time.Hour,
		DLQMaxAge:       30 * 24 * time.Hour,
		AuditMaxAge:     6 * 366 * 24 * time.Hour,
	}
}

// StreamConfigs returns the configuration of every hinscore stream.
func StreamConfigs(o StreamOptions) []jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if o.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	mk := func(name string, subjects []string, maxAge time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:       name,
			Subjects:   subjects,
			Storage:    storage,
			Replicas:   max(o.Replicas, 1),
			Duplicates: o.DuplicateWindow,
			MaxAge:     maxAge,
			Retention:  jetstream.LimitsPolicy,
			Discard:    jetstream.DiscardOld,
		}
	}
	// EVENTS carries the original bytes of HL7 v2 messages and of FHIR
	// bodies of one event, sealed (see LocateRaw), so it keeps them no
	// longer than RAW does; ClickHouse
	// is the store of record for events and outcomes.
	events := mk(StreamEvents, []string{"events.>"}, o.RawMaxAge)
	if o.Partitions != 0 {
		events.Metadata = map[string]string{MetaPartitions: strconv.Itoa(int(o.Partitions))}
	}
	return []jetstream.StreamConfig{
		mk(StreamRaw, []string{"raw.>"}, o.RawMaxAge),
		events,
		mk(StreamOutcomes, []string{"outcomes.>"}, 0),
		mk(StreamDLQ, []string{"dlq.>"}, o.DLQMaxAge),
		mk(StreamScorecards, []string{"scorecards.>"}, 0),
		// AUDIT: one message per access to original messages, from every
		// api replica, replicated like the rest, read only by administrators.
		mk(StreamAudit, []string{"audit.>"}, o.AuditMaxAge),
	}
}

// EnsureStreams creates the streams, or updates them to the configuration.
// The partition count recorded on EVENTS stays (the metadata others set
// too); a different o.Partitions is refused (ErrPartitionsDiffer).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	for _, cfg := range StreamConfigs(o) {
		if cfg.Name == StreamEvents {
			meta, err := eventsMetadata(ctx, js, o.Partitions)
			if err != nil {
				return err
			}
			cfg.Metadata = meta
		}
		if _, err := EnsureStream(ctx, js, cfg); err != nil {
			return fmt.Errorf("bus.EnsureStreams %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// WaitStream blocks until the named stream exists (a consumer started before
// the ingest that creates it).
func WaitStream(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	for {
		s, err := js.Stream(ctx, name)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("bus.WaitStream %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bus.WaitStream %s: %w", name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// eventsMetadata is the metadata EVENTS keeps: what it holds (the
// server's own keys aside), with the count n recorded when none is.
func eventsMetadata(ctx context.Context, js jetstream.JetStream, n partition.Count) (map[string]string, error) {
	meta := map[string]string{}
	st, err := js.Stream(ctx, StreamEvents)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		return nil, fmt.Errorf("bus.EnsureStreams %s: %w", StreamEvents, err)
	default:
		for k, v := range st.CachedInfo().Config.Metadata {
			if !strings.HasPrefix(k, "_nats") {
				meta[k] = v
			}
		}
	}
	if err := samePartitions(meta[MetaPartitions], n); err != nil {
		return nil, fmt.Errorf("bus.EnsureStreams: %w", err)
	}
	if n != 0 {
		meta[MetaPartitions] = strconv.Itoa(int(n))
	}
	if len(meta) == 0 {
		return nil, nil
	}
	return meta, nil
}
