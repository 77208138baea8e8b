package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/service"
)

// The variables that point a standalone service at NATS and say what it
// does with the streams at start.
const (
	EnvNATSURL = "NATS_URL"
	// EnvStreams is "ensure" (the default: create the streams, or update
	// them to StreamConfigs) or "check" (only check that the streams the
	// service uses exist and take its subjects: on a cluster the streams are
	// provisioned by an administrator, and the services' least-privilege
	// users may not create or change them).
	EnvStreams = "HINSCORE_STREAMS"
	// EnvStreamReplicas is the replica count "ensure" gives every stream
	// (default 1; 3 on a 3-node cluster).
	EnvStreamReplicas = "HINSCORE_STREAM_REPLICAS"
)

// serviceStreams are the streams each service reads or writes: what
// "check" looks at, and all that deploy/nats/accounts.conf lets it see.
var serviceStreams = map[string][]string{
	"mllp-ingest": {StreamEvents, StreamDLQ},
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

// StreamSetupFromEnv reads HINSCORE_STREAMS and HINSCORE_STREAM_REPLICAS;
// a bad value is recorded in env (env.Err reports it).
func StreamSetupFromEnv(env *service.Env) StreamSetup {
	s := StreamSetup{Options: DefaultStreamOptions()}
	switch mode := env.String(EnvStreams, "ensure"); mode {
	case "ensure":
	case "check":
		s.Check = true
	default:
		env.Fail(EnvStreams, "%q: want ensure or check", mode)
	}
	s.Options.Replicas = env.Int(EnvStreamReplicas, s.Options.Replicas)
	if s.Options.Replicas < 1 || s.Options.Replicas > 5 {
		env.Fail(EnvStreamReplicas, "%d: want 1 to 5 (JetStream's limit)", s.Options.Replicas)
	}
	return s
}

// Apply ensures or checks the streams service name uses.
func (s StreamSetup) Apply(ctx context.Context, js jetstream.JetStream, name string) error {
	if !s.Check {
		return EnsureStreams(ctx, js, s.Options)
	}
	return CheckStreams(ctx, js, ServiceStreams(name))
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

// ConnectFromEnv connects a standalone service to NATS_URL (default
// nats://127.0.0.1:4222), ensures or checks the streams it uses
// (HINSCORE_STREAMS, HINSCORE_STREAM_REPLICAS), and returns the JetStream
// context with a component that closes the connection at shutdown (list it
// before the components that use it).
func ConnectFromEnv(ctx context.Context, env *service.Env, name string) (jetstream.JetStream, service.Component, error) {
	url := env.String(EnvNATSURL, "nats://127.0.0.1:4222")
	setup := StreamSetupFromEnv(env)
	if err := env.Err(); err != nil {
		return nil, nil, err
	}
	nc, err := Connect(url, name)
	if err != nil {
		return nil, nil, err
	}
	closer := service.OnShutdown(func(context.Context) error { nc.Close(); return nil })
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("bus.ConnectFromEnv: %w", err)
	}
	if err := setup.Apply(ctx, js, name); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, closer, nil
}
