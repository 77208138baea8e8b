package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// The Ensure functions create a stream, key-value bucket or object store,
// or update it when its configuration differs from the one given in a
// field the caller sets; one that already matches is only read. Every
// service ensures what it uses at every start: an update is a proposal to
// a cluster's meta group even when nothing changes (on a loaded three-node
// cluster such requests were seen to time out for minutes), and it needs
// a permission (STREAM.UPDATE) a service that only publishes does not
// have.

// EnsureStream creates the stream or brings it to cfg.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = js.CreateStream(ctx, cfg)
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return s, err
		}
		// Another service created it in the meantime (with its own
		// version's configuration): an update settles it.
		return js.UpdateStream(ctx, cfg)
	case err != nil:
		return nil, fmt.Errorf("bus.EnsureStream %s: %w", cfg.Name, err)
	case streamCovers(s.CachedInfo().Config, cfg):
		return s, nil
	}
	return js.UpdateStream(ctx, cfg)
}

// streamCovers reports whether a stream's configuration have already has
// every field want sets. Fields left zero in want are the server's
// defaults and not compared (a zero duplicate window is the server's two
// minutes); metadata is compared key by key, since the server adds its own.
func streamCovers(have, want jetstream.StreamConfig) bool {
	return maps.Equal(subset(have.Metadata, want.Metadata), want.Metadata) &&
		have.Description == want.Description &&
		slices.Equal(have.Subjects, want.Subjects) &&
		have.Storage == want.Storage &&
		have.Replicas == max(want.Replicas, 1) &&
		have.MaxAge == want.MaxAge &&
		(want.Duplicates == 0 || have.Duplicates == want.Duplicates) &&
		have.Retention == want.Retention &&
		have.Discard == want.Discard
}

// EnsureKeyValue opens the bucket, or creates it or brings it to cfg.
func EnsureKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err == nil {
		st, err := kv.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("bus.EnsureKeyValue %s: %w", cfg.Bucket, err)
		}
		if kvCovers(st.Config(), cfg) {
			return kv, nil
		}
		return js.UpdateKeyValue(ctx, cfg)
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("bus.EnsureKeyValue %s: %w", cfg.Bucket, err)
	}
	kv, err = js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.UpdateKeyValue(ctx, cfg) // created in the meantime
	}
	return kv, err
}

// kvCovers is streamCovers for a bucket's configuration.
func kvCovers(have, want jetstream.KeyValueConfig) bool {
	return have.Description == want.Description &&
		have.History == max(want.History, 1) &&
		have.TTL == want.TTL &&
		have.Storage == want.Storage &&
		have.Replicas == max(want.Replicas, 1) &&
		(want.MaxBytes == 0 || have.MaxBytes == want.MaxBytes) &&
		(want.MaxValueSize == 0 || have.MaxValueSize == want.MaxValueSize)
}

// EnsureObjectStore opens the store, or creates it or brings it to cfg.
func EnsureObjectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	obs, err := js.ObjectStore(ctx, cfg.Bucket)
	if err == nil {
		st, err := obs.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("bus.EnsureObjectStore %s: %w", cfg.Bucket, err)
		}
		if st.Description() == cfg.Description && st.TTL() == cfg.TTL && st.Storage() == cfg.Storage &&
			st.Replicas() == max(cfg.Replicas, 1) && maps.Equal(subset(st.Metadata(), cfg.Metadata), cfg.Metadata) {
			return obs, nil
		}
		return js.UpdateObjectStore(ctx, cfg)
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("bus.EnsureObjectStore %s: %w", cfg.Bucket, err)
	}
	obs, err = js.CreateObjectStore(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.UpdateObjectStore(ctx, cfg) // created in the meantime
	}
	return obs, err
}

// subset is the entries of m whose keys are in keys.
func subset(m, keys map[string]string) map[string]string {
	out := make(map[string]string, len(keys))
	for k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}
