package chwriter

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/bus"
	"github.com/hinscore/hinscore/services/chstore"
	"github.com/hinscore/hinscore/services/service"
)

// Process-level environment of the standalone binary.
const (
	EnvNATSURL    = "NATS_URL"
	EnvClickHouse = "HINSCORE_CLICKHOUSE_DSN"
	EnvAdminAddr  = "HINSCORE_ADMIN_ADDR"
)

// shutdownTimeout bounds the final flush on SIGTERM; Kubernetes' default
// grace period is 30s.
const shutdownTimeout = 25 * time.Second

// Main runs chwriter as its own process until ctx ends (SIGTERM): it opens
// and migrates ClickHouse, connects to NATS, and serves the admin endpoints.
func Main(ctx context.Context, env *service.Env, log zerolog.Logger) error {
	natsURL := env.String(EnvNATSURL, "nats://127.0.0.1:4222")
	dsn := env.String(EnvClickHouse, "clickhouse://127.0.0.1:9000/hinscore")
	adminAddr := env.String(EnvAdminAddr, "127.0.0.1:9103")
	cfg, err := ConfigFromEnv(env)
	if err != nil {
		return fmt.Errorf("chwriter.Main: %w", err)
	}
	conn, d, err := chstore.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("chwriter.Main: %w", err)
	}
	defer conn.Close()
	nc, err := bus.Connect(natsURL, "chwriter")
	if err != nil {
		return fmt.Errorf("chwriter.Main: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("chwriter.Main: jetstream: %w", err)
	}
	admin := service.NewAdmin(adminAddr, log)
	w, err := New(cfg, js, conn, log, admin.Registry())
	if err != nil {
		return fmt.Errorf("chwriter.Main: %w", err)
	}
	admin.AddReadiness("chwriter", w.Ready)
	log.Info().Str("clickhouse", d.String()).Str("nats", natsURL).Msg("chwriter configured")
	return service.Run(ctx, log, shutdownTimeout, admin, w)
}
