package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/domain/partition"
	"github.com/hinscore/hinscore/services/lib/service"
)

// The variables of NATS, by name (for the commands and tests that set
// them).
const (
	EnvNATSURL        = "NATS_URL"
	EnvStreams        = "HINSCORE_STREAMS"
	EnvStreamReplicas = "HINSCORE_STREAM_REPLICAS"
	EnvPartitions     = "HINSCORE_PARTITIONS"
)

// NATS is where a standalone service finds NATS and what it does with the
// streams at start, the settings of every service on the bus. It opens
// the service's connection (service.Opener).
type NATS struct {
	URL string `env:"NATS_URL" default:"nats://127.0.0.1:4222" help:"NATS server URL(s), comma-separated, with the service's user and password"`
	// Streams is "ensure" (create the streams, or update them to
	// StreamConfigs) or "check" (only check that the streams the service
	// uses exist and take its subjects: on a cluster the streams are
	// provisioned by an administrator, and the services' least-privilege
	// users may not create or change them).
	Streams        string `env:"HINSCORE_STREAMS" default:"ensure" help:"at start, ensure: create the streams or update them to this version's configuration; check: only check that the streams the service uses exist and capture its subjects (streams provisioned by an administrator, deploy/README.md)"`
	StreamReplicas int    `env:"HINSCORE_STREAM_REPLICAS" default:"1" help:"replicas of every stream ensure creates, 1 to 5 (3 on a 3-node cluster)"`
}

// Validate names each bad variable.
func (n NATS) Validate() error {
	var ps service.Problems
	if n.Streams != "ensure" && n.Streams != "check" {
		ps.Add(EnvStreams, "%q: want ensure or check", n.Streams)
	}
	if n.StreamReplicas < 1 || n.StreamReplicas > 5 {
		ps.Add(EnvStreamReplicas, "%d: want 1 to 5 (JetStream's limit)", n.StreamReplicas)
	}
	return ps.Err()
}

// Partitioning is the partition count of EVENTS
// (events.<partition>.<network>), the one setting its writers (the
// ingests) and its readers (the linkers) share: a request and its answers
// meet in one linker only when every one of them counts alike. A
// configuration that embeds it has EventPartitions, through which its
// NATS set-up records the count on EVENTS, or checks it against the one
// recorded there (EnsureStreams, CheckPartitions).
type Partitioning struct {
	PartitionCount int `env:"HINSCORE_PARTITIONS" default:"4" help:"EVENTS subject partitions, 1 to 1024: the same in the ingests and the linkers. Recorded on the EVENTS stream by the first of them that ensures the streams; a service whose count differs from the one recorded refuses to start"`
}

// Validate checks the count (partition.Count).
func (p Partitioning) Validate() error {
	if err := partition.Count(p.PartitionCount).Validate(); err != nil {
		return fmt.Errorf("%s: %w", EnvPartitions, err)
	}
	return nil
}

// EventPartitions is the count.
func (p Partitioning) EventPartitions() partition.Count { return partition.Count(p.PartitionCount) }

// serviceStreams are the streams each service reads or writes: what
// "check" looks at, and all that deploy/nats/accounts.conf lets it see.
var serviceStreams = map[string][]string{
	"mllp-ingest": {StreamEvents, StreamDLQ},
	"atna-ingest": {StreamEvents, StreamDLQ},
	"fhir-ingest": {StreamRaw, StreamEvents, StreamDLQ},
	"linker":      {StreamEvents, StreamOutcomes},
	"chwriter":    {StreamEvents, StreamOutcomes, StreamDLQ},
	"api":         {StreamRaw, StreamEvents, StreamAudit},
	"scorecard":   {StreamScorecards},
}

// ServiceStreams returns the streams a service uses (every stream for a
// name it does not know).
func ServiceStreams(name string) []string {
	if s, ok := serviceStreams[name]; ok {
		return slices.Clone(s)
	}
	var all []string
	for _, c := range StreamConfigs(DefaultStreamOptions()) {
		all = append(all, c.Name)
	}
	return all
}

// StreamSetup is what a service does with the streams at start.
type StreamSetup struct {
	Check   bool // only check that they exist; else create or update them
	Options StreamOptions
}

// Setup is the stream set-up the settings ask for.
func (n NATS) Setup() StreamSetup {
	s := StreamSetup{Check: n.Streams == "check", Options: DefaultStreamOptions()}
	s.Options.Replicas = n.StreamReplicas
	return s
}

// StreamSetupFromEnv reads the stream set-up of NATS from env; a bad value
// is recorded in env (env.Err reports it).
func StreamSetupFromEnv(env *service.Env) StreamSetup {
	var n NATS
	_ = service.Load(env, &n)
	return n.Setup()
}

// Apply ensures or checks the streams service name uses; with
// Options.Partitions set, ensuring records the count on EVENTS and both
// refuse a different one recorded there.
func (s StreamSetup) Apply(ctx context.Context, js jetstream.JetStream, name string) error {
	if !s.Check {
		return EnsureStreams(ctx, js, s.Options)
	}
	if err := CheckStreams(ctx, js, ServiceStreams(name)); err != nil {
		return err
	}
	if s.Options.Partitions == 0 {
		return nil
	}
	return CheckPartitions(ctx, js, s.Options.Partitions)
}

// CheckStreams checks that each named stream exists and captures the
// subjects StreamConfigs gives it, changing nothing.
func CheckStreams(ctx context.Context, js jetstream.JetStream, names []string) error {
	want := map[string][]string{}
	for _, c := range StreamConfigs(DefaultStreamOptions()) {
		want[c.Name] = c.Subjects
	}
	var errs []error
	for _, name := range names {
		st, err := js.Stream(ctx, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", name, err))
			continue
		}
		got := st.CachedInfo().Config.Subjects
		for _, subj := range want[name] {
			if !slices.Contains(got, subj) {
				errs = append(errs, fmt.Errorf("stream %s does not capture %s (it has %v)", name, subj, got))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("bus.CheckStreams: %w", errors.Join(errs...))
	}
	return nil
}

// ErrPartitionsDiffer is wrapped by the error of a service whose partition
// count is not the one recorded on EVENTS.
var ErrPartitionsDiffer = errors.New("bus: the partition count differs from the one the EVENTS stream records")

// CheckPartitions compares n with the count recorded on EVENTS (none
// recorded: nothing to compare).
func CheckPartitions(ctx context.Context, js jetstream.JetStream, n partition.Count) error {
	st, err := js.Stream(ctx, StreamEvents)
	if err != nil {
		return fmt.Errorf("bus.CheckPartitions: %w", err)
	}
	if err := samePartitions(st.CachedInfo().Config.Metadata[MetaPartitions], n); err != nil {
		return fmt.Errorf("bus.CheckPartitions: %w", err)
	}
	return nil
}

// samePartitions compares n (0: a service that does not partition) with
// the count recorded ("": none), naming the variable to change.
func samePartitions(recorded string, n partition.Count) error {
	if n == 0 || recorded == "" || recorded == strconv.Itoa(int(n)) {
		return nil
	}
	return fmt.Errorf("%w: %s=%d, EVENTS records %s (its %s metadata): every ingest and linker must use the count of the stream's events; to change it, drain EVENTS and change that metadata first",
		ErrPartitionsDiffer, EnvPartitions, n, recorded, MetaPartitions)
}

// Open connects a standalone service to NATS and ensures or checks the
// streams it uses, with the partition count of its configuration when it
// has one (Partitioning); deps gets the JetStream client.
func (n NATS) Open(ctx context.Context, name string, cfg any, deps *service.Deps) (service.Connection, error) {
	var count partition.Count
	if p, ok := cfg.(interface{ EventPartitions() partition.Count }); ok {
		count = p.EventPartitions()
	}
	js, closer, err := n.Connect(ctx, name, count)
	if err != nil {
		return service.Connection{}, err
	}
	deps.JetStream = js
	return service.Connection{Name: "nats", Close: closer.Shutdown}, nil
}

// Connect connects to URL as service name, ensures or checks the streams
// it uses (with partitions, the count recorded on EVENTS: 0 for a service
// that does not partition), and returns the JetStream client with a
// component that closes the connection at shutdown (list it before the
// components that use it).
func (n NATS) Connect(ctx context.Context, name string, partitions partition.Count) (jetstream.JetStream, service.Component, error) {
	setup := n.Setup()
	setup.Options.Partitions = partitions
	nc, err := Connect(n.URL, name)
	if err != nil {
		return nil, nil, err
	}
	closer := service.OnShutdown(func(context.Context) error { nc.Close(); return nil })
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("bus.NATS.Connect: %w", err)
	}
	if err := setup.Apply(ctx, js, name); err != nil {
		// A refused login leaves the connection retrying (or closed) and
		// the stream set-up timing out: say why NATS refused it.
		if last := nc.LastError(); last != nil {
			err = fmt.Errorf("%w (NATS %s: %v)", err, RedactURLs(n.URL), redactError(last, n.URL))
		}
		nc.Close()
		return nil, nil, err
	}
	return js, closer, nil
}

// ConnectFromEnv reads NATS from env and connects as Connect does, for a
// service that does not partition.
func ConnectFromEnv(ctx context.Context, env *service.Env, name string) (jetstream.JetStream, service.Component, error) {
	var n NATS
	if err := service.Load(env, &n); err != nil {
		return nil, nil, err
	}
	return n.Connect(ctx, name, 0)
}
