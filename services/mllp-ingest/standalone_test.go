package mllpingest

import (
	"context"
	"io"
	"testing"

	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/service"
)

// TestStandaloneChecksThePartitionCount: composed as bin/mllp-ingest is
// (service.Main), the ingest refuses to start against EVENTS that records
// another partition count, and starts with the same one.
func TestStandaloneChecksThePartitionCount(t *testing.T) {
	bustest.CheckPartitionCount(t, map[string]string{"HINSCORE_MLLP_LISTENERS": "neta=127.0.0.1:0"}, func(ctx context.Context, env *service.Env) error {
		return service.Serve(ctx, "mllp-ingest", env, io.Discard, ConfigFromEnv, New)
	})
}
