package main

import (
	"context"
	"io"
	"testing"

	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/linker"
)

// TestLinkerChecksThePartitionCount: composed as main does, the linker
// refuses to start against EVENTS that records another partition count,
// and starts with the same one.
func TestLinkerChecksThePartitionCount(t *testing.T) {
	bustest.CheckPartitionCount(t, map[string]string{"HINSCORE_LINKER_REPLICA": "test"}, func(ctx context.Context, env *service.Env) error {
		return service.Serve(ctx, "linker", env, io.Discard, linker.ConfigFromEnv, newLinker)
	})
}
