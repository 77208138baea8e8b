package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/service"
)

// EnvNATSURL names the variable that points a standalone service at NATS.
const EnvNATSURL = "NATS_URL"

// ConnectFromEnv connects a standalone service to NATS_URL (default
// nats://127.0.0.1:4222), makes sure the streams exist, and returns the
// JetStream context with a component that closes the connection at
// shutdown (list it before the components that use it).
func ConnectFromEnv(ctx context.Context, env *service.Env, name string) (jetstream.JetStream, service.Component, error) {
	url := env.String(EnvNATSURL, "nats://127.0.0.1:4222")
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
	if err := EnsureStreams(ctx, js, DefaultStreamOptions()); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, closer, nil
}
